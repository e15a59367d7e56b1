"""Several rented accounts working together, each on its own handheld and
each under its own budget, sweeping the depot: the depot-wide sign (the
depot's releases against its own baseline) trips before 10 records leave
in total, and one incident names every account and handheld involved.
Over a real broker; the gateway's clock is the test's, so the sweep can
be paced the way a careful ring would pace it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway import registry
from gateway.home import Home
from tests.fixtures.gateway import Depot, Handheld, seed_parcel, start_gateway


class Ring:
    def __init__(self, home: Home, broker: Any, accounts: int, now: float) -> None:
        self.home, self.broker, self.clock = home, broker, [now]
        self.members: list[tuple[str, Handheld, list[str]]] = []
        labels = Depot.__new__(Depot)  # only its label printer
        labels.home, labels.now = home, now
        specs = []
        for n in range(1, accounts + 1):
            courier, device = "C-%d" % n, "HH-%d" % n
            registry.add_courier(home.store, courier, "%04d" % (1000 + n), "D-1", "00:00-24:00")
            secret = registry.add_device(home.store, home.keys.kek, device, "test")
            registry.set_device_state(home.store, device, "active")
            parcels = ["VP%02d%08d" % (n, 17 * i + 5) for i in range(6)]
            for i, t in enumerate(parcels):
                seed_parcel(home, t, "R-%d" % n, courier, i)
            specs.append((courier, device, secret, parcels))
        self.service = start_gateway(home, broker, clock=lambda: self.clock[0])
        for courier, device, secret, parcels in specs:
            held = {t: labels.label(t) for t in parcels[:3]}  # three labels each, photographed at the depot
            hh = Handheld(broker, device, secret, labels=held)
            assert hh.login(courier, "%04d" % (1000 + int(courier[2:])))["ok"]
            self.members.append((courier, hh, parcels))

    def close(self) -> None:
        for _c, hh, _p in self.members:
            hh.close()
        self.service.stop()


@pytest.mark.parametrize("accounts", [2, 5])
def test_colluding_accounts_each_under_budget_trip_the_depot_sign_before_ten_records(
        gateway_home: Home, mqtt_broker: Any, accounts: int) -> None:
    home = gateway_home
    ring = Ring(home, mqtt_broker, accounts, time.time())
    try:
        # Round robin, one parcel per account per round, 30 s apart: no
        # account comes near its own per-minute or per-shift budget.
        req = 0
        for n in range(6):
            for _courier, hh, parcels in ring.members:
                t = parcels[n]
                if n < 3:
                    hh.scan(t)  # a real label
                req += 1
                reason = 1 if n < 3 else 6  # then the damaged-label allowance
                hh.send("reveal_request", {"req": req, "tracking_no": t, "fields": [1, 2, 3],
                                           "reason": reason, "session": hh.session})
                assert hh.recv(timeout=5) is not None
                ring.clock[0] += 30
    finally:
        ring.close()
    released = home.store.one("SELECT COUNT(DISTINCT tracking_no) FROM releases")[0]
    print("%d accounts: %d records released before the depot sign" % (accounts, released))
    assert 0 < released < 10
    rows = home.store.all("SELECT trigger_reason, accounts, parcels FROM incidents")
    assert len(rows) == 1, rows
    why, named, listed = rows[0][0], json.loads(rows[0][1]), json.loads(rows[0][2])
    assert "across the depot" in why
    assert {a["courier"] for a in named} == {c for c, _hh, _p in ring.members}
    assert {d for a in named for d in a["devices"]} == {hh.device_id for _c, hh, _p in ring.members}
    assert len(listed) == released  # exactly whose data the ring received
    for courier, hh, _p in ring.members:
        assert registry.courier_state(home.store, courier) == "suspended"
        assert registry.device_state(home.store, hh.device_id) == "suspended"
    budget = home.store.one("SELECT COUNT(*) FROM requests WHERE outcome = 'budget'")[0]
    assert budget == 0  # no account's own budget was crossed
