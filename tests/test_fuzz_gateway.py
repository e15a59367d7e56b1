"""Fuzzing the gateway's message handlers with hypothesis.

Messages are drawn from the catalogue itself (every message a handheld may
send, and the ones it may not), with field values biased towards what makes
a handler go deep: the real session, tracking numbers on and off the route,
the cti of a token really issued, huge and empty values. Each one goes
through `Handlers.dispatch` the way the service runs it (inside a savepoint
of a batch transaction). What must hold after every message:

- a handler refuses with a ProtocolError (a clear error reply) or succeeds;
  any other exception is a finding;
- the audit chain verifies and every token has its `granted` audit entry;
- nothing personal reaches the audit log.

The CI run is small (about 20 s). A long campaign:
VEILPOST_FUZZ_EXAMPLES=200000 python3 -m pytest tests/test_fuzz_gateway.py
(hypothesis keeps its examples database, so a finding is replayed first).
Sealed payloads are fuzzed separately: mutated and random bytes through the
gateway's channel raise ProtocolError only.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import audit
from gateway.aead import CryptographyAEAD
from gateway.handlers import Handlers, Work
from protocol import messages
from protocol.errors import ProtocolError
from protocol.session import HANDHELD, Channel
from tests.fixtures.gateway import Depot, leaks

EXAMPLES = int(os.environ.get("VEILPOST_FUZZ_EXAMPLES", "1000"))
BYTES_ITERATIONS = int(os.environ.get("VEILPOST_FUZZ_ITERATIONS", "3000"))
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

    def cti(self) -> st.SearchStrategy[bytes]:
        rows = [bytes(r[0]) for r in self.depot.home.store.all("SELECT cti FROM tokens LIMIT 20")]
        return st.one_of(st.sampled_from(rows), _bytes) if rows else _bytes


def _value(pools: Pools, name: str, spec: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    kind = spec[1]
    if name == "session":
        return pools.session()
    if name in ("tracking_no",):
        return pools.tracking()
    if name == "cti":
        return pools.cti()
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
    verdict = audit.verify(home.store, home.keys.signing_key.public_key())
    assert verdict.ok, verdict.problem
    orphans = home.store.one("SELECT COUNT(*) FROM tokens t LEFT JOIN audit a ON a.seq = t.audit_seq"
                             " WHERE a.seq IS NULL OR a.outcome <> 'granted'")
    assert orphans is not None and orphans[0] == 0, "a token without its granted audit entry"
    for row in home.store.all("SELECT actor, device, parcel, detail FROM audit"):
        assert leaks(repr(row).encode()) == [], row


@pytest.mark.slow
def test_fuzzed_messages_get_clear_errors_and_keep_the_store_whole(depot: Depot) -> None:
    handlers = Handlers(depot.home, clock=lambda: depot.now)
    pools = Pools(depot)
    for t in depot.route:
        depot.scan(t)
    handlers.begin()
    with depot.home.store.transaction() as tx:  # the fuzzed device's channel, as a first message makes it
        handlers.channel(tx, "HH-1")
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
        work = Work()
        handlers.begin()
        with home.store.transaction() as tx:
            tx.run("SAVEPOINT msg")
            try:
                handlers.dispatch(tx, "HH-1", name, fields, depot.now, work)
                tx.run("RELEASE SAVEPOINT msg")
            except ProtocolError as e:
                tx.run("ROLLBACK TO SAVEPOINT msg")
                tx.run("RELEASE SAVEPOINT msg")
                assert e.message, "a refusal must say why"
                getattr(home.audit, "forget_tail", lambda: None)()
            except Exception as e:  # a finding: the service would answer "internal error"
                tx.run("ROLLBACK TO SAVEPOINT msg")
                tx.run("RELEASE SAVEPOINT msg")
                findings.append("%s %r -> %s: %s" % (name, fields, type(e).__name__, e))
            handlers.save_windows(tx)
        for reply in work.replies:
            assert reply.name in messages.CATALOGUE
        _check_store(depot)

    one()
    assert findings == [], "\n".join(findings[:5])
    # The campaign reached the handlers, not only the decoder.
    assert sum(reached.values()) >= EXAMPLES // 3, reached
    print("handled:", sorted(reached.items()))


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
