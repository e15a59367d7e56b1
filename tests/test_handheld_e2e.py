"""End to end: the firmware source (in the simulator, hal/host) against the
gateway service over a real Mosquitto: login, scan a real label's QR,
reveal, deliver; a sealed parcel refused; the offline queue replayed in
order; a broker restart survived; TLS; and never a manifest plaintext in the
handheld's flash. (tests/test_handheld_labels.py: typed numbers, damaged
labels, reprints, suspensions, an unavailable gateway, on both brokers.)"""

from __future__ import annotations

import time

import pytest

from protocol import messages
from tests.fixtures.gateway import FAKE_PEOPLE, leaks
from tests.fixtures.handheld import SimDepot

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def flash_leaks(hh) -> list[bytes]:
    return leaks(b"".join(hh.flash_contents().values()))


def test_login_scan_reveal_deliver(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    target = sim_depot.route[0]
    view = hh.scan_label(sim_depot.labels[target])
    assert view["tracking_no"] == target and view["in_hand"]
    assert FAKE_PEOPLE[0][1] not in view["screen"]

    got = hh.reveal(target, ["phone"], "call-before-delivery")
    assert got.denied is None, got.denied
    assert got.shown == {"phone": FAKE_PEOPLE[0][1]}
    assert FAKE_PEOPLE[0][1] in hh.screen()

    buf = hh.app.tokens.shown[target].fields[2]
    hh.advance(31)                                  # the display TTL is 30 s
    assert bytes(buf) == bytes(len(buf))
    assert FAKE_PEOPLE[0][1] not in hh.screen()

    assert hh.deliver(target, code="135790")
    hh.wait(lambda: sim_depot.parcel_state(target) == "delivered", "see the parcel sealed")
    assert flash_leaks(hh) == []


def test_reveal_of_a_sealed_parcel_is_refused_by_the_gateway(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    target = sim_depot.route[1]
    hh.scan_label(sim_depot.labels[target])
    assert hh.deliver(target)
    hh.wait(lambda: sim_depot.parcel_state(target) == "delivered", "see the parcel sealed")
    hh.scan_label(sim_depot.labels[target])
    local = hh.reveal(target, ["phone"], 1)
    assert local.denied == "parcel is sealed after delivery"   # the handheld refuses by itself
    assert local.code == messages.DENY_SEALED and not hh.app.outbox
    hh.app.delivered.clear()                        # a handheld that forgot (or was tampered with)
    got = hh.reveal(target, ["phone"], 1)
    assert not got
    assert got.code == messages.DENY_SEALED and got.denied == messages.DENIALS[messages.DENY_SEALED]
    assert hh.app.tokens.shown == {}


def test_offline_scans_and_delivery_replay_in_order_after_reconnect(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    a, b, c = sim_depot.route[2], sim_depot.route[3], sim_depot.route[4]
    hh.go_offline()
    hh.scan_label(sim_depot.labels[a])
    hh.advance(1)
    hh.scan_label(sim_depot.labels[b])
    hh.advance(1)
    assert hh.deliver(b, code="246800")
    hh.advance(1)
    hh.scan_label(sim_depot.labels[c])
    assert len(hh.app.queue) == 4
    assert "queue" in hh.flash_contents()
    assert flash_leaks(hh) == []
    # A reboot while offline keeps the queue (flash), not the plaintext (RAM).
    hh.reboot()
    assert len(hh.app.queue) == 4
    hh.go_online()
    assert len(hh.app.queue) == 0
    hh.wait(lambda: sim_depot.parcel_state(b) == "delivered", "see the offline delivery")
    rows = sim_depot.home.store.all(
        "SELECT tracking_no, at FROM scans WHERE device_id = 'SIM-1' ORDER BY at")
    assert [r[0] for r in rows] == [a, b, c]
    assert sim_depot.parcel_state(a) == "out_for_delivery"


def test_offline_reveal_uses_a_preissued_token_and_reports_its_use(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    target = sim_depot.route[5]
    hh.scan_label(sim_depot.labels[target])
    hh.app.request_preissue(hh.now())
    hh.wait(lambda: target in hh.app.tokens.offline, "receive pre-issued tokens")
    hh.go_offline()
    got = hh.reveal(target, ["phone"], 1)
    assert got.shown == {"phone": FAKE_PEOPLE[5 % len(FAKE_PEOPLE)][1]}
    again = hh.reveal(target, ["phone"], 1)         # single use
    assert again.denied == "Offline and no pre-issued token"
    hh.go_online()
    hh.wait(lambda: sim_depot.home.store.one(
        "SELECT used FROM tokens WHERE device_id = 'SIM-1' AND tracking_no = ? AND offline = 1",
        target)[0] is not None, "see the token use recorded")
    assert flash_leaks(hh) == []


def test_handheld_survives_a_broker_restart(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    hh.scan_label(sim_depot.labels[sim_depot.route[0]])
    sim_depot.broker.restart()
    hh.wait(lambda: not hh.app.online, "notice the broker going away", timeout=60)
    hh.wait(lambda: hh.app.online, "reconnect after the restart", timeout=60)
    hh.wait(lambda: sim_depot.service.connected, "see the gateway back", timeout=60)
    target = sim_depot.route[1]
    hh.scan_label(sim_depot.labels[target])
    got = hh.reveal(target, ["name"], 2)
    assert got.shown == {"name": FAKE_PEOPLE[1][0]}, got.denied


def test_handheld_speaks_tls_to_mosquitto(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld("SIM-TLS", tls=True)
    assert hh.device.mqtt is not None and type(hh.device.mqtt.sock).__name__ == "SSLSocket"
    hh.login(sim_depot.badge, sim_depot.pin)
    view = hh.scan_label(sim_depot.labels[sim_depot.route[0]])
    assert view["tracking_no"] == sim_depot.route[0]


def test_wrong_pin_is_refused_with_the_gateway_reason(sim_depot: SimDepot) -> None:
    from tools.simulator import SimulatorError

    hh = sim_depot.handheld()
    with pytest.raises(SimulatorError, match="badge or PIN is wrong"):
        hh.login(sim_depot.badge, "0000")


def test_parcel_not_on_the_route_shows_no_view(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    other = sim_depot.depot.other[0]
    sent = hh.device.mqtt.bytes_sent
    view = hh.scan_label(sim_depot.labels[other])
    assert "error" in view and "not on this route" in view["error"]
    hh.step()
    assert hh.device.mqtt.bytes_sent == sent           # another route's label is not even sent


def test_retained_wipe_command_takes_effect_at_once(sim_depot: SimDepot) -> None:
    from gateway.handlers import Reply, Work

    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    target = sim_depot.route[0]
    hh.scan_label(sim_depot.labels[target])
    assert hh.reveal(target, ["phone"], 1)
    buf = hh.app.tokens.shown[target].fields[2]
    master = hh.app.master
    # The gateway's own publish path: sealed under the device key, retained on cmd.
    sim_depot.service._publish(Work(replies=[Reply("SIM-1", "command", {"id": 1, "cmd": 1}, retain=True)]),
                               hh.now())
    hh.wait(lambda: hh.app.state == "wiped", "be wiped")
    assert bytes(buf) == bytes(len(buf)) and master is not None and bytes(master) == bytes(32)
    assert hh.hal.keystore.get("master") is None
    assert "Device wiped" in hh.screen()
    assert set(hh.flash_contents()) <= {"seq"}


def test_an_open_complaint_case_reopens_a_delivered_parcel_for_its_courier_after_a_fresh_login(
        sim_depot: SimDepot) -> None:
    from gateway import registry, retention

    h = sim_depot.home
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    target = sim_depot.route[2]
    hh.scan_label(sim_depot.labels[target])
    assert hh.deliver(target)
    hh.wait(lambda: sim_depot.parcel_state(target) == "delivered", "see the parcel sealed")
    hh.scan_label(sim_depot.labels[target])
    local = hh.reveal(target, ["phone"], 1)
    assert local.code == messages.DENY_SEALED  # no case yet: the handheld refuses by itself
    registry.add_officer(h.store, "Officer A", "111111")
    registry.add_officer(h.store, "Officer B", "222222")
    retention.open_case(h.store, h.audit, "CASE-7", target, "receiver disputes the delivery", "Staff S",
                        time.time(), for_account=sim_depot.badge, fields=(2,))
    for name, pin in (("Officer A", "111111"), ("Officer B", "222222")):
        retention.approve_case(h.store, h.audit, h.config, "CASE-7", name, pin, time.time())
    fresh = sim_depot.handheld("SIM-2")  # a fresh login on another handheld: the manifest is all it knows
    fresh.login(sim_depot.badge, sim_depot.pin)
    view = fresh.scan_label(sim_depot.labels[target])
    assert view["tracking_no"] == target
    got = fresh.reveal(target, ["phone"], 1)
    assert got.denied is None, got.denied
    assert got.shown == {"phone": FAKE_PEOPLE[2][1]}
    assert flash_leaks(fresh) == []
