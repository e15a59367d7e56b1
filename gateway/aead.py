"""AES-CCM-16-64-128 through OpenSSL (`cryptography`), a drop-in for
`protocol.ccm.PureAEAD` with identical output, for the CPython side: the
gateway, the tools and the simulated handhelds (which hand it to the host
board, firmware/hal/host). protocol/ holds only what also runs on a handheld."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from protocol.ccm import MAX_PLAINTEXT, NONCE_SIZE, TAG_SIZE
from protocol.errors import BAD_KEY, MALFORMED, RemoteProtocolError


class CryptographyAEAD:
    """AES-CCM through OpenSSL; caches one AESCCM object per key."""

    def __init__(self, cache_size: int = 256) -> None:
        self._ciphers: dict[bytes, AESCCM] = {}
        self._cache_size = cache_size

    def _cipher(self, key: bytes) -> AESCCM:
        key = bytes(key)
        c = self._ciphers.get(key)
        if c is None:
            if len(self._ciphers) >= self._cache_size:
                self._ciphers.clear()
            c = AESCCM(key, tag_length=TAG_SIZE)
            self._ciphers[key] = c
        return c

    def seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("CCM nonce must be 13 bytes")
        return self._cipher(key).encrypt(bytes(nonce), bytes(plaintext), bytes(aad))

    def open(self, key: bytes, nonce: bytes, aad: bytes, data: bytes) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise RemoteProtocolError("CCM nonce must be 13 bytes", -1, MALFORMED)
        if len(data) < TAG_SIZE:
            raise RemoteProtocolError("CCM input shorter than its tag", -1, MALFORMED)
        if len(data) - TAG_SIZE > MAX_PLAINTEXT:
            raise RemoteProtocolError("CCM input longer than 65535 bytes", -1, MALFORMED)
        try:
            return self._cipher(key).decrypt(bytes(nonce), bytes(data), bytes(aad))
        except InvalidTag:
            raise RemoteProtocolError("authentication failed: wrong key or forged message", -1,
                                      BAD_KEY) from None
