"""Feeding a printer from the print spool (printer_drivers/spool.py): every
open job of one printer, in order, each printed once. The spool's docstring
says why this is exactly-once and where it cannot be: here the printer is
waited on until idle before and after each label, its label counter is read
around the send, and a job left `sending` by a dropped link is settled by
the counter (or held as `uncertain` for a person) before anything else."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from printer_drivers.spool import SENDING, Job, Spool
from printer_drivers.status import PrinterStatus
from printer_drivers.transport import PrinterOffline


class PrinterPort(Protocol):
    """What the spool needs from a printer (printer_drivers.transport.Printer)."""

    @property
    def has_counter(self) -> bool: ...
    def status(self) -> PrinterStatus: ...
    def label_count(self) -> int | None: ...
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


@dataclass
class Delivery:
    printed: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    waited_for: list[str] = field(default_factory=list)
    reconnects: int = 0
    stalled: str | None = None


def deliver(
    spool: Spool,
    name: str,
    printer: PrinterPort,
    *,
    retry_delay: float = 0.2,
    give_up_after: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Send every open job of printer `name`, in order, until none is left
    or the printer has been unusable for `give_up_after` seconds."""
    with spool.feeding(name):
        return _Feeder(spool, name, printer, retry_delay, give_up_after, sleep, clock).run()


class _Stalled(Exception):
    """The printer has been unusable for longer than the caller waits."""


class _Feeder:
    def __init__(self, spool: Spool, name: str, printer: PrinterPort, retry_delay: float,
                 give_up_after: float | None, sleep: Callable[[float], None],
                 clock: Callable[[], float]) -> None:
        self.spool, self.name, self.printer = spool, name, printer
        self.retry_delay, self.give_up_after = retry_delay, give_up_after
        self.sleep, self.clock = sleep, clock
        self.report = Delivery()
        self.last_progress = clock()

    def run(self) -> Delivery:
        try:
            while (job := self.spool.next_job(self.name)) is not None:
                try:
                    if job.state == SENDING:
                        self._settle(job)  # an earlier attempt lost the link before the label was confirmed
                    else:
                        self._print(job)
                except PrinterOffline as exc:
                    self._offline(exc)
        except _Stalled:
            pass
        return self.report

    def _check_stalled(self, why: str) -> None:
        if self.give_up_after is not None and self.clock() - self.last_progress > self.give_up_after:
            self.report.stalled = why
            raise _Stalled(why)

    def _noted(self, why: str) -> None:
        if not self.report.waited_for or self.report.waited_for[-1] != why:
            self.report.waited_for.append(why)

    def _wait_idle(self) -> None:
        while True:
            st = self.printer.status()
            if st.idle:
                return
            why = st.describe()
            self._noted(why)
            self._check_stalled(why)
            self.sleep(self.retry_delay)

    def _settle(self, job: Job) -> None:
        """A job left `sending`: the label counter says whether it printed;
        without a counter, a person decides (never an automatic second label)."""
        self._wait_idle()
        if job.counter_before is not None and self.printer.has_counter:
            now = self.printer.label_count()
            if now is not None and now > job.counter_before:
                self.spool.mark_printed(job.id)
                self.report.printed.append(job.id)
            else:
                self.spool.requeue(job.id, "not printed before the link dropped")
                self.report.resent.append(job.id)
        else:
            self.spool.mark_uncertain(job.id, "link dropped mid-job and the printer has no label counter")
            self.report.uncertain.append(job.id)
        self.last_progress = self.clock()

    def _print(self, job: Job) -> None:
        self._wait_idle()
        before = self.printer.label_count()
        self.spool.mark_sending(job.id, before)
        self.printer.send(job.data)
        # paper-out or head-open now: the printer keeps the label and
        # prints it once the fault clears; wait, do not resend
        self._wait_idle()
        if before is not None:
            after = self.printer.label_count()
            if after is None or after <= before:
                self.spool.requeue(job.id, "printer did not count the label")
                self.report.resent.append(job.id)
                return
        self.spool.mark_printed(job.id)
        self.report.printed.append(job.id)
        self.last_progress = self.clock()

    def _offline(self, exc: PrinterOffline) -> None:
        self.printer.close()
        self.report.reconnects += 1
        self._noted("offline")
        self._check_stalled("offline: %s" % exc)
        self.sleep(self.retry_delay)
