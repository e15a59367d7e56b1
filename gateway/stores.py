"""The one store factory: the database a gateway's config names."""

from __future__ import annotations

from pathlib import Path

from gateway.store import POSTGRES_SCHEMES, SqliteStore, Store


def open_store(location: Path | str, durability: str = "full") -> Store:
    """A "postgresql://..." URL opens a PgStore, anything else a SQLite file."""
    if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
        from gateway.store_pg import PgStore  # psycopg only where PostgreSQL is used

        return PgStore(location, durability)
    return SqliteStore(location, durability)
