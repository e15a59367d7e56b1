"""The PostgreSQL store: the `Store` protocol of gateway/store.py, for
several gateways sharing one database.

Every dialect difference lives in this file: `?` placeholders become `%s`,
BLOB columns become BYTEA and INTEGER becomes BIGINT in the migrations (a
sequence number reaches 2**40), `sqlite_master` is not asked. Upserts
(`INSERT ... ON CONFLICT ... excluded.x`) and SAVEPOINTs are already common.

Concurrency: every write transaction first takes one transaction-scoped
advisory lock (`pg_advisory_xact_lock`), so transactions that change state
run one after another across all gateways, exactly as SQLite's BEGIN
IMMEDIATE runs them inside one machine. That keeps, without any change to
the policy code, the invariants that read-then-write: a token is marked used
once, a budget is counted against every grant already committed, a replay
window is read after the last writer committed, and the shared audit chain
gets consecutive sequence numbers with no gap or fork. Reads outside a
transaction take no lock (each statement sees the latest commit).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from gateway.store import MIGRATIONS, POSTGRES_SCHEMES, Handle, Row

SCHEMES = POSTGRES_SCHEMES
IDLE = psycopg.pq.TransactionStatus.IDLE
# A quoted string or a placeholder; quoted strings are copied unchanged.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|%")


def is_postgres(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(SCHEMES)


def to_postgres(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (and a literal `%` to `%%`),
    leaving anything inside single quotes alone."""
    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%")

    return _TOKENS.sub(swap, sql)


def ddl(script: str) -> str:
    """A migration written for SQLite, in PostgreSQL's column types."""
    script = re.sub(r"\bBLOB\b", "BYTEA", script)
    return re.sub(r"\bINTEGER\b", "BIGINT", script)


class _PgHandle:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._pg = conn

    def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._pg.execute(to_postgres(sql), args or None).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        return self._pg.execute(to_postgres(sql), args or None).fetchall()

    def run(self, sql: str, *args: Any) -> int:
        return self._pg.execute(to_postgres(sql), args or None).rowcount


class PgStore:
    """One connection to PostgreSQL, shared by the threads of one gateway
    under a lock; other gateways wait on the advisory lock."""

    shared = True  # other processes change rows this one has cached

    def __init__(self, url: str, durability: str = "full") -> None:
        self.url = url
        self.path = Path("/dev/null")  # no file of its own: callers that checkpoint files skip it
        self._lock = threading.RLock()
        self._durability = durability
        self._pg = self._connect()
        # One lock per database and schema, so separate deployments never wait on each other.
        where = self._pg.execute("SELECT current_database(), current_schema()").fetchone()
        digest = hashlib.sha256(repr(where).encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self._migrate()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True)
        if self._durability != "full":
            conn.execute("SET synchronous_commit = off")
        return conn

    def _ready(self) -> psycopg.Connection[Any]:
        """The connection, opened again if the server dropped it (a restart)."""
        if self._pg.closed:
            self._pg = self._connect()
        return self._pg

    @property
    def version(self) -> int:
        row = self.one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self.transaction() as tx:
            has_meta = tx.one("SELECT to_regclass('meta') IS NOT NULL")
            row = tx.one("SELECT value FROM meta WHERE key = 'schema_version'") if has_meta and has_meta[0] \
                else None
            current = int(row[0]) if row else 0
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in ddl(script).split(";"):
                    if statement.strip():
                        tx.run(statement)
                tx.run("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", str(number))

    @contextmanager
    def transaction(self) -> Iterator[Handle]:
        """All or nothing, and one writer at a time across every gateway."""
        with self._lock:
            self._ready().execute("BEGIN")
            try:
                self._pg.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                yield _PgHandle(self._pg)
                self._pg.execute("COMMIT")
            except BaseException:
                if not self._pg.closed and self._pg.info.transaction_status != IDLE:
                    self._pg.execute("ROLLBACK")
                raise

    def one(self, sql: str, *args: Any) -> Row | None:
        with self._lock:
            return _PgHandle(self._ready()).one(sql, *args)

    def all(self, sql: str, *args: Any) -> list[Row]:
        with self._lock:
            return _PgHandle(self._ready()).all(sql, *args)

    def run(self, sql: str, *args: Any) -> int:
        with self.transaction() as tx:
            return tx.run(sql, *args)

    def checkpoint(self) -> None:
        """Nothing to fold back: PostgreSQL vacuums shredded rows itself."""

    def close(self) -> None:
        with self._lock:
            self._pg.close()
