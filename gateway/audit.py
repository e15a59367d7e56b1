"""The audit log: append-only and hash-chained. Each entry's hash covers its
fields and the previous entry's hash, so altering, removing or reordering an
entry breaks the chain at that entry; Ed25519-signed checkpoints pin the head
so cutting off the tail shows too. People appear only as HMACs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.store import Handle, Store
from protocol.errors import StoreError

GENESIS = b"\0" * 32


class AuditUnavailable(StoreError):
    """The audit entry could not be written; whatever needed it is denied."""


def entry_hash(prev: bytes, seq: int, at: float, actor: str, device: str, action: str,
               parcel: str, outcome: str, detail: str) -> bytes:
    body = json.dumps([seq, at, actor, device, action, parcel, outcome, detail],
                      ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(prev + body.encode()).digest()


def _checkpoint_message(seq: int, digest: bytes) -> bytes:
    return b"veilpost-audit-checkpoint/v1" + seq.to_bytes(8, "big") + digest


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
               parcel: str = "", outcome: str = "ok", detail: str = "") -> int:
        """Add one entry inside the caller's transaction; returns its sequence number."""
        # The tail is read once per transaction: the transaction holds the write lock.
        if self._tail is not None and self._tail[0] is tx:
            seq, prev = self._tail[1] + 1, self._tail[2]
        else:
            last = tx.one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, bytes(last[1]))
        digest = entry_hash(prev, seq, at, actor, device, action, parcel, outcome, detail)
        tx.run(
            "INSERT INTO audit (seq, at, actor, device, action, parcel, outcome, detail, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            seq, at, actor, device, action, parcel, outcome, detail, prev, digest,
        )
        self._tail = (tx, seq, digest)
        if self._signing and seq % self.checkpoint_every == 0:
            self._sign(tx, seq, digest, at)
        return seq

    def forget_tail(self) -> None:
        """Call after rolling back to a savepoint: the cached tail may be gone."""
        self._tail = None

    def checkpoint(self, tx: Handle, now: float) -> int | None:
        """Sign the current head (called periodically and on shutdown)."""
        last = tx.one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        if last is None or not self._signing:
            return None
        seq = int(last[0])
        if tx.one("SELECT 1 FROM checkpoints WHERE seq = ?", seq) is None:
            self._sign(tx, seq, bytes(last[1]), now)
        return seq

    def _sign(self, tx: Handle, seq: int, digest: bytes, at: float) -> None:
        signature = self._keys.sign(_checkpoint_message(seq, digest))
        tx.run("INSERT INTO checkpoints (seq, hash, at, signature) VALUES (?, ?, ?, ?)",
               seq, digest, at, signature)


@dataclass
class Verdict:
    ok: bool
    entries: int
    checkpoints: int
    first_bad: int | None = None
    problem: str = ""


def _rows(store: Store, batch: int = 5000) -> Iterator[tuple]:
    after = 0
    while True:
        rows = store.all(
            "SELECT seq, at, actor, device, action, parcel, outcome, detail, prev_hash, hash"
            " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, batch)
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def verify(store: Store, public_key: Ed25519PublicKey) -> Verdict:
    """Walk the whole chain; the verdict names the first entry that is wrong."""
    prev, expected, count = GENESIS, 1, 0
    hashes: dict[int, bytes] = {}
    checkpoints = store.all("SELECT seq, hash, signature FROM checkpoints ORDER BY seq")
    wanted = {int(c[0]) for c in checkpoints}
    for row in _rows(store):
        seq = int(row[0])
        if seq != expected:
            return Verdict(False, count, len(checkpoints), expected,
                           "entry %d is missing (next entry found is %d)" % (expected, seq))
        if bytes(row[8]) != prev:
            return Verdict(False, count, len(checkpoints), seq,
                           "entry %d does not follow entry %d (previous hash differs)" % (seq, seq - 1))
        digest = entry_hash(prev, seq, row[1], row[2], row[3], row[4], row[5], row[6], row[7])
        if digest != bytes(row[9]):
            return Verdict(False, count, len(checkpoints), seq, "entry %d has been altered" % seq)
        if seq in wanted:
            hashes[seq] = digest
        prev, expected, count = digest, expected + 1, count + 1
    for seq, digest, signature in checkpoints:
        seq = int(seq)
        try:
            public_key.verify(bytes(signature), _checkpoint_message(seq, bytes(digest)))
        except InvalidSignature:
            return Verdict(False, count, len(checkpoints), seq,
                           "checkpoint at entry %d has a bad signature" % seq)
        if seq not in hashes:
            return Verdict(False, count, len(checkpoints), expected,
                           "entries %d to %d were removed (signed checkpoint at %d)" % (expected, seq, seq))
        if hashes[seq] != bytes(digest):
            return Verdict(False, count, len(checkpoints), seq,
                           "entry %d differs from its signed checkpoint" % seq)
    return Verdict(True, count, len(checkpoints))


def export(store: Store, out: IO[str]) -> int:
    """Write every entry as one JSON object per line; returns how many."""
    n = 0
    for row in _rows(store):
        out.write(json.dumps({
            "seq": row[0], "at": row[1], "actor": row[2], "device": row[3], "action": row[4],
            "parcel": row[5], "outcome": row[6], "detail": row[7],
            "prev_hash": bytes(row[8]).hex(), "hash": bytes(row[9]).hex(),
        }, ensure_ascii=False) + "\n")
        n += 1
    return n
