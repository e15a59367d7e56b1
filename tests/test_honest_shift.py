"""An honest courier's whole shift, on the stock firmware (tools/simulator.py
runs the firmware source) against a live gateway on a real broker: 150
parcels over a simulated day, each real label scanned, the phone of about a
quarter revealed and the address of a few, pre-issue on the firmware's
default schedule. The gate must never get in the way: no budget denial, no
suspension, no alarm. The gateway's and the handheld's clocks are the
test's, so the day passes in seconds."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import labels, registry
from gateway.home import Home
from tests.fixtures.gateway import seed_parcel, start_gateway
from tools.simulator import Handheld

PARCELS = 150
MINUTES_PER_PARCEL = 5  # 07:30 to about 20:00


@pytest.mark.slow
def test_an_honest_shift_of_150_parcels_meets_no_budget_and_no_suspension(
        gateway_home: Home, mqtt_broker: Any) -> None:
    home = gateway_home
    zone = ZoneInfo(home.config.timezone)
    day = datetime(2031, 3, 4, 7, 30, tzinfo=zone).timestamp()
    clock = [day]
    registry.add_courier(home.store, "C-500", "2580", "D-1", "07:00-21:00")
    tracking = ["VP31%08d" % (1000 + i) for i in range(PARCELS)]  # consecutive, as a manifest prints them
    for i, t in enumerate(tracking):
        seed_parcel(home, t, "R-50", "C-500", i, window=(day - 1800, day + 13 * 3600))
    home.store.run("UPDATE parcels SET masked_receiver_name = '測*', masked_receiver_phone = '170******34',"
                   " masked_receiver_address = '測試市測試區樣例路1號 *棟***室'")
    qr: dict[str, str] = {}
    with home.store.transaction() as tx:  # the depot prints the labels before the van leaves
        for t in tracking:
            qr[t] = labels.issue(tx, home.keys, home.audit, t, day - 3600, "operator:depot")
    service = start_gateway(home, mqtt_broker, clock=lambda: clock[0])
    secret = registry.add_device(home.store, home.keys.kek, "SIM-50", "simulator")
    username, password = mqtt_broker.add_device("SIM-50")
    hh = Handheld({"device_id": "SIM-50", "master_secret": secret, "lang": "en",
                   "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port, "username": username,
                            "password": password, "keepalive": 600}}, clock=lambda: clock[0], timeout=20)
    revealed: dict[str, list[str]] = {}
    denied: list[tuple[str, Any]] = []
    try:
        hh.login("C-500", "2580")
        hh.wait(lambda: len(hh.app.parcels) == PARCELS, "receive the route")
        for i, t in enumerate(tracking):
            clock[0] += MINUTES_PER_PARCEL * 60
            view = hh.scan_label(qr[t])
            assert view.get("in_hand"), view
            wanted = ["phone"] if i % 4 == 1 else ["address"] if i % 25 == 7 else []
            if wanted:
                reason = "call-before-delivery" if wanted == ["phone"] else "address-unclear"
                got = hh.reveal(t, wanted, reason)
                if got:
                    revealed[t] = wanted
                else:
                    denied.append((t, got.denied))
                hh.advance(35)  # the display time runs out
            assert hh.deliver(t, code="%06d" % (100000 + i)), t
        hh.wait(lambda: not len(hh.app.queue), "upload the last deliveries")
        hh.settle()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and home.store.one(
                "SELECT COUNT(*) FROM parcels WHERE route_id = 'R-50' AND state = 'delivered'")[0] < PARCELS:
            time.sleep(0.05)
    finally:
        hh.close()
        service.stop()
    store = home.store
    outcomes = dict(store.all("SELECT outcome, COUNT(*) FROM requests GROUP BY outcome"))
    budget = sum(outcomes.get(k, 0) for k in ("budget", "repeat", "scraper", "depot", "damaged-used"))
    suspensions = store.one("SELECT COUNT(*) FROM incidents")[0]
    preissued = store.one("SELECT COUNT(DISTINCT tracking_no) FROM releases WHERE path = 'offline'")[0]
    phones = sum(1 for w in revealed.values() if w == ["phone"])
    print("honest shift: %d delivered, %d phones and %d addresses revealed, %d parcels pre-issued offline;"
          " %d budget denials, %d suspensions; requests %s"
          % (store.one("SELECT COUNT(*) FROM parcels WHERE state = 'delivered'")[0], phones,
             len(revealed) - phones, preissued, budget, suspensions, outcomes))
    assert denied == [], denied
    assert budget == 0 and suspensions == 0
    assert registry.courier_state(store, "C-500") == "active"
    assert registry.device_state(store, "SIM-50") == "active"
    assert store.one("SELECT COUNT(*) FROM alarms")[0] == 0
    assert store.one("SELECT COUNT(*) FROM parcels WHERE state = 'delivered'")[0] == PARCELS
    assert phones >= PARCELS // 4 - 1 and preissued > 0  # pre-issue did run on its schedule
