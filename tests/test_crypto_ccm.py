"""AES-CCM-16-64-128: RFC 3610 vectors, byte-for-byte agreement with
`cryptography`, and refusal of forged or damaged input."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.aead import CryptographyAEAD
from protocol import ccm
from protocol.errors import BAD_KEY, MALFORMED, ProtocolError

RFC3610_KEY = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
# RFC 3610 section 8, Packet Vectors #1-#6 (M = 8, L = 2): nonce, AAD (the
# cleartext header), payload, ciphertext, tag.
RFC3610 = [
    ("00000003020100a0a1a2a3a4a5", "0001020304050607",
     "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
     "588c979a61c663d2f066d0c2c0f989806d5f6b61dac384", "17e8d12cfdf926e0"),
    ("00000004030201a0a1a2a3a4a5", "0001020304050607",
     "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3b", "a091d56e10400916"),
    ("00000005040302a0a1a2a3a4a5", "0001020304050607",
     "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da859657", "4adaa76fbd9fb0c5"),
    ("00000006050403a0a1a2a3a4a5", "000102030405060708090a0b",
     "0c0d0e0f101112131415161718191a1b1c1d1e",
     "a28c6865939a9a79faaa5c4c2a9d4a91cdac8c", "96c861b9c9e61ef1"),
    ("00000007060504a0a1a2a3a4a5", "000102030405060708090a0b",
     "0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "dcf1fb7b5d9e23fb9d4e131253658ad86ebdca3e", "51e83f077d9c2d93"),
    ("00000008070605a0a1a2a3a4a5", "000102030405060708090a0b",
     "0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     "6fc1b011f006568b5171a42d953d469b2570a4bd87", "405a0443ac91cb94"),
]


@pytest.mark.parametrize("vector", RFC3610, ids=["packet-%d" % (i + 1) for i in range(len(RFC3610))])
def test_rfc3610_packet_vectors_seal_and_open(vector: tuple[str, ...]) -> None:
    nonce, aad, pt, ct, tag = (bytes.fromhex(x) for x in vector)
    key = bytes.fromhex(RFC3610_KEY)
    assert ccm.seal(key, nonce, aad, pt) == ct + tag
    assert ccm.open(key, nonce, aad, ct + tag) == pt
    assert CryptographyAEAD().open(key, nonce, aad, ct + tag) == pt


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), nonce=st.binary(min_size=13, max_size=13),
       aad=st.binary(max_size=80), pt=st.binary(max_size=120))
def test_pure_ccm_matches_cryptography_byte_for_byte(key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> None:
    sealed = ccm.seal(key, nonce, aad, pt)
    assert sealed == AESCCM(key, tag_length=8).encrypt(nonce, pt, aad)
    assert sealed == CryptographyAEAD().seal(key, nonce, aad, pt)
    assert ccm.PureAEAD().open(key, nonce, aad, sealed) == pt


def test_long_aad_uses_the_six_byte_length_form() -> None:
    key, nonce = bytes(range(16)), bytes(13)
    for n in (0xFEFF, 0xFF00, 0xFF01):
        aad = bytes([7]) * n
        assert ccm.seal(key, nonce, aad, b"x") == AESCCM(key, tag_length=8).encrypt(nonce, b"x", aad)


@pytest.mark.parametrize("aead", [ccm.PureAEAD(), CryptographyAEAD()], ids=["pure", "cryptography"])
def test_flipped_bit_anywhere_is_refused_as_bad_key(aead) -> None:
    key, nonce, aad = bytes(range(16)), bytes(range(13)), b"header"
    sealed = aead.seal(key, nonce, aad, b"17000001234")
    for i in range(len(sealed)):
        forged = bytearray(sealed)
        forged[i] ^= 0x01
        with pytest.raises(ProtocolError) as e:
            aead.open(key, nonce, aad, bytes(forged))
        assert e.value.code == BAD_KEY
    with pytest.raises(ProtocolError) as e:
        aead.open(key, nonce, b"other header", sealed)
    assert e.value.code == BAD_KEY
    with pytest.raises(ProtocolError) as e:
        aead.open(bytes(16), nonce, aad, sealed)
    assert e.value.code == BAD_KEY


@pytest.mark.parametrize("aead", [ccm.PureAEAD(), CryptographyAEAD()], ids=["pure", "cryptography"])
def test_input_shorter_than_the_tag_is_malformed(aead) -> None:
    for n in range(8):
        with pytest.raises(ProtocolError) as e:
            aead.open(bytes(16), bytes(13), b"", bytes(n))
        assert e.value.code == MALFORMED


def test_tag_length_outside_rfc3610_is_refused() -> None:
    for m in (0, 2, 5, 18):
        with pytest.raises(ValueError):
            ccm.seal(bytes(16), bytes(13), b"", b"", tag_len=m)
        with pytest.raises(ValueError):
            ccm.open(bytes(16), bytes(13), b"", bytes(20), tag_len=m)


def test_wrong_nonce_length_is_refused() -> None:
    with pytest.raises(ValueError):
        ccm.seal(bytes(16), bytes(12), b"", b"")
    with pytest.raises(ProtocolError):
        ccm.open(bytes(16), bytes(12), b"", bytes(8))


def test_equal_compares_contents_and_lengths() -> None:
    assert ccm.equal(b"abc", b"abc")
    assert not ccm.equal(b"abc", b"abd")
    assert not ccm.equal(b"abc", b"ab")


def test_nist_sp800_38c_example_4_with_64k_of_associated_data() -> None:
    # NIST SP 800-38C Appendix C, Example 4: the one example with a 13-byte
    # nonce; its tag is 14 bytes (Tlen 112) and its AAD 65536 bytes long,
    # which exercises the 0xFFFE six-byte length form.
    key = bytes.fromhex("404142434445464748494a4b4c4d4e4f")
    nonce = bytes.fromhex("101112131415161718191a1b1c")
    aad = bytes(i & 0xFF for i in range(65536))
    pt = bytes(range(0x20, 0x40))
    expected = bytes.fromhex("69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72"
                             "b4ac6bec93e8598e7f0dadbcea5b")
    assert ccm.seal(key, nonce, aad, pt, tag_len=14) == expected
    assert ccm.open(key, nonce, aad, expected, tag_len=14) == pt
