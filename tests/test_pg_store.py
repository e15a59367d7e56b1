"""The PostgreSQL store itself: dialect translation, locking, recovery."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from gateway.store_pg import PgStore, ddl, to_postgres
from gateway.stores import open_store


def test_placeholders_become_psycopg_ones_outside_quotes_only() -> None:
    assert to_postgres("SELECT ? , '?', 'it''s ?' WHERE a LIKE 'x%' AND b = ?") == \
        "SELECT %s , '?', 'it''s ?' WHERE a LIKE 'x%%' AND b = %s"
    assert ddl("a BLOB, b INTEGER, c TEXT") == "a BYTEA, b BIGINT, c TEXT"


def test_config_url_opens_postgresql_and_migrations_run_once(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PgStore) and store.version >= 1
    store.close()
    again = open_store(pg_url)
    assert again.version == store.version
    again.close()


def test_bytes_and_big_sequence_numbers_round_trip(pg_url: str) -> None:
    store = PgStore(pg_url)
    store.run("INSERT INTO devices (device_id, model, fw, state, secret_kek, secret_wrapped, up_window,"
              " down_seq, created) VALUES (?, 'm', '', 'active', 'k', ?, '', ?, 0)",
              "HH-9", b"\0\xff", 2**40 - 1)
    assert store.one("SELECT secret_wrapped, down_seq FROM devices") == (b"\0\xff", 2**40 - 1)
    store.close()


def test_failed_transaction_changes_nothing_and_the_store_goes_on(pg_url: str) -> None:
    store = PgStore(pg_url)
    with pytest.raises(psycopg.errors.UniqueViolation), store.transaction() as tx:
        tx.run("INSERT INTO meta (key, value) VALUES ('a', '1')")
        tx.run("INSERT INTO meta (key, value) VALUES ('a', '2')")
    assert store.one("SELECT value FROM meta WHERE key = 'a'") is None
    store.run("INSERT INTO meta (key, value) VALUES ('a', '3')")
    assert store.one("SELECT value FROM meta WHERE key = 'a'") == ("3",)
    store.close()


def test_write_transactions_of_two_stores_run_one_after_the_other(pg_url: str) -> None:
    first, second = PgStore(pg_url), PgStore(pg_url)
    order: list[str] = []
    inside = threading.Event()

    def slow() -> None:
        with first.transaction() as tx:
            inside.set()
            tx.run("INSERT INTO meta (key, value) VALUES ('n', '1')")
            time.sleep(0.3)
            order.append("first")

    worker = threading.Thread(target=slow)
    worker.start()
    inside.wait(5)
    with second.transaction() as tx:  # waits for the first to commit, then sees its row
        order.append("second")
        assert tx.one("SELECT value FROM meta WHERE key = 'n'") == ("1",)
    worker.join()
    assert order == ["first", "second"]
    first.close()
    second.close()


def test_store_reconnects_after_the_server_dropped_its_connection(pg_url: str) -> None:
    store = PgStore(pg_url)
    pid = store.one("SELECT pg_backend_pid()")[0]  # type: ignore[index]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        store.one("SELECT 1")  # the statement in flight fails: the caller denies
    assert store.one("SELECT 1") == (1,)  # the next one has a fresh connection
    store.close()
