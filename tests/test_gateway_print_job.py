"""A handheld's print_job over a real broker: the gateway queues the masked
label in its print spool, answers print_status, and the spooled job prints
on an emulated printer (a pty pair) without a byte of plaintext."""

from __future__ import annotations

from collections.abc import Callable

from printer_drivers.config import load_printers
from printer_drivers.delivery import deliver
from printer_drivers.emulated_link import PtyPrinter
from printer_drivers.spool import QUEUED, Spool
from protocol import messages
from tests.fixtures.gateway import leaks


def _printers(live_depot, url: str) -> None:
    (live_depot.home.config.home / "printers.toml").write_text(
        '[printers.depot]\nurl = "%s"\nlanguage = "cpcl"\nbaud = 115200\n' % url, encoding="utf-8")


def _ready(live_depot):
    # The depot's parcels carry '*' placeholders; a label needs real masks.
    live_depot.home.store.run(
        "UPDATE parcels SET masked_receiver_name = '測*', masked_receiver_phone = '170******34',"
        " masked_receiver_address = '測試市測試區樣例路1號 *棟***室',"
        " masked_sender_name = 'T**** M*********', masked_sender_phone = '170******78',"
        " masked_sender_address = '1 Example Road, Flat *'")
    # The depot printed every label already; these two are still to print.
    live_depot.home.store.run("UPDATE parcels SET label_no = 0, label_issued = 0 WHERE tracking_no IN (?, ?)",
                              live_depot.route[0], live_depot.route[1])
    hh = live_depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    return hh


def test_print_job_is_spooled_answered_and_printed_on_the_emulated_printer(
        live_depot, pty_printer: Callable[..., PtyPrinter]) -> None:
    pp = pty_printer("cpcl")
    _printers(live_depot, str(pp.path))
    hh = _ready(live_depot)
    t = live_depot.route[0]
    name, status = hh.ask("print_job", {"job": 31, "printer": "depot", "tracking_no": t})
    assert name == "print_status", status
    assert status["job"] == 31 and messages.PRINT_STATES[status["state"]] == "queued", status
    home = live_depot.home.config.home
    spool = Spool.at_home(home)
    jobs = spool.jobs("depot", [QUEUED])
    assert [j.tracking_no for j in jobs] == [t]
    report = deliver(spool, "depot", load_printers(home)["depot"].open(), give_up_after=10, retry_delay=0.2)
    assert report.printed == [jobs[0].id]
    assert [label.tracking_no for label in pp.call(lambda e: list(e.printed))] == [t]
    assert leaks(bytes(pp.wire)) == []
    row = live_depot.home.store.one("SELECT outcome FROM audit WHERE action = 'print' AND parcel = ?", t)
    assert row is not None and row[0] == "queued"


def test_print_job_for_an_unknown_printer_or_a_second_label_fails_with_a_reason(live_depot, tmp_path) -> None:
    _printers(live_depot, "file:" + str(tmp_path / "out.prn"))
    hh = _ready(live_depot)
    t = live_depot.route[1]
    name, status = hh.ask("print_job", {"job": 1, "printer": "nowhere", "tracking_no": t})
    assert name == "print_status" and messages.PRINT_STATES[status["state"]] == "failed"
    assert "no printer nowhere" in status["detail"]
    assert hh.ask("print_job", {"job": 2, "printer": "depot", "tracking_no": t})[1]["state"] == 1
    name, status = hh.ask("print_job", {"job": 3, "printer": "depot", "tracking_no": t})
    assert messages.PRINT_STATES[status["state"]] == "failed" and "reprint" in status["detail"]
    assert len(Spool.at_home(live_depot.home.config.home).jobs("depot")) == 1


def test_print_job_for_another_couriers_parcel_is_refused(live_depot, tmp_path) -> None:
    _printers(live_depot, "file:" + str(tmp_path / "out.prn"))
    hh = _ready(live_depot)
    name, fields = hh.ask("print_job", {"job": 4, "printer": "depot", "tracking_no": live_depot.other[0]})
    assert name == "error" and "not on a route" in fields["detail"]
    assert Spool.at_home(live_depot.home.config.home).jobs("depot") == []
