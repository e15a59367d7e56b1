"""The gateway's database behind a narrow interface, the `Store` protocol:
`transaction()` yields a handle with `one`, `all` and `run`; nothing else
touches the driver. `SqliteStore` (here) and `PgStore` (gateway/store_pg.py)
implement it, neither inheriting the other; gateway/stores.py `open_store`
picks one from the config.

The SQL in this package sticks to what SQLite and PostgreSQL both accept:
`?` placeholders (a PostgreSQL store translates them), TEXT / INTEGER /
DOUBLE PRECISION / BLOB columns (BLOB becomes BYTEA there), keys assigned by
the code instead of auto-increment, and `INSERT ... ON CONFLICT` upserts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

Row = tuple[Any, ...]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")  # a store location with these is a PgStore URL

# Each entry is one schema version; never edit a shipped one, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE couriers (
        courier_id TEXT PRIMARY KEY, depot TEXT NOT NULL, shift TEXT NOT NULL,
        pin_salt BLOB NOT NULL, pin_hash BLOB NOT NULL, state TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL);
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY, model TEXT NOT NULL, fw TEXT NOT NULL,
        state TEXT NOT NULL, last_seen DOUBLE PRECISION,
        secret_kek TEXT NOT NULL, secret_wrapped BLOB NOT NULL,
        up_window TEXT NOT NULL, down_seq INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL);
    CREATE TABLE officers (
        name TEXT PRIMARY KEY, pin_salt BLOB NOT NULL, pin_hash BLOB NOT NULL,
        created DOUBLE PRECISION NOT NULL);
    CREATE TABLE routes (
        route_id TEXT PRIMARY KEY, courier_id TEXT NOT NULL, sort_code TEXT NOT NULL,
        state TEXT NOT NULL, imported DOUBLE PRECISION NOT NULL);
    CREATE TABLE parcels (
        tracking_no TEXT PRIMARY KEY, route_id TEXT NOT NULL, sort_code TEXT NOT NULL,
        state TEXT NOT NULL,
        window_start DOUBLE PRECISION NOT NULL, window_end DOUBLE PRECISION NOT NULL,
        masked_receiver_name TEXT NOT NULL, masked_receiver_phone TEXT NOT NULL,
        masked_receiver_address TEXT NOT NULL, masked_sender_name TEXT NOT NULL,
        masked_sender_phone TEXT NOT NULL, masked_sender_address TEXT NOT NULL,
        ciphertext BLOB, data_key BLOB, kek_id TEXT,
        delivered_at DOUBLE PRECISION, shredded_at DOUBLE PRECISION);
    CREATE INDEX parcels_route ON parcels (route_id);
    CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY, courier_id TEXT NOT NULL, device_id TEXT NOT NULL,
        started DOUBLE PRECISION NOT NULL, ended DOUBLE PRECISION);
    CREATE INDEX sessions_device ON sessions (device_id, ended);
    CREATE TABLE scans (
        device_id TEXT NOT NULL, tracking_no TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (device_id, tracking_no));
    CREATE TABLE tokens (
        cti BLOB PRIMARY KEY, device_id TEXT NOT NULL, courier_id TEXT NOT NULL,
        tracking_no TEXT NOT NULL, fields TEXT NOT NULL,
        issued DOUBLE PRECISION NOT NULL, exp DOUBLE PRECISION NOT NULL,
        used DOUBLE PRECISION, audit_seq INTEGER NOT NULL, offline INTEGER NOT NULL);
    CREATE INDEX tokens_courier ON tokens (courier_id, issued);
    CREATE INDEX tokens_device ON tokens (device_id, issued);
    CREATE TABLE requests (
        courier_id TEXT NOT NULL, device_id TEXT NOT NULL, tracking_no TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL, strike INTEGER NOT NULL);
    CREATE INDEX requests_courier ON requests (courier_id, at);
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL,
        device TEXT NOT NULL, action TEXT NOT NULL, parcel TEXT NOT NULL,
        outcome TEXT NOT NULL, detail TEXT NOT NULL,
        prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
    CREATE TABLE checkpoints (
        seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, at DOUBLE PRECISION NOT NULL,
        signature BLOB NOT NULL);
    CREATE TABLE incidents (
        incident_id TEXT PRIMARY KEY, opened DOUBLE PRECISION NOT NULL,
        courier_id TEXT NOT NULL, device_id TEXT NOT NULL, trigger_reason TEXT NOT NULL,
        parcels TEXT NOT NULL, state TEXT NOT NULL);
    CREATE TABLE alarms (
        alarm_id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,
        courier_id TEXT NOT NULL, device_id TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE TABLE cases (
        case_id TEXT PRIMARY KEY, tracking_no TEXT NOT NULL, reason TEXT NOT NULL,
        opened_by TEXT NOT NULL, opened DOUBLE PRECISION NOT NULL,
        open_until DOUBLE PRECISION);
    CREATE TABLE approvals (
        case_id TEXT NOT NULL, approver TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (case_id, approver));
    """,
    """
    CREATE TABLE login_failures (
        badge TEXT NOT NULL, device_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
    CREATE INDEX login_failures_badge ON login_failures (badge, at);
    CREATE INDEX login_failures_device ON login_failures (device_id, at);
    """,
    """
    CREATE INDEX routes_courier ON routes (courier_id, state);
    """,
    """
    CREATE TABLE key_rotations (
        device_id TEXT PRIMARY KEY, command_id INTEGER NOT NULL,
        next_kek TEXT, next_wrapped BLOB, password_kek TEXT, password_wrapped BLOB,
        prev_kek TEXT, prev_wrapped BLOB, prev_window TEXT,
        grace DOUBLE PRECISION NOT NULL, started DOUBLE PRECISION NOT NULL,
        sent DOUBLE PRECISION, switched DOUBLE PRECISION, password_set DOUBLE PRECISION);
    """,
    # The disclosure gate: per-label possession proofs, the release ledger
    # every budget reads, and security events for the officer. Scans taken
    # before proofs existed were only the handheld's word: they go.
    """
    ALTER TABLE parcels ADD COLUMN label_no INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE parcels ADD COLUMN label_issued INTEGER NOT NULL DEFAULT 0;
    DELETE FROM scans;
    ALTER TABLE scans ADD COLUMN label_no INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE releases (
        account TEXT NOT NULL, shift_start DOUBLE PRECISION NOT NULL, tracking_no TEXT NOT NULL,
        field INTEGER NOT NULL, device_id TEXT NOT NULL, depot TEXT NOT NULL, path TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL, audit_seq INTEGER NOT NULL, shown_at DOUBLE PRECISION,
        PRIMARY KEY (account, shift_start, tracking_no, field));
    CREATE INDEX releases_depot ON releases (depot, at);
    CREATE INDEX releases_account ON releases (account, at);
    CREATE INDEX releases_device ON releases (device_id, at);
    CREATE INDEX releases_parcel ON releases (tracking_no);
    CREATE INDEX requests_strikes ON requests (courier_id, strike, at);
    ALTER TABLE incidents ADD COLUMN accounts TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE security_events (
        event_id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL,
        courier_id TEXT NOT NULL, device_id TEXT NOT NULL, tracking_no TEXT NOT NULL,
        detail TEXT NOT NULL, state TEXT NOT NULL);
    CREATE INDEX security_events_at ON security_events (at);
    CREATE INDEX security_events_kind ON security_events (kind, courier_id, at);
    CREATE TABLE officer_failures (name TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
    CREATE INDEX officer_failures_name ON officer_failures (name, at);
    ALTER TABLE cases ADD COLUMN account TEXT NOT NULL DEFAULT '';
    ALTER TABLE cases ADD COLUMN fields TEXT NOT NULL DEFAULT '1,2,3';
    CREATE TABLE incident_holds (
        incident_id TEXT NOT NULL, kind TEXT NOT NULL, ident TEXT NOT NULL, state TEXT NOT NULL,
        PRIMARY KEY (incident_id, kind, ident));
    CREATE INDEX incident_holds_ident ON incident_holds (kind, ident, state);
    INSERT INTO incident_holds (incident_id, kind, ident, state)
        SELECT incident_id, 'courier', courier_id, 'held' FROM incidents
        WHERE state = 'open' AND courier_id <> '';
    INSERT INTO incident_holds (incident_id, kind, ident, state)
        SELECT incident_id, 'device', device_id, 'held' FROM incidents
        WHERE state = 'open' AND device_id <> '';
    """,
    # People who act by name (gateway/operators.py): IT, depot staff, complaint agents.
    """
    CREATE TABLE operators (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, added DOUBLE PRECISION NOT NULL,
        active INTEGER NOT NULL);
    """,
    # Incidents (gateway/incidents.py): a life cycle with notes, the contacts
    # fixed at opening under the incident's own data key, a notice per person.
    """
    ALTER TABLE incidents ADD COLUMN kind TEXT NOT NULL DEFAULT 'sentinel';
    ALTER TABLE incidents ADD COLUMN assignee TEXT NOT NULL DEFAULT '';
    ALTER TABLE incidents ADD COLUMN devices TEXT NOT NULL DEFAULT '[]';
    UPDATE incidents SET state = 'open' WHERE state = 'reinstated';
    CREATE TABLE incident_steps (
        incident_id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, step TEXT NOT NULL,
        actor TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (incident_id, seq));
    CREATE TABLE incident_keys (
        incident_id TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped BLOB NOT NULL);
    CREATE TABLE incident_people (
        incident_id TEXT NOT NULL, person TEXT NOT NULL, parcels INTEGER NOT NULL,
        fields TEXT NOT NULL, channel TEXT NOT NULL, lang TEXT NOT NULL, sealed BLOB,
        state TEXT NOT NULL, attempts INTEGER NOT NULL, problem TEXT NOT NULL, sent_at INTEGER,
        PRIMARY KEY (incident_id, person));
    """,
    # Typed audit entries (gateway/audit.py, docs/audit.md): a schema version
    # per entry (old rows are 1), integer milliseconds, and indexes for
    # `veilpost audit search`; version 2 checkpoints sign the time too.
    """
    ALTER TABLE audit ADD COLUMN v INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN at_ms INTEGER;
    CREATE INDEX audit_actor ON audit (actor, at);
    CREATE INDEX audit_device ON audit (device, at);
    CREATE INDEX audit_parcel ON audit (parcel, at);
    CREATE INDEX audit_at ON audit (at);
    ALTER TABLE checkpoints ADD COLUMN v INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE checkpoints ADD COLUMN at_ms INTEGER;
    UPDATE checkpoints SET at_ms = CAST(at * 1000 AS INTEGER);
    """,
]


class Handle(Protocol):
    """What code outside the store sees of a transaction."""

    def one(self, sql: str, *args: Any) -> Row | None: ...

    def all(self, sql: str, *args: Any) -> list[Row]: ...

    def run(self, sql: str, *args: Any) -> int: ...


class Store(Protocol):
    """A gateway database: SQLite for one gateway, PostgreSQL for several."""

    path: Path  # its file; a store without one says /dev/null
    shared: bool  # other processes change rows this one may have cached

    @property
    def version(self) -> int:
        """The schema version: how many MIGRATIONS it has run."""
        ...

    def transaction(self) -> AbstractContextManager[Handle]:
        """All or nothing: commits when the block ends, rolls back on error."""
        ...

    def one(self, sql: str, *args: Any) -> Row | None: ...

    def all(self, sql: str, *args: Any) -> list[Row]: ...

    def run(self, sql: str, *args: Any) -> int:
        """One statement in a transaction of its own; the rows it changed."""
        ...

    def checkpoint(self) -> None:
        """Make deleted data unrecoverable from the store's own files (after shredding)."""
        ...

    def close(self) -> None: ...


class _SqliteHandle:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> int:
        return self._conn.execute(sql, args).rowcount


class SqliteStore:
    """One SQLite file in WAL mode. Safe to share between threads: a lock
    serialises transactions, and other processes wait on SQLite's own lock."""

    shared = False  # one gateway: nobody else changes its rows

    def __init__(self, path: Path | str, durability: str = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        if not self.path.exists():
            # Created owner-only; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(str(self.path), os.O_WRONLY | os.O_CREAT, 0o600))
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=" + ("FULL" if durability == "full" else "NORMAL"))
        # Shredded keys and deleted rows are overwritten, not left in free pages.
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._migrate()

    @property
    def version(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        with self._lock:
            has_meta = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            current = self.version if has_meta else 0
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in script.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(number),),
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    @contextmanager
    def transaction(self) -> Iterator[Handle]:
        """All or nothing: commits when the block ends, rolls back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteHandle(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                # Also when COMMIT itself failed (disk full): never stay inside the transaction.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def one(self, sql: str, *args: Any) -> Row | None:
        with self._lock:
            row: Row | None = self._conn.execute(sql, args).fetchone()
            return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> int:
        with self.transaction() as tx:
            return tx.run(sql, *args)

    def checkpoint(self) -> None:
        """Fold the WAL back into the main file (used after shredding)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

