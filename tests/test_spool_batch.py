"""Interrupted batches of 50: paper out, head open, cable pulled. Afterwards
exactly 50 labels, no duplicates, none lost, in order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from printer_drivers import LANGUAGES, MaskedLabel, dialect, layout, load_template
from printer_drivers.delivery import deliver
from printer_drivers.emulated_link import PtyPrinter
from printer_drivers.spool import PRINTED, UNCERTAIN, Spool
from printer_drivers.transport import Printer
from tests.fixtures.printers import masked_view

BATCH = 50


def tracking(i: int) -> str:
    return "VPB%05d" % i


def fill(spool: Spool, language: str, name: str = "depot-1") -> None:
    template = load_template("76x130")
    for i in range(BATCH):
        lay = layout(template, MaskedLabel.from_mapping(masked_view(tracking(i))))
        spool.submit(name, tracking(i), dialect(language).encode(lay))


def printed_tracking(pp: PtyPrinter) -> list[str | None]:
    return pp.call(lambda e: [label.tracking_no for label in e.printed])


def repair(pp: PtyPrinter) -> Callable[[float], None]:
    """The spool's sleep while it waits: the next time it waits, a person
    reloads paper, closes the head, plugs the cable back."""

    def sleep(_: float) -> None:
        if not pp.plugged:
            pp.replug()
        pp.call(lambda e: (e.load_paper(), e.close_head()))

    return sleep


@pytest.mark.parametrize("language", LANGUAGES)
def test_paper_out_mid_batch_prints_each_label_once(
    tmp_path: Path, pty_printer: Callable[..., PtyPrinter], language: str
) -> None:
    pp = pty_printer(language, paper=20)  # the roll ends after 20 labels
    pp.call(lambda e: e.jam_on_label(35))  # and once more in the middle of label 35
    spool = Spool(tmp_path / "spool.sqlite3")
    fill(spool, language)
    report = deliver(
        spool,
        "depot-1",
        Printer(str(pp.path), dialect(language), baud=9600),
        sleep=repair(pp),
        give_up_after=30,
    )
    assert any("paper out" in why for why in report.waited_for)
    assert printed_tracking(pp) == [tracking(i) for i in range(BATCH)]
    assert spool.counts() == {PRINTED: BATCH}


@pytest.mark.parametrize("language", LANGUAGES)
def test_head_opened_mid_batch_prints_each_label_once(
    tmp_path: Path, pty_printer: Callable[..., PtyPrinter], language: str
) -> None:
    pp = pty_printer(language)
    spool = Spool(tmp_path / "spool.sqlite3")
    fill(spool, language)
    pp.call(lambda e: e.jam_on_label(10, "head open"))
    report = deliver(
        spool,
        "depot-1",
        Printer(str(pp.path), dialect(language), baud=115200),
        sleep=repair(pp),
        give_up_after=30,
    )
    assert any("head open" in why for why in report.waited_for)
    assert printed_tracking(pp) == [tracking(i) for i in range(BATCH)]


@pytest.mark.parametrize("language", ["zpl", "cpcl"])
@pytest.mark.parametrize("extra_bytes", [0, 40], ids=["after-whole-label", "mid-next-label"])
def test_cable_pulled_mid_batch_prints_each_label_once(
    tmp_path: Path, pty_printer: Callable[..., PtyPrinter], language: str, extra_bytes: int
) -> None:
    pp = pty_printer(language)
    pp.unplug_after_label(17, extra_bytes)
    spool = Spool(tmp_path / "spool.sqlite3")
    fill(spool, language)
    report = deliver(
        spool,
        "depot-1",
        Printer(str(pp.path), dialect(language), baud=9600, timeout=0.5),
        sleep=repair(pp),
        give_up_after=30,
    )
    assert report.reconnects >= 1
    got = printed_tracking(pp)
    assert got == [tracking(i) for i in range(BATCH)]
    assert spool.counts() == {PRINTED: BATCH}


def test_cable_pulled_on_a_printer_without_counter_holds_the_label_for_a_person(
    tmp_path: Path, pty_printer: Callable[..., PtyPrinter]
) -> None:
    pp = pty_printer("tspl")
    pp.unplug_after_label(17)
    audit: list[tuple[str, dict[str, object]]] = []
    spool = Spool(tmp_path / "spool.sqlite3", audit=lambda action, details: audit.append((action, details)))
    fill(spool, "tspl")
    printer = Printer(str(pp.path), dialect("tspl"), baud=9600, timeout=0.5)
    deliver(spool, "depot-1", printer, sleep=repair(pp), give_up_after=30)
    got = printed_tracking(pp)
    assert len(got) == len(set(got)) == BATCH  # nothing printed twice
    [held] = spool.jobs(states=[UNCERTAIN])
    assert held.tracking_no in got and audit[0][0] == "label.uncertain"
    spool.settle(held.id, printed=True, actor="op-1", reason="label 18 seen on the printer")
    assert spool.counts() == {PRINTED: BATCH}
