# HMAC-SHA256 (RFC 2104) and HKDF-SHA256 (RFC 5869) over hashlib.sha256 alone:
# MicroPython has no hmac module, and its sha256 objects cannot be copied.

import hashlib

_BLOCK = 64
_IPAD = bytes([0x36] * _BLOCK)
_OPAD = bytes([0x5C] * _BLOCK)
HASH_SIZE = 32


def _xor_pad(key, pad):
    return bytes([key[i] ^ pad[i] for i in range(_BLOCK)])


def hmac_sha256(key, message):
    """HMAC-SHA256 of `message` under `key`, 32 bytes."""
    key = bytes(key)
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(_xor_pad(key, _IPAD))
    inner.update(bytes(message))
    outer = hashlib.sha256(_xor_pad(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def hkdf_extract(salt, ikm):
    if not salt:
        salt = bytes(HASH_SIZE)
    return hmac_sha256(salt, ikm)


def hkdf_expand(prk, info, length):
    if length > 255 * HASH_SIZE:
        raise ValueError("HKDF output longer than 8160 bytes")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(prk, block + bytes(info) + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


def hkdf(ikm, salt, info, length):
    """HKDF-SHA256: `length` bytes of key material from `ikm`."""
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)
