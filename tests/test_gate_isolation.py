"""One handheld with a valid key cannot silence the others: authenticated
garbage (CBOR that is no catalogue message, a decoder-breaking map, a
batch smuggling a reveal) costs that message alone. The other handheld's
requests in the same batch are decided, committed and answered."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from gateway import registry
from protocol import cbor, messages
from protocol.errors import MALFORMED, UNKNOWN_MESSAGE
from tests.fixtures.gateway import Depot, Handheld, LiveDepot, Wire

GARBAGE = [
    bytes.fromhex("a100ff"),  # {0: break}: once broke the fast decoder and rolled back the whole batch
    bytes.fromhex("a2000701ff"),
    bytes.fromhex("ff"),
    cbor.dumps({0: 255, 1: 1}),  # no such message
    cbor.dumps({0: 7, 1: 1, 2: "VP1", 3: b"x", 99: 1}),  # unknown key
    cbor.dumps([1, 2, 3]),
    cbor.dumps({0: 8, 1: 1, 2: -1, 3: "VP", 4: [9], 5: 1, 6: b""}),  # wrong kinds
    b"",
    os.urandom(40),
]


def _garbage(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return rng.choice(GARBAGE)
    inner = messages.encode("reveal_request", {"req": 1, "tracking_no": "VP1", "fields": [1], "reason": 1,
                                               "session": b"\0" * 8}, 1)
    return messages.encode("batch", {"items": [inner], "ids": [rng.randrange(1 << 20)]}, 1)


def _second_device(depot: Depot) -> tuple[bytes, str]:
    registry.add_courier(depot.home.store, "C-300", "3333", "D-1", "00:00-24:00")
    secret = registry.add_device(depot.home.store, depot.home.keys.kek, "HH-2", "test")
    registry.set_device_state(depot.home.store, "HH-2", "active")
    depot.home.store.run("UPDATE routes SET courier_id = 'C-300' WHERE route_id = 'R-09'")
    return secret, "C-300"


def test_garbage_and_good_requests_in_one_batch_each_get_their_own_answer(depot: Depot) -> None:
    secret, courier = _second_device(depot)
    attacker = Wire(depot.home, "HH-1", depot.secret)
    honest = Wire(depot.home, "HH-2", secret)
    honest.handlers = attacker.handlers  # one gateway, one batch
    assert honest.login(courier, "3333", depot.now)["ok"]
    rng = random.Random(11)
    parcels = depot.other[:5]
    labels = {t: depot.label(t) for t in parcels}
    batch: list[tuple[str, bytes]] = []
    for i, t in enumerate(parcels):
        batch.append(("HH-1", attacker.channel.seal(_garbage(rng))))
        batch.append(("HH-2", honest.channel.wrap("scan", {"tracking_no": t, "session": honest.session,
                                                           "label": labels[t]}, int(depot.now))))
        batch.append(("HH-1", attacker.channel.seal(_garbage(rng))))
        batch.append(("HH-2", honest.channel.wrap("reveal_request", {
            "req": i, "tracking_no": t, "fields": [2], "reason": 1, "session": honest.session},
            int(depot.now))))
    depot.home.config.sentinel.distinct_per_minute = 10
    replies = honest.batch(batch, depot.now)
    assert honest.last.committed
    grants = [f for name, f in replies if name == "reveal_grant"]
    assert [g["req"] for g in grants] == list(range(len(parcels))), replies
    errors = [r.fields for r in honest.last.replies if r.device_id == "HH-1" and r.name == "error"]
    assert errors and all(e["code"] in (MALFORMED, UNKNOWN_MESSAGE) for e in errors), errors
    assert depot.home.store.one("SELECT COUNT(DISTINCT tracking_no) FROM releases WHERE account = ?",
                                courier)[0] == len(parcels)


def test_a_handheld_sending_garbage_under_its_key_costs_another_handheld_nothing(
        live_depot: LiveDepot) -> None:
    depot = live_depot
    secret, courier = _second_device(depot)
    other_labels = {t: depot.labels[t] for t in depot.other[:6]}
    honest = Handheld(depot.broker, "HH-2", secret, labels=other_labels)
    attacker = depot.handheld(labels={})
    try:
        assert honest.login(courier, "3333")["ok"] and attacker.login("C-112", "4321")["ok"]
        depot.home.config.sentinel.distinct_per_minute = 10
        rng = random.Random(7)
        for t in other_labels:
            honest.scan(t)
        # Fire both devices' messages without waiting, so they share the gateway's batches.
        for i, t in enumerate(other_labels):
            for _ in range(4):
                attacker.client.publish("vp/v1/d/HH-1/up", attacker.channel.seal(_garbage(rng)), qos=1)
            honest.client.publish("vp/v1/d/HH-2/up", honest.channel.wrap("reveal_request", {
                "req": i, "tracking_no": t, "fields": [2], "reason": 1, "session": honest.session},
                int(time.time())), qos=1)
        answers: list[Any] = []
        deadline = time.monotonic() + 10
        while len(answers) < len(other_labels) and time.monotonic() < deadline:
            got = honest.recv(timeout=1.0)
            if got is not None:
                answers.append(got)
        attacker_errors = []
        while (got := attacker.recv(timeout=0.5)) is not None:
            attacker_errors.append(got)
    finally:
        honest.close()
    assert sorted(f["req"] for name, f in answers if name == "reveal_grant") == list(range(len(other_labels)))
    assert attacker_errors and {name for name, _f in attacker_errors} <= {"error", "batch_ack"}
    smuggled = [f["outcomes"] for name, f in attacker_errors if name == "batch_ack"]
    # A reveal inside a batch is refused (or, its id already used, seen): never granted.
    assert smuggled and all(o in (UNKNOWN_MESSAGE, messages.BATCH_SEEN) for os_ in smuggled for o in os_)
    assert any(UNKNOWN_MESSAGE in os_ for os_ in smuggled)
    assert depot.service.connected
