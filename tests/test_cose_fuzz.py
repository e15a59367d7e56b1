"""Fuzz the COSE openers and Channel.open with random and mutated input:
anything may be refused, but only with ProtocolError.

Default: 100,000 inputs (CI). A longer campaign:
    VEILPOST_FUZZ_ITERATIONS=5000000 VEILPOST_FUZZ_SEED=7 python3 -m pytest tests/test_cose_fuzz.py
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from protocol import cbor, cose
from protocol.errors import ProtocolError
from protocol.replay import ReplayWindow
from protocol.session import GATEWAY, HANDHELD, Channel, open_token, seal_token

ITERATIONS = int(os.environ.get("VEILPOST_FUZZ_ITERATIONS", "100000"))
SEED = int(os.environ.get("VEILPOST_FUZZ_SEED", "20261128"))
SECRET = bytes(range(32))
DEVICE = "HH-fuzz-01"
TOKEN_KEY = bytes(range(16, 32))
MAC_KEY = bytes(range(32))


def seeds() -> list[bytes]:
    hh = Channel(SECRET, DEVICE, HANDHELD)
    out = [hh.seal(b"\xa3\x00\x07\x01\x1a\x68\x00\x00\x00\x02\x6cSF1234567890") for _ in range(3)]
    hh.send_seq = 70000
    out.append(hh.seal(b"x" * 40))
    out.append(seal_token(TOKEN_KEY, "SF1234567890", {1: "測試甲", 2: "17000001234"}, bytes(8), 2**31))
    out.append(cose.mac0(MAC_KEY, cbor.dumps({1: "SF1234567890", 2: "R-07"}), kid=b"gw-1"))
    out.append(cose.encrypt0(bytes(16), b"plain", bytes(13), kid=b"k"))
    out.append(cbor.dumps(cbor.Tag(16, [b"\xa1\x01\x0a", {4: b"k", 6: b"\x01"}, [b"x", {}]])))
    return out


def random_cbor(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([0, 1, 10, 16, 17, 23, 24, 255, 65536, 2**32, 2**64 - 1])
    if kind == 1:
        return -rng.randrange(1, 100000)
    if kind == 2:
        return rng.randbytes(rng.choice([0, 1, 5, 8, 13, 30]))
    if kind == 3:
        return rng.choice(["", "kid", "測試", "Encrypt0"])
    if kind == 4:
        return rng.choice([True, False, None])
    if kind == 5:
        return [random_cbor(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 6:
        labels = [1, 2, 4, 5, 6, -1, "a"]
        return {rng.choice(labels): random_cbor(rng, depth + 1) for _ in range(rng.randrange(4))}
    if kind == 7:
        return cbor.Tag(rng.choice([16, 17, 96, 24]), random_cbor(rng, depth + 1))
    # A COSE-shaped array with random parts.
    return cbor.Tag(rng.choice([16, 17]), [
        rng.choice([b"\xa1\x01\x0a", b"\xa1\x01\x04", b"", cbor.dumps(random_cbor(rng, depth + 1))]),
        {rng.choice([1, 4, 5, 6]): random_cbor(rng, depth + 1) for _ in range(rng.randrange(3))},
        random_cbor(rng, depth + 1),
    ] + ([random_cbor(rng, depth + 1)] if rng.random() < 0.5 else []))


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    data = bytearray(rng.choice(corpus))
    op = rng.randrange(8)
    if op == 0:  # bit flips
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:  # truncation
        del data[rng.randrange(len(data)):]
    elif op == 2:  # splice two valid objects
        other = rng.choice(corpus)
        data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    elif op == 3:  # insert or delete a run
        i = rng.randrange(len(data) + 1)
        if rng.random() < 0.5:
            data[i:i] = rng.randbytes(rng.randrange(1, 6))
        else:
            del data[i:i + rng.randrange(1, 6)]
    elif op == 4:  # interesting byte at a random place
        data[rng.randrange(len(data))] = rng.choice([0x00, 0x18, 0x19, 0x1b, 0x1f, 0x5f, 0x9f, 0xbf, 0xd0,
                                                     0xd1, 0xf7, 0xff, 0x40, 0x58, 0xa0, 0x80])
    elif op == 5:  # plain random bytes
        data = bytearray(rng.randbytes(rng.randrange(64)))
    elif op == 6:  # structurally random CBOR
        data = bytearray(cbor.dumps(random_cbor(rng)))
    else:  # trailing garbage
        data += rng.randbytes(rng.randrange(1, 4))
    return bytes(data)


def test_cose_openers_and_channel_raise_only_protocol_error() -> None:
    rng = random.Random(SEED)
    corpus = seeds()
    gw = Channel(SECRET, DEVICE, GATEWAY)
    keys = {b"k": bytes(16), DEVICE.encode(): bytes(16)}

    def channel_open(d: bytes) -> object:
        gw.replay = ReplayWindow(32)  # a fresh window, so mutants reach the AEAD
        return gw.open(d)

    targets: list[Callable[[bytes], object]] = [
        channel_open,
        gw.open,
        lambda d: cose.decrypt0(d, keys.get, nonce_for=lambda kid, piv: bytes(13 - len(piv)) + piv),
        lambda d: cose.verify_mac0(d, MAC_KEY),
        lambda d: open_token(TOKEN_KEY, d, 0),
    ]
    refused = accepted = 0
    for i in range(ITERATIONS):
        data = mutate(rng, corpus)
        try:
            targets[i % len(targets)](data)
            accepted += 1
        except ProtocolError:
            refused += 1
        except Exception as e:  # the property under test
            raise AssertionError("iteration %d: %r raised %r" % (i, data.hex(), e)) from e
    assert refused + accepted == ITERATIONS
    assert refused > ITERATIONS * 0.9
