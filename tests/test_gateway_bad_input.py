"""Invariant 8 over a real broker: bad input on the device topics gets an
error reply or a logged drop; the gateway stays up and loses nothing."""

import logging
import os
import random

import pytest

from gateway import audit, registry
from protocol import cbor
from tests.fixtures.gateway import Handheld


def _ready(live_depot):
    hh = live_depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    t = live_depot.route[0]
    hh.scan(t)
    assert hh.reveal(t, [2])[0] == "reveal_grant"
    return hh


def _still_fine(live_depot, hh, before):
    """The gateway answers a good request, and nothing stored was lost."""
    t = live_depot.route[1]
    hh.scan(t)
    name, fields = hh.reveal(t, [2], req=99)
    assert name == "reveal_grant", fields
    store = live_depot.home.store
    verdict = audit.verify(store, live_depot.home.keys.public_key())
    assert verdict.ok, verdict.problem
    assert store.one("SELECT COUNT(*) FROM parcels WHERE ciphertext IS NOT NULL")[0] == before
    assert store.one("SELECT COUNT(*) FROM tokens")[0] == 2


def _drop_logged(caplog, why):
    return any('"event": "drop"' in r.getMessage() and why in r.getMessage() for r in caplog.records)


def _count(live_depot):
    return live_depot.home.store.one("SELECT COUNT(*) FROM parcels WHERE ciphertext IS NOT NULL")[0]


@pytest.mark.parametrize("kind", ["garbage", "truncated", "not-cbor-inside", "unknown-message"])
def test_malformed_input_gets_an_error_reply(live_depot, kind):
    hh = _ready(live_depot)
    before = _count(live_depot)
    good = hh.channel.wrap("scan", {"tracking_no": live_depot.route[0], "session": hh.session}, 1)
    payload = {
        "garbage": b"\x9f\xff\x00garbage" + os.urandom(40),
        "truncated": good[: len(good) // 2],
        "not-cbor-inside": hh.channel.seal(b"\xff\xfe not cbor"),
        "unknown-message": hh.channel.wrap("reveal_grant", {
            "req": 1, "tracking_no": "VP1", "cti": b"12345678", "exp": 1, "fields": [2], "token": b"x"}, 1),
    }[kind]
    hh.send_raw(payload)
    reply = hh.recv(timeout=5.0)
    assert reply is not None and reply[0] == "error", reply
    assert reply[1]["detail"]
    _still_fine(live_depot, hh, before)


@pytest.mark.parametrize("kind", ["oversized", "wrong-key", "replayed"])
def test_undecryptable_or_replayed_input_is_dropped_with_a_log_line(live_depot, kind, caplog):
    caplog.set_level(logging.INFO, logger="veilpost.gateway")
    hh = _ready(live_depot)
    before = _count(live_depot)
    if kind == "oversized":
        payload = hh.channel.seal(cbor.dumps({0: 7, 1: 1, 2: "x" * 6000}))
        why = "oversize"
    elif kind == "wrong-key":
        from protocol.session import HANDHELD, Channel
        payload = Channel(os.urandom(32), "HH-1", HANDHELD, send_seq=10_000).wrap(
            "scan", {"tracking_no": live_depot.route[0], "session": hh.session}, 1)
        why = "bad-key"
    else:
        payload = hh.channel.wrap("scan", {"tracking_no": live_depot.route[0], "session": hh.session,
                                           "label": live_depot.labels[live_depot.route[0]]}, 1)
        hh.send_raw(payload)
        why = "replayed"
    hh.send_raw(payload)
    assert hh.recv(timeout=1.0) is None
    _still_fine(live_depot, hh, before)
    assert _drop_logged(caplog, why)


@pytest.mark.parametrize("kind", ["unknown-device", "revoked-device"])
def test_messages_from_unknown_or_revoked_devices_are_dropped_with_a_log_line(live_depot, kind, caplog):
    caplog.set_level(logging.INFO, logger="veilpost.gateway")
    hh = _ready(live_depot)
    before = _count(live_depot)
    home = live_depot.home
    if kind == "unknown-device":
        other = Handheld(live_depot.broker, "HH-Z", os.urandom(32))
        why = "unknown-device"
    else:
        secret = registry.add_device(home.store, home.keys.kek, "HH-R", "test")
        registry.set_device_state(home.store, "HH-R", "revoked")
        other = Handheld(live_depot.broker, "HH-R", secret)
        why = "revoked"
    try:
        other.send("hello", {"device": other.device_id, "fw": "x"})
        other.send_raw(b"garbage")
        assert other.recv(timeout=1.0) is None
    finally:
        other.close()
    _still_fine(live_depot, hh, before)
    assert _drop_logged(caplog, why)


def test_a_storm_of_random_bytes_never_stops_the_gateway(live_depot):
    hh = _ready(live_depot)
    before = _count(live_depot)
    rng = random.Random(8)
    good = hh.channel.wrap("scan", {"tracking_no": live_depot.route[0], "session": hh.session}, 1)
    for _ in range(150):
        blob = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        hh.send_raw(bytes(blob) if rng.random() < 0.7 else os.urandom(rng.randint(0, 300)))
    while hh.recv(timeout=0.5) is not None:
        pass
    _still_fine(live_depot, hh, before)
    assert live_depot.service.processed >= 150
