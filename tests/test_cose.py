"""COSE_Encrypt0 / COSE_Mac0: published vectors, interop with `cwt` in both
directions, and refusal of malformed or forged objects."""

from __future__ import annotations

import base64

import cbor2
import pytest
from cwt import COSE, COSEKey

from gateway.aead import CryptographyAEAD
from protocol import cbor, cose
from protocol.errors import BAD_KEY, MALFORMED, ProtocolError

CONTENT = b"This is the content."


def b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# RFC 9052 Appendix C.4.1 (Simple Encrypted Message) and C.4.2 (Partial IV),
# key "our-secret2"; C.4.2's Base IV is 89F52F65A1C58093.
RFC9052_KEY = b64url("hJtXhkV8FJG-Onbc6mxCcY")
RFC9052_C41 = bytes.fromhex(
    "d08343a1010aa1054d89f52f65a1c580933b5261a78c581c"
    "5974e1b99a3a4cc09a659aa2e9e7fff161d38ce71cb45ce460ffb569")
RFC9052_C42 = bytes.fromhex(
    "d08343a1010aa1064261a7581c252a8911d465c125b6764739700f0141ed09192de139e053bd09abca")
RFC9052_BASE_IV = bytes.fromhex("89f52f65a1c58093") + bytes(5)

# cose-wg/Examples hmac-examples/HMac-enc-05.json: COSE_Mac0, HMAC 256/64.
HMAC_ENC_05_KEY = b64url("hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg")
HMAC_ENC_05 = bytes.fromhex(
    "d18443a10104a054546869732069732074686520636f6e74656e742e4811f9e357975fb849")

# cose-wg/Examples aes-ccm-examples/aes-ccm-enc-01.json (AES-CCM 16-128/64).
# The stored revision predates the final "Encrypt0" context string, so it is
# checked at the AEAD layer with the file's own AAD_hex intermediate.
CCM_ENC_01 = {
    "key": b64url("hJtXIZ2uSN5kbQfbtTNWbg"),
    "iv": bytes.fromhex("89f52f65a1c580933b5261a72f"),
    "aad": bytes.fromhex("8368456e63727970743143a1010a40"),
    "ct": bytes.fromhex("6899da0a132bd2d2b9b10915743ee1f7b92a4680cbe82c6d0dc0033b"),
}


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def test_rfc9052_c41_encrypt0_is_reproduced_byte_for_byte() -> None:
    iv = bytes.fromhex("89f52f65a1c580933b5261a78c")
    assert cose.encrypt0(RFC9052_KEY, CONTENT, iv) == RFC9052_C41
    assert cose.decrypt0(RFC9052_C41, RFC9052_KEY) == (CONTENT, b"", None)


def test_rfc9052_c42_partial_iv_is_reproduced_and_opened() -> None:
    piv = bytes.fromhex("61a7")
    nonce = xor(RFC9052_BASE_IV, bytes(11) + piv)
    assert cose.encrypt0(RFC9052_KEY, CONTENT, nonce, partial_iv=piv) == RFC9052_C42

    def nonce_for(kid: bytes, p: bytes) -> bytes:
        return xor(RFC9052_BASE_IV, bytes(13 - len(p)) + p)

    assert cose.decrypt0(RFC9052_C42, RFC9052_KEY, nonce_for=nonce_for) == (CONTENT, b"", piv)


def test_cose_wg_hmac_enc_05_mac0_is_reproduced_and_verified() -> None:
    assert cose.mac0(HMAC_ENC_05_KEY, CONTENT) == HMAC_ENC_05
    assert cose.verify_mac0(HMAC_ENC_05, HMAC_ENC_05_KEY) == (CONTENT, b"")
    forged = HMAC_ENC_05[:-1] + bytes([HMAC_ENC_05[-1] ^ 1])
    with pytest.raises(ProtocolError) as e:
        cose.verify_mac0(forged, HMAC_ENC_05_KEY)
    assert e.value.code == BAD_KEY


def test_cose_wg_aes_ccm_enc_01_ciphertext_is_reproduced() -> None:
    v = CCM_ENC_01
    for aead in (cose.DEFAULT_AEAD, CryptographyAEAD()):
        assert aead.seal(v["key"], v["iv"], v["aad"], CONTENT) == v["ct"]


def cwt_key(key: bytes, kid: bytes = b"HH-0001", alg: str = "AES-CCM-16-64-128") -> COSEKey:
    return COSEKey.from_symmetric_key(key, alg=alg, kid=kid)


def test_cwt_opens_what_we_seal() -> None:
    key, iv = bytes(range(16)), bytes(range(100, 113))
    plaintext = cbor.dumps({1: "測試甲"})
    ours = cose.encrypt0(key, plaintext, iv, kid=b"HH-0001", external_aad=b"ctx")
    assert COSE.new().decode(ours, cwt_key(key), external_aad=b"ctx") == plaintext


def test_cwt_opens_our_partial_iv_message_given_the_full_nonce() -> None:
    # The unprotected header is not authenticated, so swapping Partial IV for
    # the full IV cwt needs proves our nonce and Enc_structure are standard.
    key, common_iv, piv = bytes(range(16)), bytes(range(13)), b"\x01\x02"
    nonce = xor(common_iv, bytes(11) + piv)
    ours = cose.encrypt0(key, b"scan", nonce, kid=b"HH-0001", partial_iv=piv)
    tag = cbor2.loads(ours)
    tag.value[1] = {4: b"HH-0001", 5: nonce}
    assert COSE.new().decode(cbor2.dumps(tag), cwt_key(key)) == b"scan"


def test_we_open_what_cwt_seals() -> None:
    key, iv = bytes(range(16)), bytes(range(13))
    theirs = COSE.new().encode_and_encrypt(b"17000001234", cwt_key(key), protected={1: 10},
                                           unprotected={4: b"HH-0001", 5: iv}, external_aad=b"ctx")
    keys = {b"HH-0001": key}
    assert cose.decrypt0(theirs, keys.get, external_aad=b"ctx") == (b"17000001234", b"HH-0001", None)
    with pytest.raises(ProtocolError) as e:
        cose.decrypt0(theirs, keys.get)  # external AAD missing
    assert e.value.code == BAD_KEY


def test_mac0_interop_with_cwt_both_ways() -> None:
    key = bytes(range(32))
    k = cwt_key(key, kid=b"gw-1", alg="HMAC 256/64")
    payload = cbor.dumps({1: "SF1234567890", 2: "R-07"})
    assert COSE.new().decode(cose.mac0(key, payload, kid=b"gw-1"), k) == payload
    theirs = COSE.new().encode_and_mac(payload, k, protected={1: 4}, unprotected={4: b"gw-1"})
    assert cose.verify_mac0(theirs, key) == (payload, b"gw-1")


def test_unknown_kid_is_refused_as_bad_key() -> None:
    sealed = cose.encrypt0(bytes(16), b"x", bytes(13), kid=b"ghost")
    with pytest.raises(ProtocolError) as e:
        cose.decrypt0(sealed, {}.get)
    assert e.value.code == BAD_KEY


GOOD = cose.encrypt0(bytes(16), b"x", bytes(13), kid=b"k")
PROT = cbor.dumps({1: 10})


@pytest.mark.parametrize("obj", [
    cbor.Tag(17, [PROT, {}, b"x" * 9]),                          # wrong tag
    [PROT, {5: bytes(13)}, b"x" * 9],                            # untagged
    cbor.Tag(16, [PROT, {5: bytes(13)}]),                        # two elements
    cbor.Tag(16, {"a": 1}),                                      # not an array
    cbor.Tag(16, [{1: 10}, {5: bytes(13)}, b"x" * 9]),           # protected not bstr
    cbor.Tag(16, [b"\x01", {5: bytes(13)}, b"x" * 9]),           # protected not a map
    cbor.Tag(16, [b"\xa1\x01", {5: bytes(13)}, b"x" * 9]),       # protected truncated
    cbor.Tag(16, [cbor.dumps({1: 1}), {5: bytes(13)}, b"x" * 9]),  # A128GCM
    cbor.Tag(16, [b"", {5: bytes(13)}, b"x" * 9]),               # no alg
    cbor.Tag(16, [PROT, [], b"x" * 9]),                          # unprotected not a map
    cbor.Tag(16, [PROT, {1: 10, 5: bytes(13)}, b"x" * 9]),       # alg twice
    cbor.Tag(16, [cbor.dumps({1: 10, 2: [99]}), {5: bytes(13)}, b"x" * 9]),  # crit
    cbor.Tag(16, [PROT, {5: bytes(12)}, b"x" * 9]),              # short IV
    cbor.Tag(16, [PROT, {5: "iv"}, b"x" * 9]),                   # IV not bytes
    cbor.Tag(16, [PROT, {5: bytes(13), 6: b"\x01"}, b"x" * 9]),  # IV and Partial IV
    cbor.Tag(16, [PROT, {6: b""}, b"x" * 9]),                    # empty Partial IV
    cbor.Tag(16, [PROT, {6: b"\x01"}, b"x" * 9]),                # Partial IV, no context
    cbor.Tag(16, [PROT, {}, b"x" * 9]),                          # no IV at all
    cbor.Tag(16, [PROT, {4: "kid", 5: bytes(13)}, b"x" * 9]),    # kid not bytes
    cbor.Tag(16, [PROT, {4: bytes(65), 5: bytes(13)}, b"x" * 9]),  # kid too long
    cbor.Tag(16, [PROT, {5: bytes(13)}, b"x" * 7]),              # shorter than the tag
    cbor.Tag(16, [PROT, {5: bytes(13)}, None]),                  # detached
], ids=lambda o: repr(o)[:40])
def test_malformed_encrypt0_is_refused_as_malformed(obj: object) -> None:
    with pytest.raises(ProtocolError) as e:
        cose.decrypt0(cbor.dumps(obj), bytes(16))
    assert e.value.code == MALFORMED


def test_garbage_and_truncations_raise_only_protocol_error() -> None:
    for n in range(len(GOOD)):
        with pytest.raises(ProtocolError):
            cose.decrypt0(GOOD[:n], bytes(16))
    for junk in (b"", b"\xff", b"\xd0", "text", None, 16):
        with pytest.raises(ProtocolError):
            cose.decrypt0(junk, bytes(16))  # type: ignore[arg-type]


@pytest.mark.parametrize("obj", [
    cbor.Tag(17, [cbor.dumps({1: 4}), {}, b"p"]),                       # three elements
    cbor.Tag(17, [cbor.dumps({1: 5}), {}, b"p", bytes(8)]),             # HMAC 256/256
    cbor.Tag(17, [cbor.dumps({1: 4}), {}, b"p", bytes(32)]),            # untruncated tag
    cbor.Tag(17, [cbor.dumps({1: 4}), {}, None, bytes(8)]),             # detached payload
    cbor.Tag(16, [cbor.dumps({1: 4}), {}, b"p", bytes(8)]),             # wrong tag
], ids=lambda o: repr(o)[:40])
def test_malformed_mac0_is_refused_as_malformed(obj: object) -> None:
    with pytest.raises(ProtocolError) as e:
        cose.verify_mac0(cbor.dumps(obj), bytes(32))
    assert e.value.code == MALFORMED


def test_decrypt0_with_the_cryptography_adapter_gives_the_same_answer() -> None:
    fast = CryptographyAEAD()
    assert cose.encrypt0(RFC9052_KEY, CONTENT, bytes.fromhex("89f52f65a1c580933b5261a78c"),
                         aead=fast) == RFC9052_C41
    assert cose.decrypt0(RFC9052_C41, RFC9052_KEY, aead=fast)[0] == CONTENT
