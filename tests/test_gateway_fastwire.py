"""The gateway's cbor2-encoded channel sends exactly the bytes protocol's
own Channel would: same messages, same tokens, same sequence numbers."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.fastwire import GatewayChannel
from protocol._fast import CryptographyAEAD
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
