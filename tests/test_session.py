"""The device channel of docs/wire.md: derivation, round trips in both
directions, replay, forgery and damage, reveal tokens."""

from __future__ import annotations

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.aead import CryptographyAEAD
from protocol import cbor, cose
from protocol.errors import BAD_KEY, EXPIRED, MALFORMED, REPLAYED, ProtocolError
from protocol.session import GATEWAY, HANDHELD, Channel, open_token, partial_iv, seal_token

SECRET = bytes(range(32))
DEVICE = "HH-test-0001"
NOW = 1_760_000_000
CTI = bytes.fromhex("0102030405060708")


def pair(**kw) -> tuple[Channel, Channel]:
    return Channel(SECRET, DEVICE, HANDHELD, **kw), Channel(SECRET, DEVICE, GATEWAY, **kw)


def reference_derive(label: str, length: int) -> bytes:
    info = cbor2.dumps([DEVICE, label], canonical=True)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"veilpost/v1", info=info).derive(SECRET)


def test_up_message_matches_an_independent_construction_from_the_wire_spec() -> None:
    hh, _ = pair(send_seq=0x1234)
    sealed = hh.seal(b"hello")
    nonce = bytes(a ^ b for a, b in zip(reference_derive("iv-up", 13), bytes(11) + b"\x12\x34", strict=True))
    aad = cbor2.dumps(["Encrypt0", bytes.fromhex("a1010a"), b""])
    ct = AESCCM(reference_derive("up", 16), tag_length=8).encrypt(nonce, b"hello", aad)
    unprotected = {4: DEVICE.encode(), 6: b"\x12\x34"}
    expected = cbor2.dumps(cbor2.CBORTag(16, [bytes.fromhex("a1010a"), unprotected, ct]), canonical=True)
    assert sealed == expected
    assert hh.token_key == reference_derive("token", 16)


def test_round_trip_both_directions_and_sequence_numbers_advance() -> None:
    hh, gw = pair()
    for i in range(3):
        assert gw.open(hh.seal(b"up %d" % i)) == (b"up %d" % i, i)
        assert hh.open(gw.seal(b"down %d" % i)) == (b"down %d" % i, i)
    assert hh.send_seq == 3 and gw.send_seq == 3


def test_a_direction_cannot_be_reflected_back_to_its_sender() -> None:
    hh, _ = pair()
    with pytest.raises(ProtocolError) as e:
        hh.open(hh.seal(b"echo"))
    assert e.value.code == BAD_KEY


def test_send_seq_resumes_from_a_persisted_value() -> None:
    hh = Channel(SECRET, DEVICE, HANDHELD, send_seq=64)
    gw = Channel(SECRET, DEVICE, GATEWAY)
    assert gw.open(hh.seal(b"after reboot"))[1] == 64
    assert hh.send_seq == 65


def test_replayed_and_too_old_messages_are_refused() -> None:
    hh, gw = pair()
    first = hh.seal(b"a")
    gw.open(first)
    with pytest.raises(ProtocolError) as e:
        gw.open(first)
    assert e.value.code == REPLAYED
    hh.send_seq = 100
    gw.open(hh.seal(b"b"))
    hh.send_seq = 50
    with pytest.raises(ProtocolError) as e:
        gw.open(hh.seal(b"too old"))
    assert e.value.code == REPLAYED
    hh.send_seq = 90
    assert gw.open(hh.seal(b"late but inside the window"))[1] == 90


def test_a_forged_message_does_not_advance_the_replay_window() -> None:
    hh, gw = pair()
    sealed = bytearray(hh.seal(b"x"))
    sealed[-1] ^= 1
    with pytest.raises(ProtocolError):
        gw.open(bytes(sealed))
    sealed[-1] ^= 1
    assert gw.open(bytes(sealed)) == (b"x", 0)


def test_wrong_master_secret_is_refused_as_bad_key() -> None:
    hh = Channel(SECRET, DEVICE, HANDHELD)
    gw = Channel(bytes(32), DEVICE, GATEWAY)
    with pytest.raises(ProtocolError) as e:
        gw.open(hh.seal(b"x"))
    assert e.value.code == BAD_KEY


def test_message_for_another_device_is_refused() -> None:
    other = Channel(SECRET, "HH-test-0002", HANDHELD)
    _, gw = pair()
    with pytest.raises(ProtocolError) as e:
        gw.open(other.seal(b"x"))
    assert e.value.code == BAD_KEY


def test_every_truncation_and_bit_flip_is_a_protocol_error() -> None:
    hh, gw = pair()
    sealed = hh.seal(b"17000001234")
    for n in range(len(sealed)):
        with pytest.raises(ProtocolError):
            gw.open(sealed[:n])
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            forged = bytearray(sealed)
            forged[i] ^= bit
            with pytest.raises(ProtocolError):
                gw.open(bytes(forged))
    assert gw.open(sealed)[0] == b"17000001234"


def rebuild(sealed: bytes, unprotected: dict) -> bytes:
    tag = cbor2.loads(sealed)
    tag.value[1] = unprotected
    return cbor2.dumps(tag, canonical=True)


def test_padded_oversize_or_missing_partial_iv_is_malformed() -> None:
    hh, gw = pair()
    sealed = hh.seal(b"x")
    kid = DEVICE.encode()
    for u in ({4: kid, 6: b"\x00\x00"}, {4: kid, 6: bytes(6)}, {4: kid},
              {4: kid, 5: bytes(13)}):
        with pytest.raises(ProtocolError) as e:
            gw.open(rebuild(sealed, u))
        assert e.value.code == MALFORMED


def test_partial_iv_is_shortest_big_endian() -> None:
    assert partial_iv(0) == b"\x00"
    assert partial_iv(255) == b"\xff"
    assert partial_iv(256) == b"\x01\x00"
    assert partial_iv(2**40 - 1) == b"\xff" * 5


def test_exhausted_sequence_numbers_stop_sending() -> None:
    hh = Channel(SECRET, DEVICE, HANDHELD, send_seq=2**40 - 1)
    hh.seal(b"last")
    with pytest.raises(ValueError):
        hh.seal(b"one too many")


def test_bad_construction_arguments_are_refused() -> None:
    for args in ((bytes(31), DEVICE, HANDHELD), (SECRET, "bad id!", HANDHELD), (SECRET, "", GATEWAY),
                 (SECRET, "x" * 33, GATEWAY), (SECRET, DEVICE, "printer")):
        with pytest.raises(ValueError):
            Channel(*args)


def test_cryptography_adapter_and_pure_aead_interoperate() -> None:
    hh = Channel(SECRET, DEVICE, HANDHELD)
    gw = Channel(SECRET, DEVICE, GATEWAY, aead=CryptographyAEAD())
    hh2 = Channel(SECRET, DEVICE, HANDHELD, aead=CryptographyAEAD())
    a = hh.seal(b"same bytes")
    assert a == hh2.seal(b"same bytes")
    assert gw.open(a) == (b"same bytes", 0)
    assert hh.open(gw.seal(b"reply")) == (b"reply", 0)


def test_reveal_token_round_trip_and_binding() -> None:
    hh, gw = pair()
    revealed = {2: "17000001234", 3: "測試市測試區樣例路1號 3棟502室"}
    token = gw.seal_token("SF1234567890", revealed, CTI, NOW + 60)
    assert hh.open_token(token, NOW) == ("SF1234567890", CTI, NOW + 60, revealed)
    # The cti is the Partial IV: changing it breaks the nonce, so the tag fails.
    tampered = rebuild(token, {6: bytes(8)})
    with pytest.raises(ProtocolError) as e:
        hh.open_token(tampered, NOW)
    assert e.value.code == BAD_KEY
    other = Channel(SECRET, "HH-test-0002", HANDHELD)
    with pytest.raises(ProtocolError) as e:
        other.open_token(token, NOW)
    assert e.value.code == BAD_KEY


def test_expired_token_is_refused() -> None:
    token = seal_token(bytes(16), "SF1", {1: "測試甲"}, CTI, NOW)
    assert open_token(bytes(16), token, NOW)[3] == {1: "測試甲"}
    with pytest.raises(ProtocolError) as e:
        open_token(bytes(16), token, NOW + 1)
    assert e.value.code == EXPIRED


@pytest.mark.parametrize("body", [
    [1, 2], {0: "SF1"}, {-1: NOW}, {0: 5, -1: NOW}, {0: "SF1", -1: "soon"}, {0: "SF1", -1: -5},
    {0: "SF1", -1: NOW, 2: b"bytes"}, {0: "SF1", -1: NOW, "name": "x"}, {0: "SF1", -1: NOW, -7: "x"},
], ids=repr)
def test_token_with_a_malformed_body_is_refused(body: object) -> None:
    token = cose.encrypt0(bytes(16), cbor.dumps(body), bytes(5) + CTI, partial_iv=CTI)
    with pytest.raises(ProtocolError) as e:
        open_token(bytes(16), token, NOW)
    assert e.value.code == MALFORMED


def test_token_with_a_short_cti_is_malformed() -> None:
    token = cose.encrypt0(bytes(16), cbor.dumps({0: "SF1", -1: NOW}), bytes(9) + b"abcd", partial_iv=b"abcd")
    with pytest.raises(ProtocolError) as e:
        open_token(bytes(16), token, NOW)
    assert e.value.code == MALFORMED
