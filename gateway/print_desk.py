"""A handheld's print_job: a label for a parcel of the logged-in courier's
route, queued in the gateway's print spool (masked fields only). The
print_status reply says queued, or failed and why."""

from __future__ import annotations

from typing import Any

from gateway import registry
from gateway.home import Home
from gateway.logs import log_event
from gateway.replies import Msg, Reply, Work, refused
from gateway.store import Handle
from protocol import messages

PRINT_QUEUED, PRINT_FAILED = 1, 4  # messages.PRINT_STATES


class PrintDesk:
    def __init__(self, home: Home) -> None:
        self.home = home
        self._spool: Any = None  # printer_drivers.spool.Spool, opened on the first print_job

    def print_job(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        row = registry.session_on(tx, device_id)
        if row is None:
            raise refused("not logged in on device " + device_id, messages.DENY_NOT_LOGGED_IN)
        courier, tracking_no = row[1], f["tracking_no"]
        owner = tx.one("SELECT r.courier_id FROM parcels p JOIN routes r ON r.route_id = p.route_id"
                       " WHERE p.tracking_no = ?", tracking_no)
        if owner is None or owner[0] != courier:
            raise refused("parcel %s is not on a route of courier %s" % (tracking_no, courier),
                          messages.DENY_NOT_ON_ROUTE)
        state, detail = self._queue(tx, device_id, courier, tracking_no, f, now)
        work.replies.append(Reply(device_id, "print_status", {"job": f["job"], "state": state,
                                                              "detail": detail[:200]}))

    def _queue(self, tx: Handle, device_id: str, courier: str, tracking_no: str, f: Msg,
               now: float) -> tuple[int, str]:
        from gateway.label_source import view as masked
        from gateway.labels import issue as issue_label
        from printer_drivers import render_label
        from printer_drivers.config import load_printers
        from printer_drivers.label import LabelError
        from printer_drivers.spool import Spool, SpoolError

        home = self.home.config.home
        try:
            printer = load_printers(home).get(f["printer"])
        except ValueError as e:
            printer, why = None, str(e)
        else:
            why = "no printer %s at this gateway" % f["printer"]
        if printer is None:
            return PRINT_FAILED, why
        if f.get("copies", 1) != 1:
            return PRINT_FAILED, "one label per parcel; a second label is a reprint with a reason"
        audit = self.home.audit
        try:
            # The masked view as this transaction sees it (never the vault), with
            # the label's possession proof; a handheld prints a parcel's first label only.
            qr = issue_label(tx, self.home.keys, audit, tracking_no, now, audit.person("courier", courier))
            view = masked(tx, tracking_no, qr)
            data = render_label(view, printer.language, f.get("template") or printer.template, printer.dpi,
                                printer.zpl_font)
        except (LabelError, OSError, ValueError) as e:
            return PRINT_FAILED, "label for %s: %s" % (tracking_no, e)
        if self._spool is None:
            self._spool = Spool.at_home(home)
        try:
            job_id = self._spool.submit_many(printer.name, [(tracking_no, data)])[0]
        except SpoolError as e:
            return PRINT_FAILED, str(e)
        try:
            audit.append(tx, now, audit.person("courier", courier), device_id, "print",
                         tracking_no, "queued", {"printer": printer.name, "job": job_id})
        except Exception:
            self._spool.cancel(job_id)  # no label without its audit entry
            raise
        log_event("print-queued", device=device_id, parcel=tracking_no, printer=printer.name, job=job_id)
        return PRINT_QUEUED, "spool job %d" % job_id
