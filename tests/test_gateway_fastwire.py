"""The gateway's cbor2-encoded channel sends exactly the bytes protocol's
own Channel would: same messages, same tokens, same sequence numbers."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.aead import CryptographyAEAD
from gateway.fastwire import GatewayChannel
from protocol.errors import ProtocolError
from protocol.session import GATEWAY, HANDHELD, Channel

SECRET = bytes(range(32))
AEAD = CryptographyAEAD()

SENT = [
    ("login_result", {"ok": True, "session": b"\x01" * 8, "courier": "C-112", "shift_end": 1_900_000_000}),
    ("login_result", {"ok": False, "reason": "badge or PIN is wrong"}),
    ("route", {"route": "R-07", "parcels": [{
        "tracking_no": "VP0000000001", "name": "測*甲", "phone": "170******34",
        "address": "測試市測試區樣例路1號 *棟***室", "sort_code": "R07",
        "window_start": 1_900_000_000, "window_end": 1_900_040_000}]}),
    ("reveal_grant", {"req": 7, "tracking_no": "VP0000000001", "cti": b"12345678", "exp": 1_900_000_060,
                      "fields": [1, 2], "token": b"t" * 60}),
    ("reveal_denied", {"req": 70000, "tracking_no": "VP0000000001", "code": 1,
                       "reason": "reveal denied: parcel VP0000000001 is not on route R-07 of courier C-112"}),
    ("seal", {"tracking_no": "VP0000000001"}),
    ("error", {"code": 1, "detail": "truncated CBOR"}),
    ("preissue", {"tokens": [
        {"tracking_no": "VP1", "cti": b"abcdefgh", "exp": 5, "fields": [2], "token": b"x"}]}),
]


def test_every_message_the_gateway_sends_is_byte_identical():
    fast = GatewayChannel(SECRET, "HH-1", GATEWAY, aead=AEAD, send_seq=250)
    slow = Channel(SECRET, "HH-1", GATEWAY, aead=AEAD, send_seq=250)
    for name, fields in SENT:
        assert fast.wrap(name, fields, 1_900_000_000) == slow.wrap(name, fields, 1_900_000_000), name
    assert fast.send_seq == slow.send_seq


def test_tokens_are_byte_identical_and_open_on_the_handheld():
    fast = GatewayChannel(SECRET, "HH-1", GATEWAY, aead=AEAD)
    slow = Channel(SECRET, "HH-1", GATEWAY, aead=AEAD)
    values = {1: "測試甲", 2: "17000001234", 3: "測試市測試區樣例路1號 3棟502室"}
    token = fast.seal_token("VP0000000001", values, b"cti-0001", 1_900_000_060)
    assert token == slow.seal_token("VP0000000001", values, b"cti-0001", 1_900_000_060)
    handheld = Channel(SECRET, "HH-1", HANDHELD)
    assert handheld.open_token(token, 1_900_000_000)[3] == values


@settings(max_examples=200, deadline=None)
@given(req=st.integers(0, 2**32), text=st.text(max_size=80), seq=st.integers(0, 2**40 - 3),
       fields=st.lists(st.integers(1, 3), max_size=3))
def test_random_denials_and_sequence_numbers_match(req, text, seq, fields):
    fast = GatewayChannel(SECRET, "HH-9", GATEWAY, aead=AEAD, send_seq=seq)
    slow = Channel(SECRET, "HH-9", GATEWAY, aead=AEAD, send_seq=seq)
    denial = {"req": req, "tracking_no": "VP" + str(req), "code": 9, "reason": text}
    assert fast.wrap("reveal_denied", denial, 1) == slow.wrap("reveal_denied", denial, 1)
    grant = {"req": req, "tracking_no": "VP1", "cti": os.urandom(8), "exp": req, "fields": fields,
             "token": b"x"}
    assert fast.wrap("reveal_grant", grant, 2) == slow.wrap("reveal_grant", grant, 2)


def _outcome(channel, data):
    try:
        name, fields, seq = channel.unwrap(data, 1)
        return ("ok", name, fields, seq, channel.replay.state())
    except ProtocolError as e:
        return ("error", e.code, channel.replay.state())


def _pair(send_seq=0):
    hh = Channel(SECRET, "HH-1", HANDHELD, aead=AEAD, send_seq=send_seq)
    return hh, GatewayChannel(SECRET, "HH-1", GATEWAY, aead=AEAD), Channel(SECRET, "HH-1", GATEWAY, aead=AEAD)


def test_received_messages_open_the_same_way_including_replays():
    hh, fast, slow = _pair()
    msgs = [hh.wrap("scan", {"tracking_no": "VP%010d" % i, "session": b"12345678"}, 1) for i in range(40)]
    for m in msgs + msgs[-3:] + msgs[:2]:  # then replays, then too old
        assert _outcome(fast, m) == _outcome(slow, m)


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 2**32), flips=st.integers(1, 6), cut=st.integers(0, 200))
def test_damaged_input_gets_the_same_answer_as_protocol(seed, flips, cut):
    import random
    rng = random.Random(seed)
    hh, fast, slow = _pair(send_seq=rng.choice([0, 5, 300, 70000]))
    good = bytearray(hh.wrap("reveal_request", {"req": 1, "tracking_no": "VP1", "fields": [2], "reason": 1,
                                                "session": b"12345678"}, 1))
    for _ in range(flips):
        good[rng.randrange(len(good))] = rng.randrange(256)
    data = bytes(good[:cut]) if cut < len(good) and rng.random() < 0.3 else bytes(good)
    assert _outcome(fast, data) == _outcome(slow, data)


@settings(max_examples=400, deadline=None)
@given(body=st.recursive(
    st.one_of(st.integers(-2**64, 2**64 - 1), st.binary(max_size=12), st.text(max_size=12), st.booleans(),
              st.none()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(-3, 9), inner, max_size=5),
    max_leaves=30))
def test_any_plaintext_inside_a_good_envelope_decodes_as_protocol_does(body):
    from protocol import cbor
    hh, fast, slow = _pair()
    try:
        plaintext = cbor.dumps(body)
    except (TypeError, ValueError):
        return
    data = hh.seal(plaintext)
    assert _outcome(fast, data) == _outcome(slow, data)


def test_message_shaped_plaintexts_decode_as_protocol_does():
    from protocol import cbor
    hh, fast, slow = _pair()
    for body in ({0: 8, 1: 5, 2: 1, 3: "VP1", 4: [2], 5: 1, 6: b"12345678"},  # a good reveal request
                 {0: 8, 1: 5, 2: 1, 3: "VP1", 4: [2], 5: 1},  # session missing
                 {0: 8, 1: 5, 2: -1, 3: "VP1", 4: [2], 5: 1, 6: b"12345678"},  # req negative
                 {0: 99, 1: 5}, {0: 7, 1: 5, 2: "VP1", 3: b"s", 9: 1}, [1, 2],
                 {0: 13, 1: 5, 2: [b"\x00"] * 300}):
        data = hh.seal(cbor.dumps(body))
        assert _outcome(fast, data) == _outcome(slow, data), body
