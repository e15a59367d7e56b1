"""`veilpost fleet`: several simulated handhelds work their routes at once
against a gateway (embedded broker, in process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fixtures.handheld import SimDepot
from tools.cli import main
from tools.fleet import provision_fleet, run_fleet

pytestmark = pytest.mark.slow


def test_fleet_of_handhelds_reveals_and_delivers_every_parcel(sim_depot: SimDepot) -> None:
    plans = provision_fleet(sim_depot.home, sim_depot.broker, n_devices=3, parcels_per_device=2)
    report = run_fleet(plans)
    assert report["errors"] == []
    assert report["scans"] == 6 and report["revealed"] == 6 and report["delivered"] == 6
    assert report["reveal_p50_ms"] is not None and report["bytes_sent"] > 0


def test_fleet_command_runs_on_the_embedded_broker(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "vp"), "fleet", "--devices", "2",
                                       "--parcels", "2"])
    assert result.exit_code == 0, result.output
    assert "revealed: 4" in result.output and "delivered: 4" in result.output
