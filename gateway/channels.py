"""Each device's channel as the gateway holds it: made from the device's
secret (unwrapped through the key provider), cached, its replay window
re-read from the row at a batch's first message and saved in the batch's
commit, and its down-direction sequence numbers reserved ahead in the
store, so that a reply can be sealed even when the store cannot be written
(a restart never reuses a nonce). Key rotation (gateway/rotation.py) swaps
a device's channel through `adopt`."""

from __future__ import annotations

import json
from typing import Any

from gateway import registry
from gateway.aead import CryptographyAEAD
from gateway.home import Home
from gateway.replies import Msg
from gateway.rotation import KeyRotation
from gateway.store import Handle
from protocol.errors import REVOKED, ProtocolError
from protocol.replay import ReplayWindow
from protocol.session import GATEWAY, REPLAY_WINDOW, Channel

SEQ_BLOCK = 1024  # down-direction sequence numbers reserved per database write
SHARED_SEQ_BLOCK = 8  # per device and batch when gateways share the store
_AEAD = CryptographyAEAD(cache_size=4096)


class Unsendable(Exception):
    """No sequence number is reserved for this reply and none can be reserved now."""


class Channels:
    def __init__(self, home: Home) -> None:
        self.home = home
        self._channels: dict[str, Channel] = {}
        self._reserved: dict[str, int] = {}
        self._row_seq: dict[str, int] = {}  # down_seq as this batch's transaction read it
        self._shared = bool(getattr(home.store, "shared", False))
        self._touched: set[str] = set()
        self._keys: dict[str, bytes] = {}  # the wrapped secret each cached channel was made from
        self.rotation = KeyRotation(home, _AEAD, self.adopt)

    def cached(self, device_id: str) -> Channel:
        """The channel a message of this batch was opened with."""
        return self._channels[device_id]

    def begin(self) -> None:
        self._touched = set()

    def get(self, tx: Handle, device_id: str) -> Channel | None:
        """The device's channel, or None for an unknown device; a revoked
        device raises (its messages are dropped, never answered)."""
        row = tx.one("SELECT state, up_window, down_seq, secret_wrapped FROM devices WHERE device_id = ?",
                     device_id)
        if row is None:
            return None
        if row[0] == "revoked":
            self._channels.pop(device_id, None)
            raise ProtocolError("device " + device_id + " is revoked", -1, REVOKED)
        ch = self._channels.get(device_id)
        if ch is not None and self._keys.get(device_id) != bytes(row[3]):
            ch = None  # a key rotation completed (by another gateway, or rolled back here)
            self.rotation.forget(device_id)
        if ch is None:
            self._keys[device_id] = bytes(row[3])
            secret = registry.device_secret(tx, self.home.keys.kek, device_id)
            if secret is None:
                return None
            window = ReplayWindow.from_state(json.loads(row[1])) if row[1] else None
            ch = Channel(secret, device_id, GATEWAY, aead=_AEAD, send_seq=int(row[2]), replay=window)
            self._channels[device_id] = ch
            self._reserved[device_id] = int(row[2])
        elif device_id not in self._touched:
            # The row is the truth: another gateway may have moved the window,
            # or a failed commit left ours ahead of it.
            ch.replay = ReplayWindow.from_state(json.loads(row[1])) if row[1] else ReplayWindow(REPLAY_WINDOW)
        if device_id not in self._touched:
            self._row_seq[device_id] = int(row[2])
        self._touched.add(device_id)
        return ch

    def save_windows(self, tx: Handle) -> None:
        """In the batch commit: the replay windows, and enough reserved
        sequence numbers that replies (even "unavailable" ones after a
        failed commit) never need a write of their own."""
        for device_id in self._touched:
            ch = self._channels.get(device_id)
            if ch is None:
                continue
            if self._shared:
                # Reserve this batch's reply numbers in its own commit, after any
                # other gateway's: the device sees them in commit order.
                ch.send_seq = max(ch.send_seq, self._row_seq.get(device_id, 0))
                self._reserved[device_id] = ch.send_seq + SHARED_SEQ_BLOCK
                tx.run("UPDATE devices SET up_window = ?, down_seq = ? WHERE device_id = ?",
                       json.dumps(ch.replay.state()), self._reserved[device_id], device_id)
            elif self._reserved.get(device_id, 0) - ch.send_seq < SEQ_BLOCK // 2:
                self._reserved[device_id] = ch.send_seq + SEQ_BLOCK
                tx.run("UPDATE devices SET up_window = ?, down_seq = ? WHERE device_id = ?",
                       json.dumps(ch.replay.state()), self._reserved[device_id], device_id)
            else:
                tx.run("UPDATE devices SET up_window = ? WHERE device_id = ?",
                       json.dumps(ch.replay.state()), device_id)

    def after_failed_commit(self) -> None:
        """Nothing of the batch was committed. Channels stay (their reserved
        numbers are still ours); windows and keys are re-read from the row."""
        for device_id in self._touched:
            self.rotation.forget(device_id)
        self._touched = set()
        self.rotation.rotated = []

    def adopt(self, device_id: str, ch: Channel, wrapped: bytes) -> Channel | None:
        """A completed key rotation: `ch` is the device's channel from now on;
        returns the one it replaces."""
        old = self._channels.get(device_id)
        self._keys[device_id] = wrapped
        self._channels[device_id] = ch
        self._reserved[device_id] = 0
        self._row_seq[device_id] = 0
        return old

    def unwrap(self, tx: Handle, device_id: str, ch: Channel, payload: bytes,
               now: float) -> tuple[str, Msg, int]:
        return self.rotation.unwrap(tx, device_id, ch, payload, now)

    def seal_reply(self, device_id: str, name: str, fields: dict[str, Any], now: float,
                   reserve: bool = True) -> bytes:
        """The reply's bytes under the device's channel. With `reserve` false
        (the store cannot be written) only numbers already reserved are used."""
        ch = self._channels.get(device_id)
        if ch is None:
            if not reserve:
                raise Unsendable("no channel for %s without reading the store" % device_id)
            with self.home.store.transaction() as tx:
                ch = self.get(tx, device_id)
            if ch is None:
                raise Unsendable("no device " + device_id)
        if ch.send_seq >= self._reserved.get(device_id, 0):
            if not reserve:
                raise Unsendable("no sequence number reserved for %s" % device_id)
            # Reserve ahead before using: a restart never reuses a nonce. The
            # reservation starts after any other gateway's; gateways sharing a
            # store reserve one at a time so the device's 32-wide window takes both.
            block = 1 if self._shared else SEQ_BLOCK
            with self.home.store.transaction() as tx:
                row = tx.one("SELECT down_seq FROM devices WHERE device_id = ?", device_id)
                ch.send_seq = max(ch.send_seq, int(row[0]) if row else 0)
                tx.run("UPDATE devices SET down_seq = ? WHERE device_id = ?", ch.send_seq + block, device_id)
            self._reserved[device_id] = ch.send_seq + block
        return bytes(ch.wrap(name, fields, int(now)))

