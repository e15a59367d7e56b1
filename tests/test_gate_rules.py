"""The gate's rules, one at a time, on `gate.decide` itself: a pure function
over facts, so each rule is shown by the smallest change of facts that
turns a grant into a denial (or a trip)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway import gate
from gateway.config import Config
from gateway.gate import Ask, DepotUsage, Facts, Usage
from protocol import messages as m

NOW = 1_900_000_000.0
T = "VP0000001103"


def _cfg() -> Config:
    return Config(home=Path("."))


def _facts(**usage: object) -> Facts:
    return Facts(device_state="active", account="C-112", account_state="active", depot="D-1",
                 shift_bounds=(NOW - 3600, NOW + 3600), routes=("R-07",), route_size=20, parcel_route="R-07",
                 parcel_state="out_for_delivery", window=(NOW - 600, NOW + 600), proven_at=NOW - 30,
                 usage=Usage(**usage))  # type: ignore[arg-type]


def _ask(kind: str = gate.REVEAL, fields: tuple[int, ...] = (2,), reason: int = 1, named: bool = True) -> Ask:
    return Ask(kind, "HH-1", T, fields, reason, named)


def test_a_fresh_label_scan_on_the_route_is_an_online_grant_of_new_fields() -> None:
    d = gate.decide(_ask(fields=(1, 2)), _facts(), NOW, _cfg())
    assert d.granted and d.path == gate.ONLINE and d.new_fields == (1, 2)


def test_no_label_scan_is_scan_first_and_a_strike() -> None:
    f = dataclasses.replace(_facts(), proven_at=None)
    d = gate.decide(_ask(), f, NOW, _cfg())
    assert d.code == m.DENY_SCAN_FIRST and d.strike and d.trip is None
    f.usage = Usage(strikes=2)
    assert gate.decide(_ask(), f, NOW, _cfg()).trip is not None  # the third strike suspends


def test_a_stale_label_scan_is_not_in_hand() -> None:
    f = dataclasses.replace(_facts(), proven_at=NOW - 11 * 60)
    assert gate.decide(_ask(), f, NOW, _cfg()).code == m.DENY_SCAN_FIRST


def test_what_the_courier_already_holds_is_granted_again_without_spending_any_budget() -> None:
    full = _facts(held=frozenset({2}), minute_grants=99, device_minute_grants=99, shift_releases=10_000)
    d = gate.decide(_ask(), full, NOW, _cfg())
    assert d.granted and d.new_fields == ()
    d = gate.decide(_ask(fields=(2, 3)), full, NOW, _cfg())  # a new field does spend
    assert not d.granted and d.trip is not None


def test_repeating_a_held_field_too_often_is_try_later_not_a_suspension() -> None:
    f = _facts(held=frozenset({2}), device_any_grants=gate.REPEAT_FACTOR * 6)
    d = gate.decide(_ask(), f, NOW, _cfg())
    assert d.code == m.DENY_TOO_MANY and d.trip is None and not d.strike


def test_per_minute_distinct_and_shift_budgets_trip() -> None:
    cfg = _cfg()
    assert gate.decide(_ask(), _facts(minute_grants=6), NOW, cfg).trip is not None
    three = frozenset({"A", "B", "C"})
    assert gate.decide(_ask(), _facts(minute_parcels=three), NOW, cfg).trip is not None
    assert gate.decide(_ask(), _facts(shift_releases=400), NOW, cfg).trip is not None
    cap = int(20 * cfg.sentinel.route_share) + gate.ROUTE_SLACK
    parcels = frozenset("P%d" % i for i in range(cap))
    assert gate.decide(_ask(), _facts(shift_parcels=parcels), NOW, cfg).trip is not None


def test_a_damaged_label_reveal_needs_reason_6_and_fits_the_allowance() -> None:
    cfg = _cfg()
    f = dataclasses.replace(_facts(), proven_at=None)
    d = gate.decide(_ask(reason=6), f, NOW, cfg)
    assert d.granted and d.path == gate.DAMAGED and d.flag == "label-damaged"
    f.usage = Usage(damaged_parcels=frozenset({"A", "B"}))
    d = gate.decide(_ask(reason=6), f, NOW, cfg)
    assert d.code == m.DENY_DAMAGED_USED and d.trip is None


def test_a_preissue_needs_a_label_scan_this_shift_and_the_offline_allowance() -> None:
    cfg = _cfg()
    f = dataclasses.replace(_facts(), proven_at=NOW - 3000)  # earlier this shift, long past fresh
    d = gate.decide(_ask(gate.PREISSUE), f, NOW, cfg)
    assert d.granted and d.path == gate.OFFLINE
    before = dataclasses.replace(_facts(), proven_at=NOW - 4000)  # before the shift began
    assert gate.decide(_ask(gate.PREISSUE, named=False), before, NOW, cfg).quiet
    full = dataclasses.replace(f, usage=Usage(offline_parcels=frozenset("P%d" % i for i in range(30))))
    d = gate.decide(_ask(gate.PREISSUE, named=False), full, NOW, cfg)
    assert d.code == m.DENY_OFFLINE_USED and d.quiet and d.trip is None


def test_a_preissue_may_come_before_the_window_opens_by_the_lead_time_only() -> None:
    cfg = _cfg()
    f = dataclasses.replace(_facts(), window=(NOW + 1800, NOW + 7200))
    assert gate.decide(_ask(gate.PREISSUE), f, NOW, cfg).granted
    assert gate.decide(_ask(), f, NOW, cfg).code == m.DENY_WINDOW  # online waits for the window
    later = dataclasses.replace(f, window=(NOW + 2 * 3600, NOW + 3 * 3600))
    assert gate.decide(_ask(gate.PREISSUE), later, NOW, cfg).code == m.DENY_WINDOW


def test_per_minute_budgets_do_not_count_preissues_but_shift_budgets_do() -> None:
    cfg = _cfg()
    f = dataclasses.replace(_facts(minute_grants=99, minute_parcels=frozenset("ABCDE")), proven_at=NOW - 3000)
    assert gate.decide(_ask(gate.PREISSUE), f, NOW, cfg).granted
    f.usage = Usage(shift_releases=400)
    d = gate.decide(_ask(gate.PREISSUE), f, NOW, cfg)
    assert not d.granted and d.trip is None  # the pre-issue stops; the courier is not suspended for it


def test_reveals_far_beyond_deliveries_trip_the_ratio_sign() -> None:
    cfg = _cfg()
    many = frozenset("P%d" % i for i in range(cfg.sentinel.ratio_slack))
    d = gate.decide(_ask(), _facts(shown_parcels=many, delivered=0), NOW, cfg)
    assert d.trip is not None and "delivered" in d.trip.why
    assert gate.decide(_ask(), _facts(shown_parcels=many, delivered=40), NOW, cfg).granted


def test_released_parcels_never_delivered_by_their_window_trip() -> None:
    cfg = _cfg()
    d = gate.decide(_ask(), _facts(undelivered=cfg.sentinel.undelivered_limit), NOW, cfg)
    assert d.trip is not None and "never delivered" in d.trip.why


def test_the_depot_sign_compares_the_window_with_the_depots_baseline() -> None:
    cfg = _cfg()
    f = _facts()
    f.depot_usage = DepotUsage(count=6, baseline=0.0)
    d = gate.decide(_ask(), f, NOW, cfg)
    assert d.trip is not None and d.trip.scope == "depot"
    f.depot_usage = DepotUsage(count=6, has_parcel=True, baseline=0.0)
    assert gate.decide(_ask(), f, NOW, cfg).granted  # a parcel already counted adds nothing
    f.depot_usage = DepotUsage(count=6, couriers=50)
    assert gate.decide(_ask(), f, NOW, cfg).granted  # fifty couriers on their first morning, no history yet
    f.depot_usage = DepotUsage(count=6, baseline=4.0)
    assert gate.decide(_ask(), f, NOW, cfg).granted  # a busy depot: 7 is below 3 x 4


def test_sequential_numbers_trip_only_without_a_label_proof() -> None:
    cfg = _cfg()
    recent = ("VP0000001102", "VP0000001101")
    assert gate.decide(_ask(), _facts(recent=recent), NOW, cfg).granted  # the van's order
    f = dataclasses.replace(_facts(recent=recent), proven_at=None)
    d = gate.decide(_ask(reason=6), f, NOW, cfg)
    assert d.trip is not None and "sequential" in d.trip.why


def test_a_case_opens_only_its_fields_for_the_account_it_names() -> None:
    cfg = _cfg()
    sealed = dataclasses.replace(_facts(), parcel_state="delivered", proven_at=None, routes=(),
                                 case_open_until=NOW + 60, case_fields=(2,))
    d = gate.decide(_ask(fields=(2,)), sealed, NOW, cfg)
    assert d.granted and d.path == gate.CASE
    assert gate.decide(_ask(fields=(1, 2)), sealed, NOW, cfg).code == m.DENY_NOT_ON_ROUTE
    closed = dataclasses.replace(sealed, case_open_until=NOW - 1)
    assert not gate.decide(_ask(fields=(2,)), closed, NOW, cfg).granted


@pytest.mark.parametrize("kind,proof,ok", [
    (3, b"482913", True), (3, b"", False), (3, b"12", False), (3, b"12a456", False), (3, b"1" * 13, False),
    (1, bytes(32), True), (1, b"sig", False), (1, bytes(4096), False),
    (2, bytes(64), True), (2, b"", False),
    (4, "門衛 3號".encode(), True), (4, b"\xff\xfe", False), (4, b" ", False),
    (5, b"L-0042-7788", True), (5, b"L 42", False),
    (9, b"482913", False),
])
def test_a_proof_of_delivery_is_checked_per_kind(kind: int, proof: bytes, ok: bool) -> None:
    assert (gate.judge_proof(kind, proof) == "") is ok


def test_a_refused_scan_is_a_strike_and_the_third_suspends() -> None:
    cfg = _cfg()
    ok = gate.judge_scan(T, gate.Scan(None, 0), "C-112", cfg)
    assert ok.granted
    bad = gate.judge_scan(T, gate.Scan("forged", 0), "C-112", cfg)
    assert bad.code == m.DENY_LABEL and bad.strike and bad.trip is None
    assert gate.judge_scan(T, gate.Scan("forged", 2), "C-112", cfg).trip is not None
