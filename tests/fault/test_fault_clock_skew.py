"""A handheld whose clock is off. Decision (docs/scale-out.md): the gateway
reads every device time on its own clock, using the skew measured on the
message itself (its `t` against the gateway's now). The handheld works as
if its clock were right: a scan counts as fresh, and the grant's expiry is
given in the handheld's time, so a token is neither dead on arrival (clock
ahead) nor alive longer than it should be (clock behind); the database keeps
gateway times. The policy never trusts a device clock, so no skew is
refused; one beyond CLOCK_TOLERANCE is logged for the operator."""

from __future__ import annotations

import logging

import pytest

from gateway.handlers import CLOCK_TOLERANCE
from tests.fixtures.handheld import SimDepot


@pytest.mark.parametrize("skew", [-300, 300, -(CLOCK_TOLERANCE + 3000), CLOCK_TOLERANCE + 3000])
def test_handheld_with_its_clock_off_reveals_for_exactly_the_token_lifetime(
        sim_depot: SimDepot, skew: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="veilpost.gateway")
    hh = sim_depot.handheld("SIM-1")
    hh.offset = skew
    hh.login("C-112", "4321")
    t = sim_depot.route[0]
    assert "error" not in hh.scan_label(sim_depot.labels[t])
    result = hh.reveal(t, ["phone"], 1)
    assert result.shown == {"phone": "17000001234"}, result
    store = sim_depot.home.store
    token_seconds = sim_depot.home.config.reveal.token_seconds
    exp, issued = store.one("SELECT exp, issued FROM tokens WHERE tracking_no = ?", t)  # type: ignore[misc]
    assert exp - issued <= token_seconds + 1  # gateway time: the lifetime is kept
    scanned = store.one("SELECT at FROM scans WHERE tracking_no = ?", t)
    assert scanned is not None and abs(scanned[0] - issued) < 5  # the scan is "now", not minutes off
    # On the handheld: shown now, gone once the token's lifetime has passed on its own clock.
    hh.advance(token_seconds + 2)
    assert hh.app.tokens.view(t, hh.now()) is None
    logged = any('"clock-skew"' in r.getMessage() for r in caplog.records)
    assert logged == (abs(skew) > CLOCK_TOLERANCE)
