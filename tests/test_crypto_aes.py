"""AES block cipher: FIPS-197 known answers and agreement with OpenSSL."""

from __future__ import annotations

import sys
import types

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import aes

# FIPS-197 Appendix B and Appendix C.1-C.3 (key, plaintext, ciphertext).
FIPS_197 = [
    ("2b7e151628aed2a6abf7158809cf4f3c",
     "3243f6a8885a308d313198a2e0370734", "3925841d02dc09fbdc118597196a0b32"),
    ("000102030405060708090a0b0c0d0e0f",
     "00112233445566778899aabbccddeeff", "69c4e0d86a7b0430d8cdb78070b4c55a"),
    ("000102030405060708090a0b0c0d0e0f1011121314151617",
     "00112233445566778899aabbccddeeff", "dda97ca4864cdfe06eaf70a0ec0d7191"),
    ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff", "8ea2b7ca516745bfeafc49904b496089"),
]


def test_fips197_vectors_encrypt_to_the_published_ciphertext() -> None:
    for key, pt, ct in FIPS_197:
        assert aes.AES(bytes.fromhex(key)).encrypt_block(bytes.fromhex(pt)).hex() == ct


def test_sbox_starts_and_ends_as_published() -> None:
    assert aes.SBOX[:4] == bytes.fromhex("637c777b")
    assert aes.SBOX[-4:] == bytes.fromhex("b054bb16")


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       block=st.binary(min_size=16, max_size=16))
def test_pure_aes_matches_openssl_ecb(key: bytes, block: bytes) -> None:
    expected = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)
    assert aes.AES(key).encrypt_block(block) == expected
    assert aes.AES(key).encrypt_block(bytearray(block)) == expected


def test_wrong_key_length_is_refused() -> None:
    for n in (0, 15, 17, 33):
        try:
            aes.new_block_cipher(bytes(n))
        except ValueError:
            continue
        raise AssertionError("key of " + str(n) + " bytes accepted")


def test_native_cryptolib_is_used_when_importable(monkeypatch) -> None:
    # Stand-in for MicroPython's cryptolib: aes(key, 1) in ECB mode.
    calls = []

    class FakeAes:
        def __init__(self, key: bytes, mode: int) -> None:
            calls.append(mode)
            self._enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

        def encrypt(self, buf: bytes) -> bytes:
            return self._enc.update(buf)

    monkeypatch.setitem(sys.modules, "cryptolib", types.SimpleNamespace(aes=FakeAes))
    monkeypatch.setattr(aes, "_HAVE_NATIVE", True)
    key, pt, ct = FIPS_197[1]
    cipher = aes.new_block_cipher(bytes.fromhex(key))
    assert isinstance(cipher, aes._NativeECB)
    assert cipher.encrypt_block(bytes.fromhex(pt)).hex() == ct
    assert calls == [1]
