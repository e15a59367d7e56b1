"""A handheld whose clock is off. Decision (docs/scale-out.md): the gateway
reads every device time relative to its own clock, using the skew measured
on the message itself (its `t` against the gateway's now). Within
CLOCK_TOLERANCE (10 minutes) the handheld works as if its clock were right:
scans count as fresh, and the grant's expiry is given in the handheld's
time, so a token is neither dead on arrival (clock ahead) nor alive longer
than it should be (clock behind). Beyond the tolerance every message gets a
clear error saying by how much the clock is off, and nothing is granted."""

from __future__ import annotations

import pytest

from gateway.handlers import CLOCK_TOLERANCE
from tests.fixtures.handheld import SimDepot


@pytest.mark.parametrize("skew", [-300, 300])
def test_handheld_five_minutes_off_still_reveals_for_exactly_the_token_lifetime(
        sim_depot: SimDepot, skew: int) -> None:
    hh = sim_depot.handheld("SIM-1")
    hh.offset = skew
    hh.login("C-112", "4321")
    t = sim_depot.route[0]
    assert "error" not in hh.scan(t)
    result = hh.reveal(t, ["phone"], 1)
    assert result.shown == {"phone": "17000001234"}, result
    token_seconds = sim_depot.home.config.reveal.token_seconds
    exp = sim_depot.home.store.one("SELECT exp, issued FROM tokens WHERE tracking_no = ?", t)
    assert exp is not None and exp[0] - exp[1] <= token_seconds + 1  # gateway time: the lifetime is kept
    scanned = sim_depot.home.store.one("SELECT at FROM scans WHERE tracking_no = ?", t)
    assert scanned is not None and abs(scanned[0] - exp[1]) < 5  # the scan is "now", not 5 minutes off


@pytest.mark.parametrize("skew", [-(CLOCK_TOLERANCE + 300), CLOCK_TOLERANCE + 300])
def test_handheld_beyond_the_tolerance_is_told_to_set_its_clock(sim_depot: SimDepot, skew: int) -> None:
    from tools.simulator import SimulatorError

    hh = sim_depot.handheld("SIM-1")
    hh.offset = skew
    with pytest.raises(SimulatorError):
        hh.login("C-112", "4321")
    side = "ahead of" if skew > 0 else "behind"
    assert "device clock is %d s %s the gateway's" % (abs(skew), side) in (hh.app.notice or "")
    assert "set the clock" in hh.screen()
    rows = sim_depot.home.store.all("SELECT 1 FROM sessions WHERE device_id = 'SIM-1'")
    assert rows == []  # nothing happened on its behalf
    assert sim_depot.home.store.one("SELECT COUNT(*) FROM tokens")[0] == 0  # type: ignore[index]
