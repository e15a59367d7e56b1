"""A rented or sold courier account, tried the way a fraud ring would, over
a real broker (Mosquitto with dynamic security, and the embedded broker):
test code holds a provisioned handheld's bundle and speaks the wire itself
(a handheld with modified firmware), with a valid badge and PIN, knowing
every tracking number of the depot. Only labels in hand can release
anything, the budgets hold, and the sentinel stops the account within a
second."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from gateway import registry
from protocol import cose, labels, messages
from tests.fixtures.gateway import Handheld, LiveDepot, Spy, leaks


def _released(depot: LiveDepot) -> set[str]:
    """Parcels whose plaintext left the gateway, by the ledger and by the tokens."""
    store = depot.home.store
    rows = store.all("SELECT tracking_no FROM releases UNION SELECT tracking_no FROM tokens")
    return {r[0] for r in rows}


def _answers(hh: Handheld, quiet: float = 1.0) -> list[tuple[str, dict[str, Any]]]:
    out = []
    while True:
        reply = hh.recv(timeout=quiet)
        if reply is None:
            return out
        out.append(reply)


def _forged(tracking_no: str) -> bytes:
    """A label QR for the parcel made with a key the gateway never had."""
    tag = bytes(cose.MAC_SIZE)
    return labels.assemble(b"L1", tracking_no, 1, int(time.time()), tag)


def _alarm_delay(spy: Spy, started: float) -> float:
    alarms = [at for topic, _p, at in spy.drain() if topic == "vp/v1/alarm"]
    assert alarms, "no alarm on vp/v1/alarm"
    return alarms[0] - started


def test_a_rented_account_without_labels_gets_no_parcel_whatever_it_asks(live_depot: LiveDepot) -> None:
    depot, home = live_depot, live_depot.home
    spy = Spy(depot.broker)
    thief = depot.handheld(labels={})  # every tracking number, not one label
    try:
        assert thief.login("C-112", "4321")["ok"]
        spy.drain(quiet=0.2)
        spy.seen.clear()
        started = time.monotonic()
        for t in depot.route:  # fake scans: bare numbers, then forged QRs
            thief.scan(t)
        for t in depot.route:
            thief.scan(t, label=_forged(t))
        session = thief.session
        thief.send("preissue_request", {"session": session})
        thief.send("preissue_request", {"session": session, "tracking_nos": depot.route, "fields": [1, 2, 3]})
        for i, t in enumerate(depot.route + depot.other, 1):
            thief.send("reveal_request", {"req": i, "tracking_no": t, "fields": [1, 2, 3], "reason": 1,
                                          "session": session})
        for i, t in enumerate(depot.route, 100):  # "the label is damaged"
            thief.send("reveal_request", {"req": i, "tracking_no": t, "fields": [1, 2, 3], "reason": 6,
                                          "session": session})
        answers = _answers(thief)
        delay = _alarm_delay(spy, started)
    finally:
        spy.close()
    assert [a for a in answers if a[0] == "reveal_grant"] == []
    assert all(a[1]["tokens"] == [] for a in answers if a[0] == "preissue")
    assert _released(depot) == set(), "plaintext released to a handheld holding no label"
    assert registry.courier_state(home.store, "C-112") == "suspended"
    assert registry.device_state(home.store, "HH-1") == "suspended"
    incidents = home.store.all("SELECT trigger_reason, parcels FROM incidents")
    assert len(incidents) == 1 and json.loads(incidents[0][1]) == []
    assert "without a valid label" in incidents[0][0]
    print("no labels: 0 parcels released; alarm %.3f s after the first fake scan" % delay)
    assert delay <= 1.0, "alarm after %.3f s" % delay
    denied = [a[1] for a in answers if a[0] == "reveal_denied"]
    assert denied and all(d["code"] in (messages.DENY_SUSPENDED, messages.DENY_SCAN_FIRST,
                                        messages.DENY_NOT_ON_ROUTE) for d in denied)


def test_a_rented_account_asking_damaged_label_reveals_gets_only_its_allowance(live_depot: LiveDepot) -> None:
    """The one path without a label proof: reason 6, at most damaged_per_shift
    parcels a shift, each flagged for the officer; asking for more is a sign."""
    depot, home = live_depot, live_depot.home
    thief = depot.handheld(labels={})
    assert thief.login("C-112", "4321")["ok"]
    names = [thief.reveal(t, [1, 2, 3], req=i, reason=6)[0] for i, t in enumerate(depot.route, 1)]
    allowance = home.config.reveal.damaged_per_shift
    assert names.count("reveal_grant") == allowance
    assert len(_released(depot)) == allowance
    flags = home.store.all("SELECT kind, tracking_no FROM security_events WHERE kind = 'label-damaged'")
    assert sorted(f[1] for f in flags) == sorted(depot.route[:allowance])
    paths = {r[0] for r in home.store.all("SELECT path FROM releases")}
    assert paths == {"damaged"}


def test_an_attacker_holding_three_labels_gets_at_most_those_three(live_depot: LiveDepot) -> None:
    depot, home = live_depot, live_depot.home
    held = depot.route[:3]
    thief = depot.handheld(labels={t: depot.labels[t] for t in held})
    assert thief.login("C-112", "4321")["ok"]
    for t in held:
        thief.scan(t)
    grants = []
    for i, t in enumerate(held * 3, 1):  # the same three again and again: no new data, no budget spent
        name, f = thief.reveal(t, [1, 2, 3], req=i)
        assert name == "reveal_grant", f
        grants.append(f)
    assert registry.courier_state(home.store, "C-112") == "active"
    for t in depot.route[3:]:  # then everything else, as fast as it can
        thief.scan(t)
    thief.send("preissue_request", {"session": thief.session, "tracking_nos": depot.route})
    for i, t in enumerate(depot.route[3:] + depot.other, 50):
        thief.send("reveal_request", {"req": i, "tracking_no": t, "fields": [1, 2, 3], "reason": 1,
                                      "session": thief.session})
    _answers(thief)
    assert _released(depot) <= set(held)
    rows = home.store.all("SELECT COUNT(*), COUNT(DISTINCT tracking_no) FROM releases")
    assert rows[0] == (9, 3)  # one ledger row per (parcel, field), however often it was granted
    assert registry.courier_state(home.store, "C-112") == "suspended"
    listed = json.loads(home.store.one("SELECT parcels FROM incidents")[0])
    assert {p["tracking_no"] for p in listed} == set(held)
    assert all(p["received_by"] == [{"courier": "C-112", "device": "HH-1", "path": "online"}] for p in listed)


def test_every_grant_is_in_the_ledger_and_the_audit_log_before_it_reaches_the_handheld(
        live_depot: LiveDepot, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    depot = live_depot
    hh = depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    # Another connection: it sees committed rows only.
    reader = type(depot.home.store)(depot.home.config.database_path)
    try:
        for i, t in enumerate(depot.route[:3], 1):
            hh.scan(t)
            name, grant = hh.reveal(t, [2, 3], req=i)
            assert name == "reveal_grant", grant
            # The grant has just arrived: its rows must already be committed.
            ledger = reader.all("SELECT field, audit_seq FROM releases WHERE tracking_no = ?", t)
            assert sorted(r[0] for r in ledger) == [2, 3]
            entry = reader.one("SELECT action, outcome, parcel FROM audit WHERE seq = ?", ledger[0][1])
            assert entry == ("reveal", "granted", t)
            token = reader.one("SELECT audit_seq FROM tokens WHERE cti = ?", grant["cti"])
            assert token is not None and token[0] == ledger[0][1]
    finally:
        reader.close()
    hh.scan(depot.other[0], label=depot.labels[depot.route[0]])  # another parcel's label: refused, logged
    assert hh.recv(timeout=5)[0] == "error"
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    stored = b"".join(p.read_bytes() for p in depot.home.config.home.glob("*.db*"))
    for qr in depot.labels.values():  # the proofs are never kept or logged, only checked
        assert qr not in logged and labels.to_text(qr).encode() not in logged
        assert qr not in stored and labels.to_text(qr).encode() not in stored


def test_label_proofs_never_reach_the_broker_except_in_a_scan(live_depot: LiveDepot) -> None:
    depot = live_depot
    spy = Spy(depot.broker)
    try:
        hh = depot.handheld()
        assert hh.login("C-112", "4321")["ok"]
        assert hh.ask("route_request", {"session": hh.session})[0] == "route"
        hh.scan(depot.route[0])
        assert hh.reveal(depot.route[0], [2])[0] == "reveal_grant"
        seen = spy.drain()
    finally:
        spy.close()
    for topic, payload, _at in seen:
        assert leaks(payload) == []
        for qr in depot.labels.values():
            assert qr not in payload, topic  # sealed end to end: not even the proof in clear
