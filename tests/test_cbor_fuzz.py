"""Fuzzing the decoders: random and mutated inputs raise ProtocolError and
nothing else. VEILPOST_FUZZ_ITERATIONS sets the count (default 100,000) for
longer campaigns, e.g. VEILPOST_FUZZ_ITERATIONS=5000000."""

from __future__ import annotations

import os
import random

from protocol import cbor, messages
from protocol.errors import ProtocolError

ITERATIONS = int(os.environ.get("VEILPOST_FUZZ_ITERATIONS", "100000"))

SEEDS = [
    messages.encode("scan", {"t": 1764000000, "tracking_no": "SF1234567890", "session": b"\x01" * 8}),
    messages.encode("reveal_request", {"t": 1764000000, "req": 7, "tracking_no": "SF1234567890",
                                       "fields": [2, 3], "reason": 1, "session": b"s" * 8}),
    messages.encode("route", {"t": 1, "route": "R-07", "parcels": [
        {"tracking_no": "SF1", "name": "測**", "phone": "170******34", "address": "測試市 *棟***室"}]}),
    messages.encode("batch", {"t": 1, "items": [messages.encode("seal", {"t": 1, "tracking_no": "SF1"})]}),
    cbor.dumps([1, -1, 2**64 - 1, -(2**64), b"bytes", "text", True, False, None, {"k": [1, {2: 3}]}]),
    cbor.dumps(cbor.Tag(16, [b"\xa1\x01\x0a", {4: b"hh-0001", 6: b"\x05"}, b"\x00" * 20])),
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[i % len(b)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[i % len(b)] = rng.choice((0x00, 0x17, 0x18, 0x1B, 0x1F, 0x5F, 0x7F, 0x9F, 0xBF, 0xFF, 0xF9))
        elif op == 2:
            b.insert(i, rng.randrange(256))
        elif op == 3 and b:
            del b[i % len(b)]
        elif op == 4:
            b = b[:i]
        else:
            b[i:i] = b[rng.randrange(len(b) + 1):][: rng.randrange(8)]
    return bytes(b)


def _decode_only_protocol_errors(data: bytes) -> None:
    try:
        messages.decode(data)
    except ProtocolError:
        pass


def test_random_and_mutated_inputs_raise_only_protocol_error() -> None:
    rng = random.Random(0x7E11)
    survivors = 0
    for n in range(ITERATIONS):
        if n % 4 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(24)))
        else:
            data = _mutate(rng, rng.choice(SEEDS))
        try:
            cbor.loads(data)
            survivors += 1
        except ProtocolError:
            pass
        _decode_only_protocol_errors(data)
    # Not every mutation breaks the input: the run really exercised decoding.
    assert survivors > ITERATIONS // 100


def test_deeply_nested_input_is_refused_not_a_recursion_error() -> None:
    for head in (b"\x81", b"\xa1\x00", b"\xd8\x10"):
        try:
            cbor.loads(head * 5000 + b"\x00", max_size=100000)
        except ProtocolError as e:
            assert e.code in (1, 2)
        else:
            raise AssertionError("5000 levels of nesting were accepted")
