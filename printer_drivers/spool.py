"""The print spool: label jobs in a SQLite file, delivered to a printer so
that after paper-out, head-open or a pulled cable every label prints once.

Why this is exactly-once, and where it cannot be:

- The printer is set to reprint after an error (TSPL `SET REPRINT ON`, ZPL
  `^JZY`): a label that paper-out or an open head interrupts stays in the
  printer and prints when the fault clears. So with the link up the spool
  never resends; it waits for the printer to report ready and idle again.
- A dropped link is the hard case: the bytes of a job may or may not have
  arrived. Status bits cannot tell "the label used the last paper" from "the
  label never printed", so the spool reads the printer's own printed-label
  counter before sending (job state `sending`, counter stored) and again
  once the printer is back and idle: counter moved, the job printed; it did
  not, the job is sent again. Every job starts with the language's "new
  format" command, so a half-received job is discarded by the printer.
- Languages without a counter (TSPL, ESC/POS) cannot be resolved this way: the
  job becomes `uncertain` and is held for a person, who looks at the printer
  and either confirms it or reprints it with a reason (audited). Never an
  automatic second label.

The spool is the only sender to its printers; a counter that moves is ours.
This module keeps the jobs; printer_drivers/delivery.py feeds them to the
printer. The table is small and its interface narrow, so it can move into
the gateway store later.
"""

from __future__ import annotations

import fcntl
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import PrinterError

QUEUED, SENDING, PRINTED, UNCERTAIN, CANCELLED = "queued", "sending", "printed", "uncertain", "cancelled"
OPEN_STATES = (QUEUED, SENDING)
MAX_REASON = 200
MAX_JOB_BYTES = 4 * 1024 * 1024

#: audit(action, details): the gateway's audit log plugs in here. It runs
#: before the change it records; if it raises, the change does not happen.
AuditHook = Callable[[str, dict[str, Any]], None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS print_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    printer TEXT NOT NULL,
    tracking_no TEXT NOT NULL,
    data BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    counter_before INTEGER,
    reprint_of INTEGER,
    reason TEXT,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS print_jobs_open ON print_jobs (printer, state, id);
"""


class SpoolError(PrinterError, ValueError):
    pass


@dataclass(frozen=True)
class Job:
    id: int
    printer: str
    tracking_no: str
    data: bytes
    state: str
    attempts: int
    counter_before: int | None
    reprint_of: int | None
    reason: str | None
    error: str | None
    created: float
    updated: float


class Spool:
    def __init__(
        self, path: Path | str, audit: AuditHook | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a job marked printed must stay printed
        self._db.executescript(SCHEMA)
        self._audit = audit
        self._clock = clock

    @classmethod
    def at_home(cls, home: Path | str, audit: AuditHook | None = None) -> Spool:
        return cls(Path(home) / "spool.sqlite3", audit)

    def close(self) -> None:
        self._db.close()

    # -- adding jobs -------------------------------------------------------
    def submit(self, printer: str, tracking_no: str, data: bytes) -> int:
        """A parcel's first label. A second one is a reprint: it needs a reason."""
        _check_job(printer, tracking_no, data)
        earlier = self._db.execute(
            "SELECT id, printer, state FROM print_jobs WHERE tracking_no=? AND state != ?"
            " ORDER BY id LIMIT 1",
            (tracking_no, CANCELLED),
        ).fetchone()
        if earlier is not None:
            raise SpoolError(
                "parcel %s already has a label (job %d on %s, %s): use reprint with a reason"
                % (tracking_no, earlier[0], earlier[1], earlier[2])
            )
        return self._insert(printer, tracking_no, data, None, None)

    def submit_many(self, printer: str, jobs: Iterable[tuple[str, bytes]]) -> list[int]:
        """Several first labels, all queued or none."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            ids = [self.submit(printer, tracking_no, data) for tracking_no, data in jobs]
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return ids

    def reprint(self, printer: str, tracking_no: str, data: bytes, reason: str, actor: str) -> int:
        """A second label for a parcel: needs a reason, written to the audit log first."""
        _check_job(printer, tracking_no, data)
        reason = (reason or "").strip()
        if not reason:
            raise SpoolError("a reprint needs a reason (e.g. 'label torn at sorting')")
        if len(reason) > MAX_REASON:
            raise SpoolError("reprint reason is %d characters, at most %d" % (len(reason), MAX_REASON))
        last = self._db.execute(
            "SELECT id FROM print_jobs WHERE tracking_no=? ORDER BY id DESC", (tracking_no,)
        ).fetchone()
        self._record(
            "label.reprint",
            {
                "tracking_no": tracking_no,
                "printer": printer,
                "reason": reason,
                "actor": actor,
                "reprint_of": last[0] if last else None,
            },
        )
        return self._insert(printer, tracking_no, data, last[0] if last else None, reason)

    def _insert(
        self, printer: str, tracking_no: str, data: bytes, reprint_of: int | None, reason: str | None
    ) -> int:
        now = self._clock()
        cur = self._db.execute(
            "INSERT INTO print_jobs (printer, tracking_no, data, state, reprint_of, reason, created, updated)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (printer, tracking_no, data, QUEUED, reprint_of, reason, now, now),
        )
        return int(cur.lastrowid or 0)

    # -- the delivery state machine ---------------------------------------------
    def next_job(self, printer: str) -> Job | None:
        row = self._db.execute(
            "SELECT * FROM print_jobs WHERE printer=? AND state IN (?,?) ORDER BY id LIMIT 1",
            (printer, *OPEN_STATES),
        ).fetchone()
        return _job(row) if row else None

    def mark_sending(self, job_id: int, counter_before: int | None) -> None:
        self._set(job_id, "state=?, counter_before=?, attempts=attempts+1", (SENDING, counter_before))

    def mark_printed(self, job_id: int) -> None:
        self._set(job_id, "state=?, error=NULL", (PRINTED,))

    def requeue(self, job_id: int, error: str) -> None:
        self._set(job_id, "state=?, error=?", (QUEUED, error))

    def mark_uncertain(self, job_id: int, error: str) -> None:
        job = self.job(job_id)
        self._record(
            "label.uncertain",
            {"job": job_id, "tracking_no": job.tracking_no, "printer": job.printer, "why": error},
        )
        self._set(job_id, "state=?, error=?", (UNCERTAIN, error))

    def settle(self, job_id: int, printed: bool, actor: str, reason: str) -> int | None:
        """A person looked at an uncertain job: it printed (close it) or it did
        not (queue it again). Returns the job id queued, if any."""
        job = self.job(job_id)
        if job.state != UNCERTAIN:
            raise SpoolError("job %d is %s, only uncertain jobs are settled by hand" % (job_id, job.state))
        if not reason.strip():
            raise SpoolError("settling an uncertain job needs a reason")
        self._record(
            "label.settle",
            {
                "job": job_id,
                "tracking_no": job.tracking_no,
                "printed": printed,
                "actor": actor,
                "reason": reason.strip(),
            },
        )
        if printed:
            self.mark_printed(job_id)
            return None
        self.requeue(job_id, "operator: not printed")
        return job_id

    def cancel(self, job_id: int) -> None:
        self._set(job_id, "state=?", (CANCELLED,))

    @contextmanager
    def feeding(self, printer: str) -> Iterator[None]:
        """Only one process feeds a printer at a time: its label counter must
        move for our jobs alone, and two senders would interleave labels."""
        lock = self.path.with_name("%s.%s.lock" % (self.path.name, re.sub(r"[^A-Za-z0-9_-]", "_", printer)))
        with open(lock, "a+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SpoolError(
                    "printer %s is being fed by another process; try again when it is done" % printer
                ) from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- reading ---------------------------------------------------------------
    def job(self, job_id: int) -> Job:
        row = self._db.execute("SELECT * FROM print_jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise SpoolError("no print job %d" % job_id)
        return _job(row)

    def jobs(self, printer: str | None = None, states: Iterable[str] | None = None) -> list[Job]:
        sql, args = "SELECT * FROM print_jobs WHERE 1=1", []
        if printer is not None:
            sql += " AND printer=?"
            args.append(printer)
        if states is not None:
            wanted = list(states)
            sql += " AND state IN (%s)" % ",".join("?" * len(wanted))
            args += wanted
        return [_job(r) for r in self._db.execute(sql + " ORDER BY id", args)]

    def counts(self, printer: str | None = None) -> dict[str, int]:
        sql = "SELECT state, count(*) FROM print_jobs"
        args: tuple[str, ...] = ()
        if printer is not None:
            sql, args = sql + " WHERE printer=?", (printer,)
        return dict(self._db.execute(sql + " GROUP BY state", args).fetchall())

    # -- internals ---------------------------------------------------------------
    def _set(self, job_id: int, assignments: str, args: tuple[Any, ...]) -> None:
        n = self._db.execute(
            "UPDATE print_jobs SET %s, updated=? WHERE id=?" % assignments, (*args, self._clock(), job_id)
        ).rowcount
        if n != 1:
            raise SpoolError("no print job %d" % job_id)

    def _record(self, action: str, details: dict[str, Any]) -> None:
        if self._audit is not None:
            self._audit(action, details)


def _check_job(printer: str, tracking_no: str, data: bytes) -> None:
    if not printer or not tracking_no:
        raise SpoolError("a print job needs a printer name and a tracking number")
    if not data:
        raise SpoolError("refusing an empty print job for %s" % tracking_no)
    if len(data) > MAX_JOB_BYTES:
        raise SpoolError(
            "print job for %s is %d bytes, the limit is %d" % (tracking_no, len(data), MAX_JOB_BYTES)
        )


def _job(row: tuple[Any, ...]) -> Job:
    # print_jobs columns are in Job's field order; sqlite may hand the label back as a buffer.
    fields = list(row)
    fields[3] = bytes(fields[3])
    return Job(*fields)
