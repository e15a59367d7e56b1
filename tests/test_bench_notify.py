"""The notices-per-second bench (tools/bench/notify.py) sends every notice once."""

from __future__ import annotations

from tools.bench import notify


def test_the_notify_bench_sends_one_notice_per_person_and_reports_a_rate() -> None:
    got = notify.run(people=12)
    assert (got["email"], got["sms"]) == (4, 8)
    assert got["notices_per_second"] > 0
