"""A rented or sold courier account, three ways (invariants 3 and 6), over a
real broker: nothing without a provisioned handheld, nothing without the
parcel in hand, and a depot-wide scrape by someone holding every label of
the depot stopped after at most 3 records (tests/test_gate_attacks.py has
the attacker without labels)."""

import json
import os
import time

from gateway import registry
from tests.fixtures.gateway import Handheld, Spy, leaks


def test_courier_credentials_from_an_unprovisioned_client_get_nothing(live_depot):
    home, broker = live_depot.home, live_depot.broker
    registry.add_device(home.store, home.keys.kek, "HH-2", "test")
    registry.set_device_state(home.store, "HH-2", "active")
    revoked = registry.add_device(home.store, home.keys.kek, "HH-R", "test")
    registry.set_device_state(home.store, "HH-R", "revoked")
    spy = Spy(broker)
    clients = [
        Handheld(broker, "HH-X", os.urandom(32)),  # broker account, unknown to the gateway
        Handheld(broker, "HH-2", os.urandom(32)),  # a known device id, but not its key
        Handheld(broker, "HH-R", revoked),  # the right key of a revoked handheld
    ]
    try:
        for c in clients:
            c.send("hello", {"device": c.device_id, "fw": "x"})
            c.send("login", {"badge": "C-112", "pin_proof": b"4321"})
            c.send("reveal_request", {"req": 1, "tracking_no": live_depot.route[0], "fields": [1, 2, 3],
                                      "reason": 1, "session": b"\0" * 8})
        for c in clients:
            assert c.recv(timeout=1.0) is None, c.device_id
        seen = spy.drain()
    finally:
        for c in clients:
            c.close()
        spy.close()
    assert all(leaks(p) == [] for _, p, _ in seen)
    assert home.store.one("SELECT COUNT(*) FROM sessions WHERE device_id <> 'HH-1'")[0] == 0
    assert home.store.one("SELECT COUNT(*) FROM tokens")[0] == 0
    assert registry.device_state(home.store, "HH-2") == "active"  # a forgery does not change state


def test_provisioned_handheld_revealing_parcels_it_never_scanned_gets_nothing(live_depot):
    hh = live_depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    names = [hh.reveal(t, [1, 2, 3], req=i)[0] for i, t in enumerate(live_depot.route, 1)]
    assert set(names) == {"reveal_denied"}
    assert live_depot.home.store.one("SELECT COUNT(*) FROM tokens")[0] == 0
    assert registry.courier_state(live_depot.home.store, "C-112") == "suspended"


def test_scraping_every_parcel_in_the_depot_leaks_at_most_three_and_alarms_within_a_second(live_depot):
    home = live_depot.home
    spy = Spy(live_depot.broker)
    hh = live_depot.handheld(labels=live_depot.labels)  # every label of the depot in hand
    try:
        assert hh.login("C-112", "4321")["ok"]
        everything = live_depot.route + live_depot.other
        for t in everything:  # a thief holding the parcels' labels scans them all...
            hh.scan(t)
        spy.drain(quiet=0.2)
        spy.seen.clear()
        started = time.monotonic()
        for i, t in enumerate(everything, 1):  # ...and fires requests as fast as it can
            hh.client.publish("vp/v1/d/HH-1/up", hh.channel.wrap("reveal_request", {
                "req": i, "tracking_no": t, "fields": [1, 2, 3], "reason": 1, "session": hh.session},
                int(time.time())), qos=1)
        replies = [hh.recv(timeout=5.0) for _ in everything]
        seen = spy.drain()
    finally:
        spy.close()
    assert all(r is not None for r in replies)
    grants = [f for name, f in replies if name == "reveal_grant"]
    records = [hh.channel.open_token(g["token"], int(time.time()))[3] for g in grants]
    assert 1 <= len(records) <= 3
    alarms = [(p, at) for topic, p, at in seen if topic == "vp/v1/alarm"]
    assert len(alarms) == 1
    alarm_delay = alarms[0][1] - started
    print("alarm %.3f s after the scrape began; %d records leaked" % (alarm_delay, len(records)))
    assert alarm_delay <= 1.0, "alarm after %.3f s" % alarm_delay
    alarm = json.loads(alarms[0][0])
    assert "C-112" not in alarms[0][0].decode() and alarm["parcels"] == len(grants)
    assert registry.courier_state(home.store, "C-112") == "suspended"
    assert registry.device_state(home.store, "HH-1") == "suspended"
    listed = json.loads(home.store.one("SELECT parcels FROM incidents WHERE incident_id = ?",
                                       alarm["incident"])[0])
    assert {p["tracking_no"] for p in listed} == {g["tracking_no"] for g in grants}
