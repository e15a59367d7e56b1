# AES-CCM (RFC 3610) with a 13-byte nonce (L = 2) and an 8-byte tag (M = 8):
# COSE algorithm 10, AES-CCM-16-64-128, the AEAD of OSCORE. Built on any
# object with `encrypt_block`, so a handheld can plug in its hardware AES.

from .aes import new_block_cipher
from .errors import BAD_KEY, MALFORMED, RemoteProtocolError

NONCE_SIZE = 13
TAG_SIZE = 8
MAX_PLAINTEXT = 0xFFFF  # L = 2: the length field is two bytes


def _cbc_mac(cipher, nonce, aad, message, tag_len):
    flags = (0x40 if aad else 0) | (((tag_len - 2) // 2) << 3) | 1
    n = len(message)
    x = cipher.encrypt_block(bytes((flags,)) + nonce + bytes((n >> 8, n & 0xFF)))
    if aad:
        a = len(aad)
        if a < 0xFF00:
            head = bytes((a >> 8, a & 0xFF))
        else:
            head = b"\xff\xfe" + a.to_bytes(4, "big")
        x = _mac_blocks(cipher, x, head + bytes(aad))
    if message:
        x = _mac_blocks(cipher, x, message)
    return x


def _mac_blocks(cipher, x, data):
    # CBC over `data`, zero-padded to whole blocks.
    buf = bytearray(16)
    n = len(data)
    for i in range(0, n, 16):
        end = i + 16 if i + 16 <= n else n
        for j in range(16):
            buf[j] = x[j]
        for j in range(i, end):
            buf[j - i] ^= data[j]
        x = cipher.encrypt_block(buf)
    return x


def _ctr(cipher, nonce, data):
    # Counter blocks A_i = flags(L-1) | nonce | i, starting at i = 1.
    out = bytearray(data)
    prefix = b"\x01" + nonce
    n = len(out)
    counter = 1
    for i in range(0, n, 16):
        s = cipher.encrypt_block(prefix + bytes((counter >> 8, counter & 0xFF)))
        end = i + 16 if i + 16 <= n else n
        for j in range(i, end):
            out[j] ^= s[j - i]
        counter += 1
    return bytes(out)


def _tag(cipher, nonce, aad, message, tag_len):
    t = _cbc_mac(cipher, nonce, aad, message, tag_len)
    s0 = cipher.encrypt_block(b"\x01" + nonce + b"\x00\x00")
    return bytes([t[i] ^ s0[i] for i in range(tag_len)])


def _cipher(key):
    if hasattr(key, "encrypt_block"):
        return key
    return new_block_cipher(key)


def seal(key, nonce, aad, plaintext, tag_len=TAG_SIZE):
    """Encrypt and authenticate: returns ciphertext || tag. `key` is 16 bytes
    or a block cipher object (anything with `encrypt_block`)."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("CCM nonce must be 13 bytes")
    if tag_len not in (4, 6, 8, 10, 12, 14, 16):
        raise ValueError("CCM tag length must be an even number of bytes from 4 to 16")
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError("CCM plaintext longer than 65535 bytes")
    cipher = _cipher(key)
    nonce = bytes(nonce)
    tag = _tag(cipher, nonce, aad, plaintext, tag_len)
    return _ctr(cipher, nonce, plaintext) + tag


def open(key, nonce, aad, data, tag_len=TAG_SIZE):
    """Check and decrypt ciphertext || tag. Raises RemoteProtocolError(BAD_KEY) when
    the tag does not match (wrong key, forged or damaged input)."""
    if len(nonce) != NONCE_SIZE:
        raise RemoteProtocolError("CCM nonce must be 13 bytes", -1, MALFORMED)
    if tag_len not in (4, 6, 8, 10, 12, 14, 16):
        raise ValueError("CCM tag length must be an even number of bytes from 4 to 16")
    n = len(data) - tag_len
    if n < 0:
        raise RemoteProtocolError("CCM input shorter than its tag", -1, MALFORMED)
    if n > MAX_PLAINTEXT:
        raise RemoteProtocolError("CCM input longer than 65535 bytes", -1, MALFORMED)
    cipher = _cipher(key)
    nonce = bytes(nonce)
    plaintext = _ctr(cipher, nonce, data[:n])
    expected = _tag(cipher, nonce, aad, plaintext, tag_len)
    if not equal(expected, data[n:]):
        raise RemoteProtocolError("authentication failed: wrong key or forged message", -1, BAD_KEY)
    return plaintext


def equal(a, b):
    """Compare two byte strings in time that depends only on their length."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


class PureAEAD:
    """AES-CCM-16-64-128 in pure Python: `seal(key, nonce, aad, pt)` and
    `open(key, nonce, aad, ct)`. The default AEAD of COSE and Channel. Keeps
    the key schedules of the last few keys, since a session reuses two."""

    def __init__(self, cache_size=8):
        self._ciphers = {}
        self._cache_size = cache_size

    def _cipher(self, key):
        if hasattr(key, "encrypt_block"):
            return key
        key = bytes(key)
        c = self._ciphers.get(key)
        if c is None:
            if len(self._ciphers) >= self._cache_size:
                self._ciphers.clear()
            c = new_block_cipher(key)
            self._ciphers[key] = c
        return c

    def seal(self, key, nonce, aad, plaintext):
        return seal(self._cipher(key), nonce, aad, plaintext)

    def open(self, key, nonce, aad, data):
        return open(self._cipher(key), nonce, aad, data)


DEFAULT_AEAD = PureAEAD()
