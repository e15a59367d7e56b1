"""What the gateway does with each message a handheld sends. Every handler
runs inside the worker's batch transaction and appends its replies to the
batch; nothing is published before the commit. Channels are cached per
device; their replay windows are saved in the batch commit."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from gateway import metrics, registry, retention
from gateway.aead import CryptographyAEAD
from gateway.fastwire import GatewayChannel
from gateway.home import Home
from gateway.logs import log_event
from gateway.print_desk import PrintDesk
from gateway.replies import Msg, Reply, Work, forbidden
from gateway.reveal import RevealDesk, RevealRequest, shift_bounds
from gateway.rotation import KeyRotation
from gateway.store import Handle
from protocol import messages
from protocol.errors import FORBIDDEN, MALFORMED, REVOKED, UNKNOWN_MESSAGE, ProtocolError
from protocol.replay import ReplayWindow
from protocol.session import GATEWAY, REPLAY_WINDOW

SEQ_BLOCK = 1024  # down-direction sequence numbers reserved per database write
SHARED_SEQ_BLOCK = 8  # per device and batch when gateways share the store
CLOCK_TOLERANCE = 600  # a handheld clock further off than this is logged (docs/scale-out.md)
ROUTE_CHUNK = 40  # parcels per route message, to stay well under the CBOR size limit
MAX_FAILED_LOGINS = 5  # wrong PINs per badge (twice that per device) before a lockout
LOCKOUT_SECONDS = 900
_AEAD = CryptographyAEAD(cache_size=4096)
__all__ = ["CLOCK_TOLERANCE", "Handlers", "Msg", "Reply", "Work"]


class Handlers:
    def __init__(self, home: Home, clock: Callable[[], float] = time.time) -> None:
        self.home = home
        self.cfg = home.config
        self.clock = clock
        self.desk = RevealDesk(home.store, home.vault, home.audit, home.config, home.zone)
        self._channels: dict[str, GatewayChannel] = {}
        self._reserved: dict[str, int] = {}
        self._row_seq: dict[str, int] = {}  # down_seq as this batch's transaction read it
        self._shared = bool(getattr(home.store, "shared", False))
        self._touched: set[str] = set()
        self._keys: dict[str, bytes] = {}  # the wrapped secret each cached channel was made from
        self.rotation = KeyRotation(home, _AEAD, self.adopt)
        self.print_desk = PrintDesk(home)
        self.skew = 0  # the current message's device clock minus ours, in seconds

    # ---- channels

    def begin(self) -> None:
        self._touched = set()

    def channel(self, tx: Handle, device_id: str) -> GatewayChannel | None:
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
            ch = None  # another gateway on a shared store completed a key rotation
            self.rotation.forget(device_id)
        if ch is None:
            self._keys[device_id] = bytes(row[3])
            secret = registry.device_secret(tx, self.home.keys.kek, device_id)
            assert secret is not None
            window = ReplayWindow.from_state(json.loads(row[1])) if row[1] else None
            ch = GatewayChannel(secret, device_id, GATEWAY, aead=_AEAD, send_seq=int(row[2]), replay=window)
            self._channels[device_id] = ch
            self._reserved[device_id] = int(row[2])
        elif device_id not in self._touched:
            # Another gateway on a shared store may have moved the window: the row is the truth.
            ch.replay = ReplayWindow.from_state(json.loads(row[1])) if row[1] else ReplayWindow(REPLAY_WINDOW)
        if device_id not in self._touched:
            self._row_seq[device_id] = int(row[2])
        self._touched.add(device_id)
        return ch

    def save_windows(self, tx: Handle) -> None:
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
            else:
                tx.run("UPDATE devices SET up_window = ? WHERE device_id = ?",
                       json.dumps(ch.replay.state()), device_id)

    def forget_channels(self) -> None:
        """After a failed commit: reload these channels from the database."""
        for device_id in self._touched:
            self._channels.pop(device_id, None)
            self.rotation.forget(device_id)
        self.rotation.rotated = []

    def adopt(self, device_id: str, ch: GatewayChannel, wrapped: bytes) -> GatewayChannel | None:
        """A completed key rotation: `ch` is the device's channel from now on;
        returns the one it replaces."""
        old = self._channels.get(device_id)
        self._keys[device_id] = wrapped
        self._channels[device_id] = ch
        self._reserved[device_id] = 0
        self._row_seq[device_id] = 0
        return old

    def unwrap(self, tx: Handle, device_id: str, ch: GatewayChannel, payload: bytes,
               now: float) -> tuple[str, Msg, int]:
        return self.rotation.unwrap(tx, device_id, ch, payload, now)

    def seal_reply(self, device_id: str, name: str, fields: dict[str, Any], now: float) -> bytes:
        ch = self._channels.get(device_id)
        if ch is None:
            with self.home.store.transaction() as tx:
                ch = self.channel(tx, device_id)
            if ch is None:
                raise ProtocolError("no device " + device_id, -1, FORBIDDEN)
        fields = dict(fields)
        values = fields.pop("_values", None)
        if values is not None:
            fields["token"] = ch.seal_token(fields["tracking_no"], values, fields["cti"], fields["exp"])
        if ch.send_seq >= self._reserved.get(device_id, 0):
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

    # ---- dispatch

    def dispatch(self, tx: Handle, device_id: str, name: str, f: Msg, now: float,
                 work: Work, nested: bool = False) -> None:
        handler = getattr(self, "_on_" + name, None)
        if handler is None or (nested and name == "batch"):
            raise ProtocolError("a handheld does not send " + name, -1, UNKNOWN_MESSAGE)
        if not nested:
            # Device times are read on our clock, whatever the device's says.
            self.skew = int(f.get("t", now)) - int(now)
            if abs(self.skew) > CLOCK_TOLERANCE:
                log_event("clock-skew", device=device_id, seconds=self.skew)
        handler(tx, device_id, f, now, work)

    def _courier(self, tx: Handle, device_id: str, session: bytes) -> str:
        row = registry.session_on(tx, device_id)
        if row is None or row[0] != bytes(session).hex():
            raise forbidden("not logged in on device " + device_id)
        return row[1]

    def _on_hello(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        state = registry.device_state(tx, device_id)
        tx.run("UPDATE devices SET fw = ?, last_seen = ? WHERE device_id = ?", f["fw"][:32], now, device_id)
        if state == "provisioned":
            # The first message under its key proves the device holds its secret.
            registry.set_device_state(tx, device_id, "active")
            self.home.audit.append(tx, now, "gateway", device_id, "activate", "", "ok", "")

    def _on_login(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        badge = f["badge"]
        audit = self.home.audit
        actor = audit.person("courier", badge)
        state = registry.device_state(tx, device_id)
        pin = bytes(f["pin_proof"]).decode("utf-8", "replace")
        reason = ""
        since = now - LOCKOUT_SECONDS
        by_badge = tx.one("SELECT COUNT(*) FROM login_failures WHERE badge = ? AND at > ?", badge, since)
        by_device = tx.one("SELECT COUNT(*) FROM login_failures WHERE device_id = ? AND at > ?",
                           device_id, since)
        locked = (by_badge is not None and by_badge[0] >= MAX_FAILED_LOGINS) or \
            (by_device is not None and by_device[0] >= 2 * MAX_FAILED_LOGINS)
        if state != "active":
            reason = "device %s is %s" % (device_id, state)
        elif locked:
            reason = "too many wrong PINs: try again in %d minutes" % (LOCKOUT_SECONDS // 60)
        elif not registry.verify_pin(tx, badge, pin):
            reason = "badge or PIN is wrong"
            tx.run("INSERT INTO login_failures (badge, device_id, at) VALUES (?, ?, ?)",
                   badge[:64], device_id, now)
        elif registry.courier_state(tx, badge) != "active":
            reason = "courier %s is suspended" % badge
        if reason:
            audit.append(tx, now, actor, device_id, "login", "", "denied", reason.split(" ")[-1])
            work.replies.append(Reply(device_id, "login_result", {"ok": False, "reason": reason}))
            return
        session = bytes.fromhex(registry.login(tx, badge, device_id, now))
        tx.run("UPDATE devices SET last_seen = ? WHERE device_id = ?", now, device_id)
        shift = str(tx.one("SELECT shift FROM couriers WHERE courier_id = ?", badge)[0])  # type: ignore[index]
        shift_end = int(shift_bounds(shift, now, self.home.zone)[1])
        audit.append(tx, now, actor, device_id, "login", "", "ok", "")
        work.replies.append(Reply(device_id, "login_result", {
            "ok": True, "session": session, "courier": badge, "shift_end": shift_end}))

    def _on_logout(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        courier = self._courier(tx, device_id, f["session"])
        registry.logout(tx, device_id, now)
        self.home.audit.append(tx, now, self.home.audit.person("courier", courier), device_id, "logout")

    def _on_route_request(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        courier = self._courier(tx, device_id, f["session"])
        routes = [r[0] for r in tx.all("SELECT route_id FROM routes WHERE courier_id = ? AND state = 'active'"
                                       " ORDER BY route_id", courier)]
        if f.get("route"):
            if f["route"] not in routes:
                raise forbidden("route %s is not an active route of courier %s" % (f["route"], courier))
            routes = [f["route"]]
        for route in routes:
            rows = tx.all("SELECT tracking_no, masked_receiver_name, masked_receiver_phone,"
                          " masked_receiver_address, sort_code, window_start, window_end FROM parcels"
                          " WHERE route_id = ? AND state = 'out_for_delivery' ORDER BY tracking_no", route)
            parcels = [{"tracking_no": r[0], "name": r[1], "phone": r[2], "address": r[3], "sort_code": r[4],
                        "window_start": int(r[5]), "window_end": int(r[6])} for r in rows]
            for i in range(0, max(len(parcels), 1), ROUTE_CHUNK):
                work.replies.append(Reply(device_id, "route", {"route": route,
                                                               "parcels": parcels[i:i + ROUTE_CHUNK]}))
        self.home.audit.append(tx, now, self.home.audit.person("courier", courier), device_id,
                               "route", "", "ok", ",".join(routes))

    def _on_scan(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        self._courier(tx, device_id, f["session"])
        at = min(float(f.get("t", now)) - self.skew, now)
        tx.run("INSERT INTO scans (device_id, tracking_no, at) VALUES (?, ?, ?) ON CONFLICT"
               " (device_id, tracking_no) DO UPDATE SET at = excluded.at",
               device_id, f["tracking_no"][:32], at)

    def _on_reveal_request(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        req = RevealRequest(device_id, bytes(f["session"]).hex(), f["tracking_no"], list(f["fields"]),
                            f["reason"], f["req"])
        out = self.desk.within(tx, req, now)
        d = out.decision
        metrics.REVEALS.labels("granted" if d.granted else "denied").inc()
        # Every decision is in the audit log already; this line is for debugging.
        log_event("reveal", logging.DEBUG, device=device_id, parcel=req.tracking_no, outcome=d.kind)
        if d.granted:
            work.replies.append(Reply(device_id, "reveal_grant", {
                "req": req.req, "tracking_no": req.tracking_no, "cti": out.cti, "exp": out.exp + self.skew,
                "fields": sorted(out.values), "_values": out.values}, t0=work.t0))
        else:
            work.replies.append(Reply(device_id, "reveal_denied", {
                "req": req.req, "tracking_no": req.tracking_no, "code": d.code, "reason": d.reason},
                t0=work.t0))
        if out.alarm is not None:
            metrics.SUSPENSIONS.inc()
            work.alarms.append(out.alarm)

    def _on_delivered(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        courier = self._courier(tx, device_id, f["session"])
        row = tx.one("SELECT r.courier_id FROM parcels p JOIN routes r ON r.route_id = p.route_id"
                     " WHERE p.tracking_no = ?", f["tracking_no"])
        if row is None or row[0] != courier:
            raise forbidden("parcel %s is not on a route of courier %s" % (f["tracking_no"], courier))
        holders = retention.deliver(tx, self.home.audit, f["tracking_no"], courier, device_id, f["kind"], now)
        for holder in holders:
            work.replies.append(Reply(holder, "seal", {"tracking_no": f["tracking_no"]}))

    def _on_batch(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        """Each item in its own savepoint: a bad item is refused, logged and
        reported without losing the good ones. Items arrive in id order, so the
        highest id committed is remembered and a re-sent item is not applied
        twice. The batch_ack leaves with the commit."""
        items, ids = f["items"], f.get("ids")
        if ids is not None and len(ids) != len(items):
            raise ProtocolError("batch has %d items but %d ids" % (len(items), len(ids)), -1, MALFORMED)
        key = registry.batch_upto_key(device_id)
        row = tx.one("SELECT value FROM meta WHERE key = ?", key)
        upto = int(row[0]) if row else -1
        outcomes: list[int] = []
        for i, item in enumerate(items):
            if ids is not None and ids[i] <= upto:
                outcomes.append(messages.BATCH_SEEN)
                continue
            tx.run("SAVEPOINT item")
            try:
                name, fields = messages.decode(bytes(item))
                self.dispatch(tx, device_id, name, fields, now, work, nested=True)
                tx.run("RELEASE SAVEPOINT item")
                outcomes.append(messages.BATCH_OK)
            except ProtocolError as e:
                tx.run("ROLLBACK TO SAVEPOINT item")
                tx.run("RELEASE SAVEPOINT item")
                self.home.audit.forget_tail()
                log_event("batch-item-refused", device=device_id, item=i if ids is None else ids[i],
                          code=e.code, detail=e.message)
                outcomes.append(e.code)
        if ids is None:  # no ids: nothing to recognise it by if it comes again; outcomes by position
            work.replies.append(Reply(device_id, "batch_ack", {"ids": list(range(len(items))),
                                                               "outcomes": outcomes}))
            return
        if ids and max(ids) > upto:
            tx.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                   " SET value = excluded.value", key, str(max(ids)))
        work.replies.append(Reply(device_id, "batch_ack", {"ids": list(ids), "outcomes": outcomes}))

    def _on_token_use(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        row = tx.one("SELECT used, tracking_no FROM tokens WHERE cti = ? AND device_id = ?",
                     bytes(f["cti"]), device_id)
        if row is None or row[1] != f["tracking_no"]:
            outcome = "unknown-token"
        elif row[0] is not None:
            outcome = "reused"
        else:
            outcome = "ok"
            tx.run("UPDATE tokens SET used = ? WHERE cti = ?", min(float(f["used_at"]) - self.skew, now),
                   bytes(f["cti"]))
        self.home.audit.append(tx, now, "device", device_id, "token-use", f["tracking_no"][:32], outcome, "")

    def _on_preissue_request(self, tx: Handle, device_id: str, f: Msg, now: float,
                             work: Work) -> None:
        """Offline tokens: phone only, for parcels of the courier's route that
        this device scanned during the current shift, valid to the shift end."""
        courier = self._courier(tx, device_id, f["session"])
        shift = str(tx.one("SELECT shift FROM couriers WHERE courier_id = ?", courier)[0])  # type: ignore[index]
        start, end = shift_bounds(shift, now, self.home.zone)
        rows = tx.all("SELECT p.tracking_no, p.window_end FROM parcels p"
                      " JOIN routes r ON r.route_id = p.route_id"
                      " JOIN scans s ON s.tracking_no = p.tracking_no AND s.device_id = ?"
                      " WHERE r.courier_id = ? AND r.state = 'active' AND p.state = 'out_for_delivery'"
                      " AND s.at >= ?", device_id, courier, start)
        wanted = set(f.get("tracking_nos") or [r[0] for r in rows])
        tokens: list[dict[str, Any]] = []
        state = registry.courier_state(tx, courier)
        if state == "active" and registry.device_state(tx, device_id) == "active" and start <= now < end:
            ch = self._channels[device_id]
            for tracking_no, window_end in rows:
                if tracking_no not in wanted:
                    continue
                values = self.home.vault.read(tx, tracking_no, [messages.FIELD_PHONE])
                cti, exp = secrets.token_bytes(8), int(min(end, window_end))
                seq = self.home.audit.append(tx, now, self.home.audit.person("courier", courier), device_id,
                                             "preissue", tracking_no, "granted", "fields 2")
                tx.run("INSERT INTO tokens (cti, device_id, courier_id, tracking_no, fields, issued, exp,"
                       " used, audit_seq, offline) VALUES (?, ?, ?, ?, '2', ?, ?, NULL, ?, 1)",
                       cti, device_id, courier, tracking_no, now, exp, seq)
                device_exp = exp + self.skew  # the handheld checks expiry on its own clock
                tokens.append({"tracking_no": tracking_no, "cti": cti, "exp": device_exp, "fields": [2],
                               "token": ch.seal_token(tracking_no, values, cti, device_exp)})
        work.replies.append(Reply(device_id, "preissue", {"tokens": tokens}))

    def _on_print_job(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        self.print_desk.print_job(tx, device_id, f, now, work)

    def _on_command_ack(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> None:
        self.home.audit.append(tx, now, "device", device_id, "command-ack", "",
                               "ok" if f["ok"] else "failed", "command %d" % f["id"])
        if f["ok"]:
            self.rotation.acknowledged(tx, device_id, f["id"], now)

    def retention(self, now: float) -> list[str]:
        return retention.run_retention(self.home.store, self.home.vault, self.home.audit, self.cfg, now)
