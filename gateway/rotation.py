"""Key rotation at the gateway (docs/wire.md, "Key rotation"). While a
device rotates, a message its current key cannot open is tried under the
next key (whose first use completes the rotation) or, for the grace period
after, the previous one, which from then on only receives. The config
command carrying the next key is sent once, retained, under the current key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway import registry
from gateway.aead import CryptographyAEAD
from gateway.home import Home
from gateway.logs import log_event
from gateway.replies import Msg, Reply
from gateway.store import Handle
from protocol import messages
from protocol.errors import ProtocolError
from protocol.replay import ReplayWindow
from protocol.session import GATEWAY, MAX_SEQ, Channel

# Installs a device's new channel made from this wrapped secret; returns the one it replaces.
Adopt = Callable[[str, Channel, bytes], "Channel | None"]


class KeyRotation:
    def __init__(self, home: Home, aead: CryptographyAEAD, adopt: Adopt) -> None:
        self.home = home
        self._aead = aead
        self._adopt = adopt
        self._spare: dict[str, Channel] = {}  # a rotating device's next or previous key
        self.rotated: list[str] = []  # devices that took their new key in this batch

    def forget(self, device_id: str) -> None:
        """The device's cached channel is gone: so is its spare."""
        self._spare.pop(device_id, None)

    def unwrap(self, tx: Handle, device_id: str, ch: Channel, payload: bytes,
               now: float) -> tuple[str, Msg, int]:
        """Open a message under the device's key; while it rotates, under the
        next key (which completes the rotation) or, for the grace period after,
        the previous one."""
        try:
            return ch.unwrap(payload, int(now))
        except ProtocolError as first:
            rot = registry.rotation(tx, device_id)
            if rot is None or (rot.pending and rot.next_wrapped is None) or \
                    (not rot.pending and (rot.prev_wrapped is None or now >= rot.switched + rot.grace)):
                raise first from None
            spare = self._spare_channel(device_id, rot)
            try:
                opened = spare.unwrap(payload, int(now))
            except ProtocolError:
                raise first from None
            if rot.pending:
                self._switch(tx, device_id, spare, now)
            else:
                tx.run("UPDATE key_rotations SET prev_window = ? WHERE device_id = ?",
                       json.dumps(spare.replay.state()), device_id)
            return opened

    def acknowledged(self, tx: Handle, device_id: str, command_id: int, now: float) -> None:
        """A command was acknowledged; if it was the rotation's config command,
        it came under the old key: everything after it comes under the new one."""
        rot = registry.rotation(tx, device_id)
        if rot is not None and rot.pending and rot.command_id == command_id and rot.next_wrapped:
            self._switch(tx, device_id, self._spare_channel(device_id, rot), now)

    def _spare_channel(self, device_id: str, rot: registry.Rotation) -> Channel:
        ch = self._spare.get(device_id)
        if ch is None:
            kek = self.home.keys.kek
            if rot.pending:  # a new key: nothing was ever sent or received under it
                ch = Channel(rot.next_secret(kek), device_id, GATEWAY, aead=self._aead)
            else:
                window = ReplayWindow.from_state(json.loads(rot.prev_window)) if rot.prev_window else None
                ch = Channel(rot.prev_secret(kek), device_id, GATEWAY, aead=self._aead, replay=window)
                ch.send_seq = MAX_SEQ + 1  # receive only: sealing under it raises
            self._spare[device_id] = ch
        return ch

    def _switch(self, tx: Handle, device_id: str, new: Channel, now: float) -> None:
        """The handheld holds the new key: make it the device's channel."""
        registry.complete_rotation(tx, device_id, json.dumps(new.replay.state()), now)
        row = tx.one("SELECT secret_wrapped FROM devices WHERE device_id = ?", device_id)
        self.home.audit.append(tx, now, "gateway", device_id, "key-rotation", "", "ok",
                               {"master_secret": "new"})
        new.send_seq = 0
        old = self._adopt(device_id, new, bytes(row[0]) if row else b"")
        self._spare.pop(device_id, None)
        if old is not None:
            old.send_seq = MAX_SEQ + 1  # receive only from now on: sealing under it raises
            self._spare[device_id] = old
        self.rotated.append(device_id)
        log_event("key-rotated", device=device_id)

    def commands(self, now: float) -> list[Reply]:
        """The config command for each rotation not yet sent, under the
        device's current key, retained so that an offline handheld finds it."""
        replies = []
        kek = self.home.keys.kek
        with self.home.store.transaction() as tx:
            registry.retire_old_secrets(tx, now)
            for rot in registry.rotations_to_send(tx):
                if tx.run("UPDATE key_rotations SET sent = ? WHERE device_id = ? AND sent IS NULL",
                          now, rot.device_id) == 0:
                    continue  # another gateway on a shared store sent it
                args: dict[str, Any] = {"master_secret": rot.next_secret(kek)}
                password = rot.password(kek)
                if password:
                    args["mqtt_password"] = password
                replies.append(Reply(rot.device_id, "command",
                                     {"id": rot.command_id, "cmd": messages.CMD_CONFIG, "args": args},
                                     retain=True))
        for device_id in {r.device_id for r in replies}:
            self._spare.pop(device_id, None)
        return replies

    def set_broker_password(self, device_id: str, admin: Any, clock: Callable[[], float]) -> None:
        """After the switch: the device's broker account takes its new password
        (which ends its session on the old one), when the gateway has an admin."""
        rot = registry.rotation(self.home.store, device_id)
        password = rot.password(self.home.keys.kek) if rot is not None else None
        if not password or admin is None:
            return
        try:
            admin.set_password(device_id, password)
        except Exception as e:
            log_event("key-rotation-password-failed", device=device_id, error=str(e))
            return
        self.home.store.run("UPDATE key_rotations SET password_set = ? WHERE device_id = ?", clock(),
                            device_id)
