"""Channel.wrap / unwrap: catalogue messages through the sealed channel."""

from __future__ import annotations

import pytest

from protocol.errors import EXPIRED, ProtocolError
from protocol.session import GATEWAY, HANDHELD, Channel

SECRET = bytes(range(32))
DEVICE = "HH-test-0001"
NOW = 1_760_000_000


def test_scan_wraps_and_unwraps_with_the_sender_time() -> None:
    hh, gw = Channel(SECRET, DEVICE, HANDHELD), Channel(SECRET, DEVICE, GATEWAY)
    wire = hh.wrap("scan", {"tracking_no": "SF1234567890", "session": b"\x01" * 8}, NOW)
    name, fields, seq = gw.unwrap(wire, NOW + 2)
    assert (name, seq) == ("scan", 0)
    assert fields["tracking_no"] == "SF1234567890"
    assert fields["t"] == NOW
    assert b"SF1234567890" not in wire


def test_reveal_grant_carries_a_token_the_handheld_can_open() -> None:
    hh, gw = Channel(SECRET, DEVICE, HANDHELD), Channel(SECRET, DEVICE, GATEWAY)
    cti = bytes(range(8))
    token = gw.seal_token("SF1234567890", {2: "17000001234"}, cti, NOW + 30)
    wire = gw.wrap("reveal_grant", {"req": 7, "tracking_no": "SF1234567890", "cti": cti,
                                    "exp": NOW + 30, "fields": [2], "token": token}, NOW)
    name, fields, _ = hh.unwrap(wire, NOW)
    assert name == "reveal_grant"
    assert hh.open_token(fields["token"], NOW)[3] == {2: "17000001234"}
    assert b"17000001234" not in wire


def test_authentic_but_unknown_message_is_a_protocol_error() -> None:
    hh, gw = Channel(SECRET, DEVICE, HANDHELD), Channel(SECRET, DEVICE, GATEWAY)
    with pytest.raises(ProtocolError):
        gw.unwrap(hh.seal(b"\xa1\x00\x18\xff"), NOW)


def test_max_skew_refuses_a_message_from_a_far_off_clock() -> None:
    hh = Channel(SECRET, DEVICE, HANDHELD)
    gw = Channel(SECRET, DEVICE, GATEWAY, max_skew=300)
    scan = {"tracking_no": "SF1234567890", "session": b"\x01" * 8}
    assert gw.unwrap(hh.wrap("scan", scan, NOW - 300), NOW)[0] == "scan"
    with pytest.raises(ProtocolError) as e:
        gw.unwrap(hh.wrap("scan", scan, NOW + 301), NOW)
    assert e.value.code == EXPIRED
