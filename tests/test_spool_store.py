"""The spool's persisted queue, reprints with a reason, and its audit hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from printer_drivers.spool import PRINTED, QUEUED, SENDING, UNCERTAIN, Spool, SpoolError


def test_jobs_survive_a_restart_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    ids = [spool.submit("p1", "VPS%03d" % i, b"job %d" % i) for i in range(3)]
    spool.mark_sending(ids[0], 41)
    spool.close()
    again = Spool(tmp_path / "spool.sqlite3")
    job = again.next_job("p1")
    assert job is not None and job.id == ids[0] and job.state == SENDING and job.counter_before == 41
    assert [j.tracking_no for j in again.jobs("p1")] == ["VPS000", "VPS001", "VPS002"]
    assert again.next_job("other-printer") is None


def test_reprint_needs_a_reason_and_is_audited_before_it_is_queued(tmp_path: Path) -> None:
    audit: list[tuple[str, dict[str, Any]]] = []
    spool = Spool(tmp_path / "s.sqlite3", audit=lambda action, details: audit.append((action, details)))
    first = spool.submit("p1", "VPR001", b"label")
    spool.mark_printed(first)
    with pytest.raises(SpoolError, match="reason"):
        spool.reprint("p1", "VPR001", b"label", "  ", actor="op-7")
    assert audit == [] and spool.counts() == {PRINTED: 1}
    again = spool.reprint("p1", "VPR001", b"label", "label torn at sorting", actor="op-7")
    assert audit == [
        (
            "label.reprint",
            {
                "tracking_no": "VPR001",
                "printer": "p1",
                "reason": "label torn at sorting",
                "actor": "op-7",
                "reprint_of": first,
            },
        )
    ]
    job = spool.job(again)
    assert job.state == QUEUED and job.reprint_of == first and job.reason == "label torn at sorting"


def test_reprint_is_refused_when_the_audit_log_is_down(tmp_path: Path) -> None:
    def broken(action: str, details: dict[str, Any]) -> None:
        raise RuntimeError("audit log unavailable")

    spool = Spool(tmp_path / "s.sqlite3", audit=broken)
    spool.submit("p1", "VPR002", b"label")
    with pytest.raises(RuntimeError, match="audit"):
        spool.reprint("p1", "VPR002", b"label", "smudged", actor="op-1")
    assert spool.counts() == {QUEUED: 1}


def test_overlong_reason_and_bad_jobs_are_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    with pytest.raises(SpoolError, match="at most"):
        spool.reprint("p1", "VPR003", b"x", "r" * 500, actor="op")
    with pytest.raises(SpoolError, match="empty"):
        spool.submit("p1", "VPR003", b"")
    with pytest.raises(SpoolError, match="limit"):
        spool.submit("p1", "VPR003", b"x" * (5 * 1024 * 1024))
    with pytest.raises(SpoolError, match="no print job"):
        spool.mark_printed(999)


def test_uncertain_job_settled_as_not_printed_goes_back_in_the_queue(tmp_path: Path) -> None:
    audit: list[str] = []
    spool = Spool(tmp_path / "s.sqlite3", audit=lambda action, details: audit.append(action))
    job = spool.submit("p1", "VPU001", b"label")
    spool.mark_sending(job, None)
    spool.mark_uncertain(job, "link dropped")
    with pytest.raises(SpoolError, match="reason"):
        spool.settle(job, printed=False, actor="op", reason="")
    assert spool.settle(job, printed=False, actor="op", reason="no label in the tray") == job
    assert spool.job(job).state == QUEUED
    assert audit == ["label.uncertain", "label.settle"]
    with pytest.raises(SpoolError, match="only uncertain"):
        spool.settle(job, printed=True, actor="op", reason="x")
    assert spool.counts() == {QUEUED: 1} and UNCERTAIN not in spool.counts()


def test_a_second_label_for_a_parcel_must_be_a_reprint(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    first = spool.submit("p1", "VPD001", b"label")
    with pytest.raises(SpoolError, match="reprint with a reason"):
        spool.submit("p2", "VPD001", b"label")
    spool.cancel(first)
    assert spool.submit("p2", "VPD001", b"label") > first  # a cancelled job never printed


def test_a_batch_with_one_duplicate_queues_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    spool.submit("p1", "VPD010", b"label")
    with pytest.raises(SpoolError, match="VPD010"):
        spool.submit_many("p1", [("VPD011", b"a"), ("VPD010", b"b")])
    assert [j.tracking_no for j in spool.jobs()] == ["VPD010"]
    assert len(spool.submit_many("p1", [("VPD011", b"a"), ("VPD012", b"b")])) == 2


def test_only_one_process_feeds_a_printer(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3")
    other = Spool(tmp_path / "s.sqlite3")
    with spool.feeding("depot 1"):
        with pytest.raises(SpoolError, match="another process"):
            with other.feeding("depot 1"):
                pass
        with other.feeding("depot-2"):  # another printer is free
            pass
    with other.feeding("depot 1"):
        pass
