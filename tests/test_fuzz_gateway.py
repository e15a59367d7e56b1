"""Fuzzing the gateway through its real per-message handler
(`Handlers.process`, what the service runs for every batch).

1. Catalogue messages (hypothesis): every message a handheld may send, and
   the ones it may not, with field values biased towards what makes a
   handler go deep (the real session, tracking numbers on and off the
   route, real label proofs and ctis, huge and empty values), sealed under
   the device's valid key. Each gets an intended answer: a reply from the
   catalogue, never "internal error".
2. Authenticated malformed plaintext: at least 100,000 byte strings that
   are no valid message (random bytes, mutated and truncated encodings,
   random CBOR), sealed under the valid key, through the gateway's real
   decode path (protocol's strict decoder, the one the handhelds use too),
   batched with an honest device's request that must still be answered.
   Only MALFORMED or UNKNOWN_MESSAGE errors come back; the honest request
   is answered every time; the store stays whole.

After each: the audit chain verifies, every token has its granted audit
entry and ledger rows, nothing personal reaches the audit log.

Long campaigns: VEILPOST_FUZZ_EXAMPLES=200000 (catalogue) and
VEILPOST_FUZZ_ITERATIONS=5000000 (plaintexts) python3 -m pytest tests/test_fuzz_gateway.py
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import audit, registry
from gateway.aead import CryptographyAEAD
from gateway.handlers import Handlers
from protocol import cbor, messages
from protocol.errors import INTERNAL, MALFORMED, UNKNOWN_MESSAGE, ProtocolError
from protocol.session import HANDHELD, Channel
from tests.fixtures.gateway import Depot, Wire, leaks

EXAMPLES = int(os.environ.get("VEILPOST_FUZZ_EXAMPLES", "1000"))
BYTES_ITERATIONS = int(os.environ.get("VEILPOST_FUZZ_ITERATIONS", "3000"))
PLAINTEXTS = max(100_000, int(os.environ.get("VEILPOST_FUZZ_PLAINTEXTS", "0")) or 100_000)
DEVICE_SENDS = ["hello", "login", "logout", "route_request", "scan", "reveal_request", "delivered",
                "batch", "token_use", "preissue_request", "command_ack"]
GATEWAY_SENDS = ["login_result", "route", "reveal_grant", "reveal_denied", "seal", "preissue",
                 "command", "print_job", "print_status", "error"]

_ints = st.one_of(st.integers(0, 10), st.integers(0, 2**64 - 1), st.sampled_from([1, 2, 3, 6, 7, 9]))
_texts = st.one_of(st.text(max_size=40), st.sampled_from(["", "VP0000001103", "VP0000009000", "C-112",
                                                         "x" * 300, "樣例", "R-07", "R-09"]))
_bytes = st.one_of(st.binary(max_size=24), st.just(b"\0" * 8))


class Pools:
    """Values that exist in the depot, so fuzzed fields hit real rows."""

    def __init__(self, depot: Depot) -> None:
        self.depot = depot

    def session(self) -> st.SearchStrategy[bytes]:
        return st.one_of(st.just(bytes.fromhex(self.depot.session)), _bytes)

    def tracking(self) -> st.SearchStrategy[str]:
        return st.one_of(st.sampled_from(self.depot.route + self.depot.other[:2]), _texts)

    def label(self) -> st.SearchStrategy[bytes]:
        return st.one_of(st.sampled_from(list(self.depot.labels.values())), _bytes)

    def cti(self) -> st.SearchStrategy[bytes]:
        # Fixed when the pools are made: a strategy must not change under hypothesis.
        if not hasattr(self, "_ctis"):
            self._ctis = [bytes(r[0]) for r in self.depot.home.store.all("SELECT cti FROM tokens ORDER BY cti"
                                                                          " LIMIT 20")]
        return st.one_of(st.sampled_from(self._ctis), _bytes) if self._ctis else _bytes


def _value(pools: Pools, name: str, spec: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    kind = spec[1]
    if name == "session":
        return pools.session()
    if name in ("tracking_no",):
        return pools.tracking()
    if name == "cti":
        return pools.cti()
    if name == "label":
        return pools.label()
    if name == "badge":
        return st.sampled_from(["C-112", "C-200", "nobody", ""])
    if name == "pin_proof":
        return st.sampled_from([b"4321", b"0000", b"", b"\xff" * 40])
    if kind == "uint":
        return _ints
    if kind == "int":
        return st.integers(-(2**63), 2**63)
    if kind == "text":
        return _texts
    if kind == "bytes":
        return _bytes
    if kind == "bool":
        return st.booleans()
    if kind == "field":
        return st.integers(0, 5)
    if kind == "list":
        item = spec[3] if len(spec) > 3 else "any"
        if item == "field":
            return st.lists(st.integers(0, 5), max_size=5)
        if item == "text":
            return st.lists(pools.tracking(), max_size=4)
        if item == "bytes" and name == "items":
            return st.lists(st.builds(lambda t: messages.encode("scan", {
                "t": 1_900_000_000, "tracking_no": t, "session": bytes.fromhex(pools.depot.session)}),
                pools.tracking()), max_size=3)
        return st.lists(_bytes, max_size=3)
    if kind == "map":
        return st.dictionaries(st.integers(0, 5), _ints, max_size=3)
    return st.none()


@st.composite
def catalogue_message(draw: Any, pools: Pools) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(DEVICE_SENDS * 3 + GATEWAY_SENDS))
    specs: dict[str, Any] = messages.CATALOGUE[name][1]  # type: ignore[assignment]
    fields: dict[str, Any] = {"t": draw(st.sampled_from([1_900_000_000, 0, 2**40]))}
    for field, spec in specs.items():
        if spec[2] or draw(st.booleans()):
            fields[field] = draw(_value(pools, field, spec))
    return name, fields


def _check_store(depot: Depot) -> None:
    home = depot.home
    verdict = audit.verify(home.store, home.keys.public_key())
    assert verdict.ok, verdict.problem
    orphans = home.store.one("SELECT COUNT(*) FROM tokens t LEFT JOIN audit a ON a.seq = t.audit_seq"
                             " WHERE a.seq IS NULL OR a.outcome <> 'granted'")
    assert orphans is not None and orphans[0] == 0, "a token without its granted audit entry"
    for row in home.store.all("SELECT actor, device, parcel, detail FROM audit"):
        assert leaks(repr(row).encode()) == [], row


def _check_store(depot: Depot) -> None:
    home = depot.home
    verdict = audit.verify(home.store, home.keys.public_key())
    assert verdict.ok, verdict.problem
    orphans = home.store.one("SELECT COUNT(*) FROM tokens t LEFT JOIN audit a ON a.seq = t.audit_seq"
                             " WHERE a.seq IS NULL OR a.outcome <> 'granted'")
    assert orphans is not None and orphans[0] == 0, "a token without its granted audit entry"
    unledgered = home.store.one("SELECT COUNT(*) FROM tokens t WHERE NOT EXISTS (SELECT 1 FROM releases r"
                                " WHERE r.tracking_no = t.tracking_no AND r.account = t.courier_id)")
    assert unledgered is not None and unledgered[0] == 0, "a token without its ledger rows"
    for row in home.store.all("SELECT actor, device, parcel, detail FROM audit"):
        assert leaks(repr(row).encode()) == [], row


def _fuzz_depot(depot: Depot) -> None:
    depot.labels = {t: depot.label(t) for t in depot.route}  # type: ignore[attr-defined]
    for t in depot.route:
        depot.scan(t)
    for t in depot.route[:2]:  # tokens really issued, for token_use to name
        assert depot.reveal(t, (2,)).decision.granted


@pytest.mark.slow
def test_fuzzed_messages_get_clear_errors_and_keep_the_store_whole(depot: Depot) -> None:
    _fuzz_depot(depot)
    wire = Wire(depot.home, "HH-1", depot.secret, clock=lambda: depot.now)
    pools = Pools(depot)
    findings: list[str] = []
    reached: dict[str, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(data=st.data())
    def one(data: Any) -> None:
        name, fields = data.draw(catalogue_message(pools))
        try:
            name, fields = messages.decode(messages.encode(name, fields))
        except ProtocolError:
            return  # the decoder refuses it before any handler sees it (fuzzed in test_cbor_fuzz)
        home = depot.home
        reached[name] = reached.get(name, 0) + 1
        # Keep the account usable so later examples reach the deep paths.
        home.store.run("UPDATE couriers SET state = 'active'")
        home.store.run("UPDATE devices SET state = 'active'")
        home.store.run("UPDATE incident_holds SET state = 'lifted'")
        replies = wire.send(name, fields, depot.now)
        assert wire.last.committed
        for reply_name, f in replies:
            assert reply_name in messages.CATALOGUE
            if reply_name == "error" and f["code"] == INTERNAL:
                findings.append("%s %r -> internal error" % (name, fields))
        _check_store(depot)

    one()
    assert findings == [], "\n".join(findings[:5])
    # The campaign reached the handlers, not only the decoder.
    assert sum(reached.values()) >= EXAMPLES // 3, reached
    print("handled:", sorted(reached.items()))


def _malformed(rng: random.Random, seeds: list[bytes]) -> bytes:
    """A plaintext that is no valid message."""
    pick = rng.random()
    if pick < 0.2:
        return rng.randbytes(rng.randrange(0, 48))
    if pick < 0.5:
        b = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
        return bytes(b)
    if pick < 0.65:
        seed = rng.choice(seeds)
        return seed[:rng.randrange(len(seed))]
    if pick < 0.8:
        return bytes([rng.choice([0xa1, 0xa2, 0xa3, 0xbf, 0x9f, 0xd8])]) + rng.randbytes(rng.randrange(1, 12))
    body: dict[Any, Any] = {0: rng.choice([0, 7, 8, 13, 15, 21, 99, 255, 2**32]), 1: rng.randrange(2**33)}
    for _ in range(rng.randrange(4)):
        body[rng.randrange(2, 9)] = rng.choice([-1, 2**64 - 1, "", "VP" * 40, b"\0", [], {}, [None], None,
                                                True])
    return cbor.dumps(body)


@pytest.mark.slow
def test_authenticated_malformed_plaintext_gets_intended_errors_only_and_costs_others_nothing(
        depot: Depot) -> None:
    _fuzz_depot(depot)
    registry.add_courier(depot.home.store, "C-300", "3333", "D-1", "00:00-24:00")
    secret = registry.add_device(depot.home.store, depot.home.keys.kek, "HH-2", "test")
    registry.set_device_state(depot.home.store, "HH-2", "active")
    depot.home.store.run("UPDATE routes SET courier_id = 'C-300' WHERE route_id = 'R-09'")
    attacker = Wire(depot.home, "HH-1", depot.secret, clock=lambda: depot.now)
    honest = Wire(depot.home, "HH-2", secret, clock=lambda: depot.now)
    honest.handlers = attacker.handlers  # one gateway: both devices in every batch
    assert honest.login("C-300", "3333", depot.now)["ok"]
    session = bytes.fromhex(depot.session)
    seeds = [messages.encode(name, f, int(depot.now)) for name, f in (
        ("scan", {"tracking_no": depot.route[0], "session": session, "label": depot.labels[depot.route[0]]}),
        ("reveal_request", {"req": 1, "tracking_no": depot.route[0], "fields": [1, 2], "reason": 1,
                            "session": session}),
        ("batch", {"items": [b"\xa1\x00"], "ids": [3]}),
        ("preissue_request", {"session": session, "tracking_nos": depot.route[:2], "fields": [2]}),
        ("delivered", {"tracking_no": depot.route[1], "session": session, "proof": b"123456", "kind": 3}),
    )]
    released = depot.home.store.one("SELECT COUNT(*) FROM releases")[0]
    rng = random.Random(0xF00D)
    per_batch, sent, codes = 250, 0, {}
    while sent < PLAINTEXTS:
        batch = []
        for _ in range(per_batch):
            plaintext = _malformed(rng, seeds)
            try:
                messages.decode(plaintext)
                continue  # by chance a valid message: not what this campaign is about
            except ProtocolError:
                pass
            batch.append(("HH-1", attacker.channel.seal(plaintext)))
        good = honest.channel.wrap("route_request", {"session": honest.session}, int(depot.now))
        batch.insert(rng.randrange(len(batch) + 1), ("HH-2", good))
        replies = honest.batch(batch, depot.now)
        assert honest.last.committed
        assert [name for name, _f in replies] == ["route"], replies  # the honest device's answer
        for r in honest.last.replies:
            if r.device_id == "HH-1":
                assert r.name == "error" and r.fields["code"] in (MALFORMED, UNKNOWN_MESSAGE), r
                codes[r.fields["code"]] = codes.get(r.fields["code"], 0) + 1
        sent += len(batch) - 1
    _check_store(depot)
    assert depot.home.store.one("SELECT COUNT(*) FROM releases")[0] == released  # garbage released nothing
    print("%d authenticated malformed plaintexts: %s" % (sent, codes))


def test_mutated_and_random_sealed_payloads_raise_only_protocol_error(depot: Depot) -> None:
    aead = CryptographyAEAD()
    device = Channel(depot.secret, "HH-1", HANDHELD, aead=aead)
    handlers = Handlers(depot.home, clock=lambda: depot.now)
    handlers.begin()
    with depot.home.store.transaction() as tx:
        gateway_end = handlers.channel(tx, "HH-1")
    assert gateway_end is not None
    seeds = [device.wrap("scan", {"tracking_no": depot.route[0], "session": bytes.fromhex(depot.session)},
                         int(depot.now)) for _ in range(4)]
    rng = random.Random(0x5CA1E)
    opened = 0
    for n in range(BYTES_ITERATIONS):
        if n % 5 == 0:
            data = rng.randbytes(rng.randrange(64))
        else:
            b = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
            data = bytes(b)
        try:
            gateway_end.unwrap(data, depot.now)
            opened += 1
        except ProtocolError:
            pass
    # A flipped bit inside a COSE_Encrypt0 never opens: the tag covers it.
    assert opened <= 4
