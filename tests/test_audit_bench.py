"""The `audit verify` benchmark (tools/bench/audit_verify.py) builds a log
the gateway's own verify accepts, with every checkpoint witnessed, on
SQLite and on PostgreSQL, and reports time per entry."""

from __future__ import annotations

from tests.conftest import require
from tests.fixtures.postgres import SERVER, pg_available
from tools.bench import audit_verify


def test_the_bench_log_verifies_on_sqlite() -> None:
    result = audit_verify.measure(3000)
    assert result["entries"] == 3000 and result["checkpoints"] == 11
    assert 0 < result["verify_wall_us_per_entry"] < 10_000 and result["verify_cpu_s"] > 0


def test_the_bench_log_verifies_on_postgresql() -> None:
    require(pg_available(), "PostgreSQL is not reachable at " + SERVER)
    result = audit_verify.measure(3000, SERVER)
    assert result["store"] == "postgresql" and result["entries"] == 3000 and result["checkpoints"] == 11
