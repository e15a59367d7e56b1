"""The label proves the parcel is in hand, end to end: the firmware source
in the simulator against the live gateway, on Mosquitto and on the embedded
broker. An honest courier scanning the labels the depot printed reveals and
delivers; a typed or barcode-read tracking number shows the parcel masked,
sends no scan and offers only the damaged-label reveal, which the gateway
allows under its per-shift allowance; a reprint voids the old label; a
handheld the depot suspended says so; a login with no answer gives up; a
delivery the gateway could not record stays in flash and goes again."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from firmware import app as appmod
from protocol import messages
from tests.fixtures.gateway import FAKE_PEOPLE
from tests.fixtures.handheld import SimDepot
from tools.simulator import SimulatorError

pytestmark = pytest.mark.slow


def scans_of(depot: SimDepot, device: str = "SIM-1") -> list[str]:
    return [r[0] for r in depot.home.store.all("SELECT tracking_no FROM scans WHERE device_id = ?"
                                               " ORDER BY at", device)]


def strikes_of(depot: SimDepot, courier: str = "C-112") -> int:
    row = depot.home.store.one("SELECT COUNT(*) FROM requests WHERE courier_id = ? AND strike = 1", courier)
    return int(row[0]) if row else 0


def test_honest_courier_scanning_the_printed_labels_reveals_and_delivers(sim_depot_any: SimDepot) -> None:
    depot = sim_depot_any
    hh = depot.handheld()
    hh.login(depot.badge, depot.pin)
    revealed = 0
    for i, tn in enumerate(depot.route):
        view = hh.scan_label(depot.labels[tn])
        assert view["tracking_no"] == tn and view["in_hand"], view
        if i % 2 == 0:
            got = hh.reveal(tn, ["phone"], "call-before-delivery")
            assert got.shown == {"phone": FAKE_PEOPLE[i % len(FAKE_PEOPLE)][1]}, got
            revealed += 1
        assert hh.deliver(tn, code="135790")
    hh.wait(lambda: not len(hh.app.queue), "see every delivery acknowledged")
    assert revealed == 3
    assert [depot.parcel_state(tn) for tn in depot.route] == ["delivered"] * len(depot.route)
    assert sorted(scans_of(depot)) == sorted(depot.route)
    assert strikes_of(depot) == 0
    assert depot.home.store.one("SELECT COUNT(*) FROM incidents") == (0,)
    assert hh.app.state == appmod.READY


@pytest.mark.parametrize("how", ["type_in", "scan"])
def test_typed_or_barcode_number_shows_the_parcel_but_never_puts_it_in_hand(sim_depot_any: SimDepot,
                                                                             how: str) -> None:
    depot = sim_depot_any
    hh = depot.handheld()
    hh.login(depot.badge, depot.pin)
    tn = depot.route[0]
    sent = hh.device.mqtt.bytes_sent
    view = getattr(hh, how)(tn)
    assert view["tracking_no"] == tn and not view["in_hand"]
    assert "Label QR not scanned" in view["screen"] and FAKE_PEOPLE[0][1] not in view["screen"]
    hh.step()
    assert hh.device.mqtt.bytes_sent == sent        # no scan went out
    got = hh.reveal(tn, ["phone"], "recipient-not-reachable")
    assert not got and got.code == messages.DENY_SCAN_FIRST
    assert hh.device.mqtt.bytes_sent == sent        # nor a reveal request: the handheld refused by itself
    # The same parcel through its label: in hand, revealed.
    hh.scan_label(depot.labels[tn])
    assert hh.reveal(tn, ["phone"], "recipient-not-reachable").shown == {"phone": FAKE_PEOPLE[0][1]}
    assert scans_of(depot) == [tn] and strikes_of(depot) == 0


def test_damaged_label_reveal_uses_the_allowance_and_is_flagged(sim_depot_any: SimDepot) -> None:
    depot = sim_depot_any
    hh = depot.handheld()
    hh.login(depot.badge, depot.pin)
    a, b, c = depot.route[0], depot.route[1], depot.route[2]
    hh.type_in(a)
    hh._keys([appmod.KEY_REVEAL, "2", appmod.KEY_ENTER])
    hh.step()
    assert hh.app.state == appmod.REASON
    menu = hh.screen()
    assert "6 Label damaged" in menu and "Uses this shift's damaged-label allowance" in menu
    assert "1 Recipient not reachable" not in menu
    hh._keys([appmod.KEY_BACK, appmod.KEY_BACK])
    hh.step()
    assert hh.reveal(a, ["phone"], "label-damaged").shown == {"phone": FAKE_PEOPLE[0][1]}
    hh.scan(b)
    assert hh.reveal(b, ["phone"], "label-damaged")
    hh.type_in(c)
    third = hh.reveal(c, ["phone"], "label-damaged")
    assert third.code == messages.DENY_DAMAGED_USED and third.denied == messages.DENIALS[13]
    assert "Reveal denied: damaged-label allowance used up" in hh.screen()
    flags = depot.home.store.all("SELECT tracking_no FROM security_events WHERE kind = 'label-damaged'"
                                 " ORDER BY at")
    assert [r[0] for r in flags] == [a, b]
    assert scans_of(depot) == []


def test_a_reprinted_label_voids_the_old_one(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    tn = sim_depot.route[3]
    old = sim_depot.labels[tn]
    new = sim_depot.reprint(tn)
    hh.scan_label(old)
    hh.wait(lambda: hh.app.notice == messages.DENIALS[messages.DENY_LABEL], "hear the old label refused")
    got = hh.reveal(tn, ["phone"], 1)
    assert got.code == messages.DENY_SCAN_FIRST
    hh.scan_label(new)
    assert hh.reveal(tn, ["phone"], 1).shown == {"phone": FAKE_PEOPLE[3 % len(FAKE_PEOPLE)][1]}


def test_a_suspended_handheld_says_so(sim_depot: SimDepot) -> None:
    sim_depot.home.config.sentinel.per_minute = 1
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    a, b, c = sim_depot.route[0], sim_depot.route[1], sim_depot.route[2]
    hh.scan_label(sim_depot.labels[a])
    assert hh.reveal(a, ["phone"], 1)
    hh.scan_label(sim_depot.labels[b])
    tripped = hh.reveal(b, ["phone"], 1)             # the second release in a minute: budget, suspension
    assert not tripped                               # and the denial says so at once
    hh.wait(lambda: hh.app.state == appmod.SUSPENDED, "hear it is suspended")
    assert c not in hh.app.parcels or hh.scan_label(sim_depot.labels[c]).get("error") is not None
    assert "Account or handheld suspended: ask the depot" in hh.screen()
    assert hh.app.session is None and hh.app.tokens.shown == {} and hh.app.tokens.offline == {}


def test_a_handheld_the_broker_refuses_says_it_was_refused(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld()
    hh.login(sim_depot.badge, sim_depot.pin)
    sim_depot.broker.admin.disable_client("SIM-1")   # what a suspension does with broker admin rights
    hh.wait(lambda: hh.app.state == appmod.SUSPENDED, "be refused by the broker", timeout=30)
    assert "refused this handheld" in hh.screen() and "Offline" in hh.screen()
    sim_depot.broker.admin.enable_client("SIM-1")    # lifted: the next connection gets in
    hh.wait(lambda: hh.app.state == appmod.BADGE, "get back in", timeout=30)
    assert "Scan your badge" in hh.screen()


def test_login_without_an_answer_gives_up_and_says_so(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld(settings={"login_timeout": 2})
    sim_depot.service.stop()                         # the broker is up; nobody answers
    with pytest.raises(SimulatorError, match="No answer from the gateway"):
        hh.login(sim_depot.badge, sim_depot.pin)
    assert hh.app.state == appmod.BADGE and "Scan your badge" in hh.screen()


def test_a_delivery_the_gateway_could_not_record_stays_and_goes_again(sim_depot_any: SimDepot) -> None:
    depot = sim_depot_any
    hh = depot.handheld(settings={"unavailable_retry": 1})
    hh.login(depot.badge, depot.pin)
    tn = depot.route[4]
    hh.scan_label(depot.labels[tn])
    hh.wait(lambda: scans_of(depot) == [tn], "see the scan stored")
    # Another writer holds the database: the gateway cannot write and answers "unavailable".
    blocker = sqlite3.connect(str(depot.home.config.database_path), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert hh.deliver(tn, code="246813")
        hh.wait(lambda: any("gateway unavailable" in line for line in hh.app.log_lines),
                "hear the gateway could not record it", timeout=40)
        assert len(hh.app.queue) == 1 and "queue" in hh.flash_contents()
        assert hh.app.notice == "The gateway cannot record now: sending again shortly"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    hh.wait(lambda: not len(hh.app.queue), "see the delivery acknowledged", timeout=40)
    assert depot.parcel_state(tn) == "delivered"
    row = depot.home.store.one("SELECT COUNT(*) FROM audit WHERE action = 'deliver' AND parcel = ?", tn)
    assert row == (1,)


def test_denials_show_in_the_couriers_language(sim_depot: SimDepot) -> None:
    hh = sim_depot.handheld(settings={"lang": "zh-Hans"})
    hh.login(sim_depot.badge, sim_depot.pin)
    tn = sim_depot.route[5]
    hh.type_in(tn)
    got = hh.reveal(tn, ["phone"], 1)
    assert got.denied == "请先扫描面单二维码" and got.code == messages.DENY_SCAN_FIRST
    sim_depot.home.config.reveal.ignore_window = False
    sim_depot.home.store.run("UPDATE parcels SET window_start = ?, window_end = ? WHERE tracking_no = ?",
                             time.time() + 7200, time.time() + 9000, tn)
    hh.scan_label(sim_depot.labels[tn])
    late = hh.reveal(tn, ["phone"], 1)
    assert late.code == messages.DENY_WINDOW
    screen = hh.screen()
    assert "查看被拒绝：不在包裹的派送时段内" in screen
    assert not re.search("[A-Za-z]{3,}", screen), screen
