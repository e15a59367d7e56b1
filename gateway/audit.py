"""The audit log: append-only and hash-chained. Each entry's hash covers its
fields and the previous entry's hash, so altering, removing or reordering an
entry breaks the chain at that entry; Ed25519-signed checkpoints pin the head
so cutting off the tail shows too, and a witness outside the database
(gateway/witness.py) keeps the checkpoints it was sent, so a log rewritten
and re-signed with the gateway's own key still fails against it. People
appear only as HMACs.

An entry is a typed, versioned record (docs/audit.md). Version 2, written
now: integer milliseconds, a structured detail (a JSON object, stored as
canonical JSON text), hashed as one canonical CBOR map (RFC 8949 §4.2.1)
that names every field and the previous hash. Version 1 entries (float
seconds, free-text detail, a JSON array hashed) still verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.store import Handle, Store
from protocol.errors import StoreError

GENESIS = b"\0" * 32
VERSION = 2  # the entry schema written now
CHECKPOINT_VERSION = 2
Detail = Mapping[str, Any]
ENTRY_COLUMNS = "seq, at, actor, device, action, parcel, outcome, detail, prev_hash, hash, v, at_ms"


class AuditUnavailable(StoreError):
    """The audit entry could not be written; whatever needed it is denied."""


# ---- entries ------------------------------------------------------------------------


def entry_hash(prev: bytes, seq: int, at: float, actor: str, device: str, action: str,
               parcel: str, outcome: str, detail: str) -> bytes:
    """A version 1 entry's hash (entries written before version 2)."""
    body = json.dumps([seq, at, actor, device, action, parcel, outcome, detail],
                      ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(prev + body.encode()).digest()


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def detail_text(detail: Detail | str | None) -> str:
    """The stored form of a detail: canonical JSON of an object. A str from
    an older caller becomes {"text": ...}; bytes become hex."""
    if detail is None or detail == "":
        detail = {}
    elif isinstance(detail, str):
        detail = {"text": detail}
    if not isinstance(detail, Mapping):
        raise TypeError("an audit detail is a dict or a str, not %s" % type(detail).__name__)
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False, default=_json_value)


def record(prev: bytes, seq: int, at_ms: int, actor: str, device: str, action: str, parcel: str,
           outcome: str, detail: Any) -> dict[str, Any]:
    """A version 2 entry as the map that is hashed."""
    return {"v": VERSION, "seq": seq, "at": at_ms, "actor": actor, "device": device, "action": action,
            "parcel": parcel, "outcome": outcome, "detail": detail, "prev": prev}


def entry_hash_v2(prev: bytes, seq: int, at_ms: int, actor: str, device: str, action: str,
                  parcel: str, outcome: str, detail: Any) -> bytes:
    """A version 2 entry's hash: SHA-256 of its canonical CBOR map."""
    body = cbor2.dumps(record(prev, seq, at_ms, actor, device, action, parcel, outcome, detail),
                       canonical=True)
    return hashlib.sha256(body).digest()


def to_ms(at: float) -> int:
    return int(round(at * 1000))


# ---- checkpoints --------------------------------------------------------------------

MAX_CHECKPOINT = 512  # bytes of a checkpoint on the wire; anything bigger is refused


class BadCheckpoint(ValueError):
    """A checkpoint that is malformed, oversized or not signed by the gateway's key."""


def checkpoint_message(seq: int, head: bytes, at_ms: int) -> bytes:
    """What a version 2 checkpoint's signature covers."""
    return b"veilpost-audit-checkpoint/v2\n" + cbor2.dumps(
        {"v": CHECKPOINT_VERSION, "seq": seq, "head": head, "at": at_ms}, canonical=True)


def _checkpoint_message_v1(seq: int, digest: bytes) -> bytes:
    return b"veilpost-audit-checkpoint/v1" + seq.to_bytes(8, "big") + digest


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that entry `seq` of the log had hash `head` at `at_ms`."""

    seq: int
    head: bytes
    at_ms: int
    signature: bytes
    v: int = CHECKPOINT_VERSION

    def message(self) -> bytes:
        if self.v == 1:
            return _checkpoint_message_v1(self.seq, self.head)
        return checkpoint_message(self.seq, self.head, self.at_ms)

    def valid(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.message())
        except InvalidSignature:
            return False
        return True

    def to_wire(self) -> bytes:
        """The checkpoint as published and POSTed: one canonical CBOR map."""
        return cbor2.dumps({"v": self.v, "seq": self.seq, "head": self.head, "at": self.at_ms,
                            "sig": self.signature}, canonical=True)

    @classmethod
    def from_wire(cls, data: bytes) -> Checkpoint:
        if len(data) > MAX_CHECKPOINT:
            raise BadCheckpoint("checkpoint of %d bytes (at most %d)" % (len(data), MAX_CHECKPOINT))
        try:
            m = cbor2.loads(data)
        except Exception as e:  # cbor2 raises several kinds on garbage
            raise BadCheckpoint("checkpoint is not CBOR: %s" % e) from None
        return cls.from_map(m)

    @classmethod
    def from_map(cls, m: Any) -> Checkpoint:
        if not isinstance(m, dict):
            raise BadCheckpoint("checkpoint is not a map")
        seq, head, at, sig, v = m.get("seq"), m.get("head"), m.get("at"), m.get("sig"), m.get("v")
        if v != CHECKPOINT_VERSION:
            raise BadCheckpoint("checkpoint version %r is not %d" % (v, CHECKPOINT_VERSION))
        if not (isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq < 2**63):
            raise BadCheckpoint("checkpoint seq must be a positive integer")
        if not (isinstance(head, bytes) and len(head) == 32):
            raise BadCheckpoint("checkpoint head must be 32 bytes")
        if not (isinstance(at, int) and not isinstance(at, bool) and 0 <= at < 2**63):
            raise BadCheckpoint("checkpoint time must be integer milliseconds")
        if not (isinstance(sig, bytes) and len(sig) == 64):
            raise BadCheckpoint("checkpoint signature must be 64 bytes")
        return cls(seq, head, at, sig, v)

    def to_json(self) -> dict[str, Any]:
        return {"v": self.v, "seq": self.seq, "head": self.head.hex(), "at": self.at_ms,
                "sig": self.signature.hex()}

    @classmethod
    def from_json(cls, m: Any) -> Checkpoint:
        if not isinstance(m, dict):
            raise BadCheckpoint("checkpoint is not an object")
        try:
            return cls.from_map({**m, "head": bytes.fromhex(str(m.get("head"))),
                                 "sig": bytes.fromhex(str(m.get("sig")))})
        except ValueError as e:
            if isinstance(e, BadCheckpoint):
                raise
            raise BadCheckpoint("checkpoint head or signature is not hex") from None


def latest_checkpoint(store: Store | Handle) -> Checkpoint | None:
    """The newest version 2 checkpoint in the gateway's own table."""
    row = store.one("SELECT seq, hash, at_ms, signature FROM checkpoints WHERE v = 2"
                    " ORDER BY seq DESC LIMIT 1")
    if row is None:
        return None
    return Checkpoint(int(row[0]), bytes(row[1]), int(row[2]), bytes(row[3]))


class AuditKeys(Protocol):
    """What the log needs of the gateway's keys (gateway/keys.py): a
    signature for checkpoints and an HMAC for people's identifiers."""

    def sign(self, message: bytes) -> bytes: ...

    def person_mac(self, data: bytes) -> bytes: ...


class AuditLog:
    def __init__(self, keys: AuditKeys, sign_checkpoints: bool = True,
                 checkpoint_every: int = 256) -> None:
        self._keys = keys
        self._signing = sign_checkpoints
        self.checkpoint_every = checkpoint_every
        self._people: dict[str, str] = {}
        self._tail: tuple[object, int, bytes] | None = None  # (transaction, seq, hash)

    def person(self, kind: str, ident: str) -> str:
        """A stable pseudonym for a person (courier, officer) in the log."""
        key = kind + ":" + ident
        pseudonym = self._people.get(key)
        if pseudonym is None:
            mac = self._keys.person_mac(key.encode()).hex()
            if len(self._people) > 100_000:
                self._people.clear()
            pseudonym = self._people[key] = kind + ":" + mac[:24]
        return pseudonym

    def append(self, tx: Handle, at: float, actor: str, device: str, action: str,
               parcel: str = "", outcome: str = "ok", detail: Detail | str = "") -> int:
        """Add one entry inside the caller's transaction; returns its sequence
        number. `detail` is a dict (a str is kept as {"text": ...})."""
        # The tail is read once per transaction: the transaction holds the write lock.
        if self._tail is not None and self._tail[0] is tx:
            seq, prev = self._tail[1] + 1, self._tail[2]
        else:
            last = tx.one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, bytes(last[1]))
        text = detail_text(detail)
        at_ms = to_ms(at)
        digest = entry_hash_v2(prev, seq, at_ms, actor, device, action, parcel, outcome, json.loads(text))
        tx.run(
            "INSERT INTO audit (seq, at, actor, device, action, parcel, outcome, detail, prev_hash, hash,"
            " v, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            seq, at_ms / 1000, actor, device, action, parcel, outcome, text, prev, digest, VERSION, at_ms,
        )
        self._tail = (tx, seq, digest)
        if self._signing and seq % self.checkpoint_every == 0:
            self._sign(tx, seq, digest, at)
        return seq

    def forget_tail(self) -> None:
        """Call after rolling back to a savepoint: the cached tail may be gone."""
        self._tail = None

    def checkpoint(self, tx: Handle, now: float) -> Checkpoint | None:
        """Sign the current head (called periodically and on shutdown); the
        newest checkpoint, new or already signed (None: an empty log)."""
        last = tx.one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        if last is None or not self._signing:
            return None
        seq = int(last[0])
        row = tx.one("SELECT seq, hash, at_ms, signature, v FROM checkpoints WHERE seq = ?", seq)
        if row is not None and int(row[4]) == CHECKPOINT_VERSION:
            return Checkpoint(int(row[0]), bytes(row[1]), int(row[2]), bytes(row[3]))
        if row is not None:  # a version 1 checkpoint of the same head: sign it again as version 2
            tx.run("DELETE FROM checkpoints WHERE seq = ?", seq)
        return self._sign(tx, seq, bytes(last[1]), now)

    def _sign(self, tx: Handle, seq: int, digest: bytes, at: float) -> Checkpoint:
        at_ms = to_ms(at)
        signature = self._keys.sign(checkpoint_message(seq, digest, at_ms))
        # Several gateways on one store may sign the same head: the first stays.
        tx.run("INSERT INTO checkpoints (seq, hash, at, signature, v, at_ms) VALUES (?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (seq) DO NOTHING",
               seq, digest, at_ms / 1000, signature, CHECKPOINT_VERSION, at_ms)
        return Checkpoint(seq, digest, at_ms, signature)


# ---- verification -------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    entries: int
    checkpoints: int
    first_bad: int | None = None
    problem: str = ""
    witnessed: int = 0  # checkpoints held by the witness, all checked
    bad_checkpoint: int | None = None  # the first witnessed checkpoint missing or altered
    versions: dict[int, int] = field(default_factory=dict)  # entries per schema version


def rows(store: Store, batch: int = 5000, after: int = 0) -> Iterator[tuple[Any, ...]]:
    """Every entry in sequence order, as ENTRY_COLUMNS."""
    while True:
        found = store.all("SELECT " + ENTRY_COLUMNS + " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                          after, batch)
        if not found:
            return
        yield from found
        after = found[-1][0]


def row_hash(row: tuple[Any, ...], prev: bytes) -> bytes | None:
    """The hash an entry row should have after `prev` (None: unreadable, so altered)."""
    seq, at, actor, device, action, parcel, outcome, detail = row[:8]
    if int(row[10] or 1) == 1:
        return entry_hash(prev, int(seq), at, actor, device, action, parcel, outcome, detail)
    at_ms = row[11]
    if at_ms is None or to_ms(float(at)) != int(at_ms):
        return None  # the seconds column no longer says the hashed time
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    return entry_hash_v2(prev, int(seq), int(at_ms), actor, device, action, parcel, outcome, value)


def _when(at_ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_ms / 1000))


def verify(store: Store, public_key: Ed25519PublicKey,
           witnessed: list[Checkpoint] | None = None) -> Verdict:
    """Walk the whole chain; the verdict names the first entry that is wrong
    and, given the witness's checkpoints, the first of them that the log no
    longer holds (missing) or holds differently (altered)."""
    prev, expected, count = GENESIS, 1, 0
    hashes: dict[int, bytes] = {}
    own = [Checkpoint(int(c[0]), bytes(c[1]), int(c[2] or 0), bytes(c[3]), int(c[4] or 1))
           for c in store.all("SELECT seq, hash, at_ms, signature, v FROM checkpoints ORDER BY seq")]
    witnessed = sorted(witnessed or [], key=lambda c: c.seq)
    wanted = {c.seq for c in own} | {c.seq for c in witnessed}
    verdict = Verdict(True, 0, len(own), witnessed=len(witnessed))
    versions = verdict.versions
    for row in rows(store):
        seq = int(row[0])
        if seq != expected:
            verdict.ok, verdict.first_bad = False, expected
            verdict.problem = "entry %d is missing (next entry found is %d)" % (expected, seq)
            break
        if bytes(row[8]) != prev:
            verdict.ok, verdict.first_bad = False, seq
            verdict.problem = "entry %d does not follow entry %d (previous hash differs)" % (seq, seq - 1)
            break
        digest = row_hash(row, prev)
        if digest is None or digest != bytes(row[9]):
            verdict.ok, verdict.first_bad = False, seq
            verdict.problem = "entry %d has been altered" % seq
            break
        if seq in wanted:
            hashes[seq] = digest
        v = int(row[10] or 1)
        versions[v] = versions.get(v, 0) + 1
        prev, expected, count = digest, expected + 1, count + 1
    verdict.entries = count
    if verdict.ok:
        _check_own(verdict, own, hashes, public_key, expected)
    _check_witnessed(verdict, witnessed, hashes, public_key, count)
    return verdict


def _check_own(verdict: Verdict, own: list[Checkpoint], hashes: dict[int, bytes],
               public_key: Ed25519PublicKey, expected: int) -> None:
    for c in own:
        if not c.valid(public_key):
            verdict.ok, verdict.first_bad = False, c.seq
            verdict.problem = "checkpoint at entry %d has a bad signature" % c.seq
            return
        if c.seq not in hashes:
            verdict.ok, verdict.first_bad = False, expected
            verdict.problem = ("entries %d to %d were removed (signed checkpoint at %d)"
                               % (expected, c.seq, c.seq))
            return
        if hashes[c.seq] != c.head:
            verdict.ok, verdict.first_bad = False, c.seq
            verdict.problem = "entry %d differs from its signed checkpoint" % c.seq
            return


def _check_witnessed(verdict: Verdict, witnessed: list[Checkpoint], hashes: dict[int, bytes],
                     public_key: Ed25519PublicKey, intact: int) -> None:
    for c in witnessed:
        if not c.valid(public_key):
            problem = "witnessed checkpoint at entry %d has a bad signature (another gateway's key?)" % c.seq
        elif c.seq > intact:
            problem = ("witnessed checkpoint at entry %d (%s) is missing: the log %s entry %d"
                       % (c.seq, _when(c.at_ms), "is intact only up to" if not verdict.ok else "ends at",
                          intact))
        elif hashes.get(c.seq) != c.head:
            problem = ("witnessed checkpoint at entry %d (%s) is altered: the log's entry %d is not the one"
                       " witnessed (rewritten)" % (c.seq, _when(c.at_ms), c.seq))
        else:
            continue
        verdict.bad_checkpoint = c.seq
        verdict.problem = problem if verdict.ok else verdict.problem + "; " + problem
        if verdict.first_bad is None:
            verdict.first_bad = min(c.seq, intact + 1)
        verdict.ok = False
        return

