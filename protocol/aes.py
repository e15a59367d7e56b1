# AES block encryption (FIPS-197), encrypt direction only: CCM needs nothing
# else. Byte-oriented tables keep every value a small int, which matters on
# MicroPython where 32-bit words would be heap-allocated big ints.
#
# `new_block_cipher(key)` prefers MicroPython's `cryptolib.aes(key, 1)` (ECB,
# in C on an ESP32) and falls back to the pure-Python cipher below.


def _build_tables():
    # S-box from the GF(2^8) inverse via log/antilog tables with generator 3.
    exp = bytearray(256)
    log = bytearray(256)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x ^= ((x << 1) ^ (0x1B if x & 0x80 else 0)) & 0xFF
    sbox = bytearray(256)
    for a in range(256):
        inv = exp[(255 - log[a]) % 255] if a else 0
        s = inv
        for _ in range(4):
            inv = ((inv << 1) | (inv >> 7)) & 0xFF
            s ^= inv
        sbox[a] = s ^ 0x63
    mul2 = bytearray(256)
    mul3 = bytearray(256)
    for a in range(256):
        s = sbox[a]
        d = ((s << 1) ^ (0x1B if s & 0x80 else 0)) & 0xFF
        mul2[a] = d
        mul3[a] = d ^ s
    return bytes(sbox), bytes(mul2), bytes(mul3)


SBOX, _S2, _S3 = _build_tables()


def _expand_key(key):
    nk = len(key) // 4
    nr = nk + 6
    w = bytearray(key)
    rcon = 1
    i = nk
    while i < 4 * (nr + 1):
        t0, t1, t2, t3 = w[4 * i - 4], w[4 * i - 3], w[4 * i - 2], w[4 * i - 1]
        if i % nk == 0:
            t0, t1, t2, t3 = SBOX[t1] ^ rcon, SBOX[t2], SBOX[t3], SBOX[t0]
            rcon = ((rcon << 1) ^ (0x1B if rcon & 0x80 else 0)) & 0xFF
        elif nk > 6 and i % nk == 4:
            t0, t1, t2, t3 = SBOX[t0], SBOX[t1], SBOX[t2], SBOX[t3]
        j = 4 * (i - nk)
        w.append(w[j] ^ t0)
        w.append(w[j + 1] ^ t1)
        w.append(w[j + 2] ^ t2)
        w.append(w[j + 3] ^ t3)
        i += 1
    return [bytes(w[16 * r:16 * r + 16]) for r in range(nr + 1)]


class AES:
    """Pure-Python AES-128/192/256 encryption of one 16-byte block."""

    def __init__(self, key):
        if len(key) not in (16, 24, 32):
            raise ValueError("AES key must be 16, 24 or 32 bytes")
        self._rk = _expand_key(bytes(key))

    def encrypt_block(self, block):
        S = SBOX
        M2 = _S2
        M3 = _S3
        rk = self._rk
        k = rk[0]
        s0 = block[0] ^ k[0]
        s1 = block[1] ^ k[1]
        s2 = block[2] ^ k[2]
        s3 = block[3] ^ k[3]
        s4 = block[4] ^ k[4]
        s5 = block[5] ^ k[5]
        s6 = block[6] ^ k[6]
        s7 = block[7] ^ k[7]
        s8 = block[8] ^ k[8]
        s9 = block[9] ^ k[9]
        s10 = block[10] ^ k[10]
        s11 = block[11] ^ k[11]
        s12 = block[12] ^ k[12]
        s13 = block[13] ^ k[13]
        s14 = block[14] ^ k[14]
        s15 = block[15] ^ k[15]
        # One round = SubBytes, ShiftRows, MixColumns, AddRoundKey, with the
        # first two folded into the S, 2·S and 3·S tables.
        for r in range(1, len(rk) - 1):
            k = rk[r]
            t0 = M2[s0] ^ M3[s5] ^ S[s10] ^ S[s15] ^ k[0]
            t1 = S[s0] ^ M2[s5] ^ M3[s10] ^ S[s15] ^ k[1]
            t2 = S[s0] ^ S[s5] ^ M2[s10] ^ M3[s15] ^ k[2]
            t3 = M3[s0] ^ S[s5] ^ S[s10] ^ M2[s15] ^ k[3]
            t4 = M2[s4] ^ M3[s9] ^ S[s14] ^ S[s3] ^ k[4]
            t5 = S[s4] ^ M2[s9] ^ M3[s14] ^ S[s3] ^ k[5]
            t6 = S[s4] ^ S[s9] ^ M2[s14] ^ M3[s3] ^ k[6]
            t7 = M3[s4] ^ S[s9] ^ S[s14] ^ M2[s3] ^ k[7]
            t8 = M2[s8] ^ M3[s13] ^ S[s2] ^ S[s7] ^ k[8]
            t9 = S[s8] ^ M2[s13] ^ M3[s2] ^ S[s7] ^ k[9]
            t10 = S[s8] ^ S[s13] ^ M2[s2] ^ M3[s7] ^ k[10]
            t11 = M3[s8] ^ S[s13] ^ S[s2] ^ M2[s7] ^ k[11]
            t12 = M2[s12] ^ M3[s1] ^ S[s6] ^ S[s11] ^ k[12]
            t13 = S[s12] ^ M2[s1] ^ M3[s6] ^ S[s11] ^ k[13]
            t14 = S[s12] ^ S[s1] ^ M2[s6] ^ M3[s11] ^ k[14]
            t15 = M3[s12] ^ S[s1] ^ S[s6] ^ M2[s11] ^ k[15]
            s0, s1, s2, s3, s4, s5, s6, s7 = t0, t1, t2, t3, t4, t5, t6, t7
            s8, s9, s10, s11, s12, s13, s14, s15 = t8, t9, t10, t11, t12, t13, t14, t15
        k = rk[-1]
        return bytes((
            S[s0] ^ k[0], S[s5] ^ k[1], S[s10] ^ k[2], S[s15] ^ k[3],
            S[s4] ^ k[4], S[s9] ^ k[5], S[s14] ^ k[6], S[s3] ^ k[7],
            S[s8] ^ k[8], S[s13] ^ k[9], S[s2] ^ k[10], S[s7] ^ k[11],
            S[s12] ^ k[12], S[s1] ^ k[13], S[s6] ^ k[14], S[s11] ^ k[15],
        ))


class _NativeECB:
    """MicroPython's C AES (cryptolib) behind the same one-method interface."""

    def __init__(self, key):
        import cryptolib

        self._aes = cryptolib.aes(bytes(key), 1)

    def encrypt_block(self, block):
        return self._aes.encrypt(bytes(block))


try:
    import cryptolib as _cryptolib  # noqa: F401

    _HAVE_NATIVE = True
except ImportError:
    _HAVE_NATIVE = False


def new_block_cipher(key):
    """An object with `encrypt_block(16 bytes) -> 16 bytes` under `key`."""
    if len(key) not in (16, 24, 32):
        raise ValueError("AES key must be 16, 24 or 32 bytes")
    if _HAVE_NATIVE:
        return _NativeECB(key)
    return AES(key)
