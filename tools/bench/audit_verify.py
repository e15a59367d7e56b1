"""`audit verify` at scale: a log of N typed version 2 entries (a courier's
day of logins, scans and reveals, people as pseudonyms, one checkpoint
every 256 entries, signed) is built straight through the database driver
(executemany on SQLite, COPY on PostgreSQL: the chain and the signatures
are computed as the gateway computes them), then `gateway.audit.verify`
walks it, with the witness holding every checkpoint, as `veilpost audit
verify --witness` does. Figures: wall and CPU time per entry for verify,
and how long building took.

    python -m tools.bench.audit_verify --entries 1000000
    python -m tools.bench.audit_verify --entries 1000000 --store postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway import audit
from gateway.home import Home, init, open_home

ACTIONS = (("login", "ok"), ("scan", "ok"), ("reveal", "granted"), ("reveal", "denied"), ("deliver", "ok"))
COLUMNS = ("seq", "at", "actor", "device", "action", "parcel", "outcome", "detail", "prev_hash", "hash", "v",
           "at_ms")


def entries(home: Home, n: int, t0_ms: int) -> Iterator[tuple[Any, ...]]:
    """N chained entries, as AuditLog.append writes them."""
    people = [home.audit.person("courier", "C-%03d" % c) for c in range(50)]
    prev = audit.GENESIS
    for seq in range(1, n + 1):
        action, outcome = ACTIONS[seq % len(ACTIONS)]
        at_ms = t0_ms + seq * 37
        detail: dict[str, Any] = {"fields": [2], "reason": 1} if action == "reveal" else {}
        if outcome == "denied":
            detail = {"reason": "not on route"}
        text = audit.detail_text(detail)
        actor, device, parcel = people[seq % 50], "HH-%03d" % (seq % 50), "VP%010d" % (seq % 200_000)
        digest = audit.entry_hash_v2(prev, seq, at_ms, actor, device, action, parcel, outcome,
                                     json.loads(text))
        yield (seq, at_ms / 1000, actor, device, action, parcel, outcome, text, prev, digest, 2, at_ms)
        prev = digest


def checkpoint_rows(home: Home, heads: list[tuple[int, bytes, int]]) -> list[tuple[Any, ...]]:
    return [(seq, head, at_ms / 1000, home.keys.sign(audit.checkpoint_message(seq, head, at_ms)), 2, at_ms)
            for seq, head, at_ms in heads]


def _fill_sqlite(path: Path, rows: Iterator[tuple[Any, ...]], every: int) -> list[tuple[int, bytes, int]]:
    heads: list[tuple[int, bytes, int]] = []
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    sql = "INSERT INTO audit (%s) VALUES (%s)" % (", ".join(COLUMNS), ", ".join("?" * len(COLUMNS)))
    for row in rows:
        batch.append(row)
        if row[0] % every == 0:
            heads.append((row[0], row[9], row[11]))
        if len(batch) >= 10_000:
            conn.executemany(sql, batch)
            batch = []
    conn.executemany(sql, batch)
    conn.execute("COMMIT")
    conn.close()
    return heads


def _fill_pg(url: str, rows: Iterator[tuple[Any, ...]], every: int) -> list[tuple[int, bytes, int]]:
    import psycopg

    heads: list[tuple[int, bytes, int]] = []
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY audit (%s) FROM STDIN" % ", ".join(COLUMNS)) as copy:
            for row in rows:
                copy.write_row(row)
                if row[0] % every == 0:
                    heads.append((row[0], row[9], row[11]))
        conn.commit()
        cur.execute("ANALYZE audit")
        conn.commit()
    return heads


def _pg_schema(server: str) -> tuple[str, str]:
    """A throwaway schema on `server`: (its name, a store URL inside it)."""
    from urllib.parse import quote

    import psycopg

    name = "vp_bench_" + secrets.token_hex(4)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "%s"' % name)
    joiner = "&" if "?" in server else "?"
    return name, server + joiner + "options=" + quote("-c search_path=" + name)


def _drop_schema(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % name)


def measure(n: int, store: str = "", every: int = 256) -> dict[str, Any]:
    """Build a log of `n` entries in a fresh home (SQLite, or the PostgreSQL
    server `store`) and time verify over it."""
    with tempfile.TemporaryDirectory(prefix="vp-audit-bench-") as tmp:
        folder = Path(tmp) / "home"
        schema = ""
        home = init(folder)
        if store:
            schema, url = _pg_schema(store)
            home.close()
            config = folder / "veilpost.toml"
            config.write_text(config.read_text(encoding="utf-8").replace('store = ""', 'store = "%s"' % url),
                              encoding="utf-8")
            home = open_home(folder)
        try:
            t0 = time.perf_counter()
            rows = entries(home, n, int(time.time() * 1000) - n * 37)
            if store:
                heads = _fill_pg(url, rows, every)
            else:
                heads = _fill_sqlite(home.config.database_path, rows, every)
            with home.store.transaction() as tx:
                for row in checkpoint_rows(home, heads):
                    tx.run("INSERT INTO checkpoints (seq, hash, at, signature, v, at_ms)"
                           " VALUES (?, ?, ?, ?, ?, ?)", *row)
            built = time.perf_counter() - t0
            held = home.store.all("SELECT seq, hash, at_ms, signature FROM checkpoints")
            witnessed = [audit.Checkpoint(int(r[0]), bytes(r[1]), int(r[2]), bytes(r[3])) for r in held]
            wall, cpu = time.perf_counter(), time.process_time()
            verdict = audit.verify(home.store, home.keys.public_key(), witnessed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert verdict.ok and verdict.entries == n, verdict.problem
            size = sum(p.stat().st_size for p in folder.glob("veilpost.db*")) if not store else 0
        finally:
            home.close()
            if schema:
                _drop_schema(store, schema)
    return {"store": "postgresql" if store else "sqlite", "entries": n, "checkpoints": len(witnessed),
            "build_s": round(built, 2), "verify_wall_s": round(wall, 2), "verify_cpu_s": round(cpu, 2),
            "verify_wall_us_per_entry": round(wall / n * 1e6, 2),
            "verify_cpu_us_per_entry": round(cpu / n * 1e6, 2),
            "sqlite_bytes": size}


def hash_only(n: int = 100_000) -> float:
    """Microseconds per entry for the canonical encoding and SHA-256 alone (no database)."""
    record = audit.record(b"\0" * 32, 1, 1_900_000_000_000, "courier:" + "a" * 24, "HH-001", "reveal",
                          "VP0000000001", "granted", {"fields": [2], "reason": 1})
    import cbor2

    t = time.process_time()
    for i in range(n):
        record["seq"] = i
        hashlib.sha256(cbor2.dumps(record, canonical=True)).digest()
    return (time.process_time() - t) / n * 1e6


def run(entries: int = 20_000, store: str = "") -> dict[str, Any]:
    """The `veilpost bench` section: SQLite, and PostgreSQL when `store` names a server."""
    out: dict[str, Any] = {"sqlite": measure(entries), "hash_cpu_us_per_entry": round(hash_only(), 2)}
    if store:
        out["postgresql"] = measure(entries, store)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries in the log")
    parser.add_argument("--store", default="", help="a PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args(argv)
    result = measure(args.entries, args.store)
    out = io.StringIO()
    json.dump(result, out, sort_keys=True)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
