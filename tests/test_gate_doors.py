"""The other doors, through the gateway's real per-message handler: logins
(lockouts raise alarms, repeated lockouts suspend), officer PINs, label
proofs (forged, foreign, reprinted), proofs of delivery, and pre-issues
(only parcels in hand, repetition costs nothing, a reply too large to send
records nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import handlers, registry, retention, sentinel
from gateway.labels import specimen
from protocol import cose, labels, messages
from tests.fixtures.gateway import Depot, Wire


def _wire(depot: Depot, clock: list[float]) -> Wire:
    wire = Wire(depot.home, "HH-1", depot.secret, clock=lambda: clock[0])
    wire.session = bytes.fromhex(depot.session)
    return wire


def _alarms(wire: Wire) -> list[Any]:
    return list(wire.last.alarms)


def test_wrong_pins_lock_out_with_an_alarm_and_repeated_lockouts_suspend(depot: Depot) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    store, cfg = depot.home.store, depot.home.config.sentinel
    for _lockout in range(cfg.lockouts_to_suspend):
        for attempt in range(cfg.pin_failures):
            result = wire.login("C-112", "0000", clock[0])
            last = attempt == cfg.pin_failures - 1
            assert bool(_alarms(wire)) is last  # the failure that locks out raises the alarm
            if not last:
                assert not result["ok"] and result["code"] == messages.DENY_BAD_PIN
            elif _lockout < cfg.lockouts_to_suspend - 1:  # and the courier hears of the lockout at once
                assert result["code"] == messages.DENY_LOCKED_OUT and "locked out" in result["reason"]
            else:
                assert result["code"] == messages.DENY_SUSPENDED
        locked = wire.login("C-112", "4321", clock[0])  # the right PIN, but locked out
        assert not locked["ok"] and locked["code"] in (messages.DENY_LOCKED_OUT, messages.DENY_SUSPENDED)
        clock[0] += cfg.lockout_minutes * 60 + 1
    events = store.all("SELECT kind, courier_id, device_id FROM security_events ORDER BY at")
    assert events == [("pin-lockout", "C-112", "HH-1")] * cfg.lockouts_to_suspend
    assert registry.courier_state(store, "C-112") == "suspended"
    assert registry.device_state(store, "HH-1") == "suspended"
    assert wire.login("C-112", "4321", clock[0])["code"] == messages.DENY_SUSPENDED
    alarms = store.all("SELECT kind, detail FROM alarms")
    assert len(alarms) == cfg.lockouts_to_suspend and alarms[-1][1].startswith("INC-")


def test_officer_pins_lock_out_and_every_refusal_is_audited(depot: Depot) -> None:
    h = depot.home
    registry.add_officer(h.store, "Officer A", "111111")
    registry.add_officer(h.store, "Officer B", "222222")
    retention.open_case(h.store, h.audit, "CASE-1", depot.route[0], "complaint", "Desk", depot.now,
                        for_account="C-112")
    for _ in range(h.config.sentinel.pin_failures):
        with pytest.raises(retention.CaseError, match="PIN is wrong"):
            retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer A", "000000", depot.now)
    with pytest.raises(retention.CaseError, match="locked out"):
        retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer A", "111111", depot.now)
    refused = h.store.all("SELECT outcome FROM audit WHERE action = 'case-approve'")
    assert refused == [("refused",)] * (h.config.sentinel.pin_failures + 1)
    assert h.store.one("SELECT COUNT(*) FROM security_events WHERE kind = 'officer-lockout'")[0] == 1
    later = depot.now + h.config.sentinel.lockout_minutes * 60 + 1
    approval = retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer A", "111111", later)
    assert approval.approvals == 1
    with pytest.raises(sentinel.LiftRefused):
        sentinel.lift(h.store, h.audit, "Officer B", "999999", later, "checked", courier="C-112")


def test_a_reprint_voids_the_old_label_and_its_scans(depot: Depot) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    t = depot.route[0]
    old = depot.label(t)
    assert wire.send("scan", {"tracking_no": t, "session": wire.session, "label": old}, clock[0]) == []
    assert wire.send("reveal_request", {"req": 1, "tracking_no": t, "fields": [2], "reason": 1,
                                        "session": wire.session}, clock[0])[0][0] == "reveal_grant"
    new = depot.label(t, reprint="label torn")
    denied = wire.send("reveal_request", {"req": 2, "tracking_no": t, "fields": [3], "reason": 1,
                                          "session": wire.session}, clock[0])
    assert denied[0][1]["code"] == messages.DENY_SCAN_FIRST  # the old label's scan went with it
    refused = wire.send("scan", {"tracking_no": t, "session": wire.session, "label": old}, clock[0])
    assert refused[0][1]["deny"] == messages.DENY_LABEL and "replaced by label #2" in refused[0][1]["detail"]
    assert wire.send("scan", {"tracking_no": t, "session": wire.session, "label": new}, clock[0]) == []
    assert wire.send("reveal_request", {"req": 3, "tracking_no": t, "fields": [3], "reason": 1,
                                        "session": wire.session}, clock[0])[0][0] == "reveal_grant"
    rows = depot.home.store.all("SELECT action FROM audit WHERE parcel = ? ORDER BY seq", t)
    actions = [r[0] for r in rows]
    assert actions.count("label-issue") == 1 and actions.count("label-reprint") == 1


@pytest.mark.parametrize("forgery", ["wrong-key", "other-parcel", "foreign-kid", "specimen", "garbage"])
def test_a_forged_or_foreign_label_is_refused_and_is_a_strike(depot: Depot, forgery: str) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    t, other = depot.route[0], depot.route[1]
    depot.label(t)
    raw = {
        "wrong-key": cose.mac0(b"k" * 32, labels.payload(t, 1, int(depot.now)), kid=b"L1"),
        "other-parcel": depot.label(other),
        "foreign-kid": cose.mac0(b"k" * 32, labels.payload(t, 1, int(depot.now)), kid=b"Z9"),
        "specimen": labels.from_text(specimen(t)),
        "garbage": b"\xd1\x84\x00",
    }[forgery]
    replies = wire.send("scan", {"tracking_no": t, "session": wire.session, "label": raw}, clock[0])
    assert replies[0][0] == "error" and replies[0][1]["deny"] == messages.DENY_LABEL
    assert depot.home.store.one("SELECT COUNT(*) FROM scans WHERE tracking_no = ?", t)[0] == 0
    assert depot.home.store.one("SELECT strike FROM requests WHERE tracking_no = ?", t) == (1,)


def test_a_delivery_without_a_real_proof_is_refused_and_does_not_seal(depot: Depot) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    t = depot.route[0]
    for kind, proof in ((3, b""), (1, b"p"), (3, b"12ab"), (7, b"123456")):
        replies = wire.send("delivered", {"tracking_no": t, "session": wire.session, "proof": proof,
                                          "kind": kind}, clock[0])
        assert replies[0][0] == "error" and replies[0][1]["deny"] == messages.DENY_PROOF, replies
    assert depot.home.store.one("SELECT state FROM parcels WHERE tracking_no = ?", t) == ("out_for_delivery",)
    replies = wire.send("delivered", {"tracking_no": t, "session": wire.session, "proof": b"482913",
                                      "kind": 3}, clock[0])
    assert replies[0][0] == "seal"


def test_a_preissue_gives_parcels_in_hand_only_and_repeating_it_costs_nothing(depot: Depot) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    held = depot.route[:3]
    for t in held:
        wire.send("scan", {"tracking_no": t, "session": wire.session, "label": depot.label(t)}, clock[0])
    for _ in range(5):  # the stock handheld asks again and again
        replies = wire.send("preissue_request", {"session": wire.session}, clock[0])
        tokens = [tok for name, f in replies if name == "preissue" for tok in f["tokens"]]
        assert sorted(tok["tracking_no"] for tok in tokens) == sorted(held)
        clock[0] += 60
    store = depot.home.store
    assert store.one("SELECT COUNT(*), COUNT(DISTINCT tracking_no) FROM releases") == (3, 3)
    assert registry.courier_state(store, "C-112") == "active"
    named = wire.send("preissue_request", {"session": wire.session, "tracking_nos": depot.route}, clock[0])
    tokens = [tok["tracking_no"] for name, f in named if name == "preissue" for tok in f["tokens"]]
    assert sorted(tokens) == sorted(held)  # naming parcels not in hand gets nothing for them


def test_a_preissue_reply_too_large_to_send_records_nothing(depot: Depot, monkeypatch: Any) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    for t in depot.route:
        wire.send("scan", {"tracking_no": t, "session": wire.session, "label": depot.label(t)}, clock[0])
    monkeypatch.setattr(handlers, "REPLY_MAX", 200)
    replies = wire.send("preissue_request", {"session": wire.session}, clock[0])
    assert [name for name, _f in replies] == ["error"], replies
    store = depot.home.store
    assert store.one("SELECT COUNT(*) FROM tokens")[0] == 0
    assert store.one("SELECT COUNT(*) FROM releases")[0] == 0


def test_an_error_names_the_message_it_answers(depot: Depot) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    seq = wire.channel.send_seq
    replies = wire.send("scan", {"tracking_no": depot.route[0], "session": wire.session}, clock[0])
    assert replies[0][0] == "error" and replies[0][1]["ref"] == seq


def test_a_delivery_queued_under_an_earlier_session_of_the_handheld_still_seals(depot: Depot) -> None:
    clock = [depot.now]
    wire = _wire(depot, clock)
    old = wire.session
    assert wire.login("C-112", "4321", clock[0])["ok"]  # a new login ends the old session
    item = messages.encode("delivered", {"tracking_no": depot.route[0], "session": old, "proof": b"482913",
                                         "kind": 3}, int(clock[0]))
    replies = wire.send("batch", {"items": [item], "ids": [1]}, clock[0])
    ack = next(f for name, f in replies if name == "batch_ack")
    assert ack["outcomes"] == [messages.BATCH_OK]
    state = depot.home.store.one("SELECT state FROM parcels WHERE tracking_no = ?", depot.route[0])
    assert state == ("delivered",)
    stale = messages.encode("delivered", {"tracking_no": depot.route[1], "session": b"\0" * 8,
                                          "proof": b"482913", "kind": 3}, int(clock[0]))
    replies = wire.send("batch", {"items": [stale], "ids": [2]}, clock[0])
    assert next(f for name, f in replies if name == "batch_ack")["outcomes"] != [messages.BATCH_OK]
