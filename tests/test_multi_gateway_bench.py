"""`veilpost bench`: the report it writes. One real (small) scale-out run
compares one gateway with two on PostgreSQL against the paho echo ceiling,
and a part whose bench module is absent is reported as missing, never
with figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import require
from tests.fixtures.postgres import pg_available
from tools.bench import run as bench_run
from tools.cli import main


def test_a_part_without_its_bench_module_is_reported_missing(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setattr(bench_run, "SECTIONS", [
        ("messages", "tools.bench.message_sizes", "measure", {}, {}),
        ("future", "tools.bench.not_written_yet", "run", {}, {}),
    ])
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--quick", "--json", str(out)])
    assert result.exit_code == 1, result.output  # a missing section is not a complete run
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    missing = "tools/bench/not_written_yet.py is not in this checkout yet"
    assert report["sections"]["future"] == {"missing": missing}
    assert report["highlights"]["missing"] == ["future"]
    assert report["highlights"]["message_wire_bytes"]["reveal_grant"] > 0
    assert "future: missing" in result.output


@pytest.mark.slow
def test_scale_out_section_measures_one_and_two_gateways_against_the_echo_ceiling(tmp_path: Path) -> None:
    require(pg_available(), "PostgreSQL is not reachable")
    from tools.bench import scaleout

    reveal = scaleout.reveal_figures(tmp_path, n=8, per_device=5)
    for label in ("paho_echo", "sqlite_1_gateway", "postgresql_1_gateway", "postgresql_2_gateways"):
        run = reveal[label]
        assert run["complete"] and run["replies"] == 40 and run["denied"] == 0, (label, run)
        assert run["p50_ms"] <= run["p99_ms"]
    assert reveal["two_vs_one_gateway"] > 0
    assert 0 < reveal["sqlite_1_gateway"]["fraction_of_echo"]
