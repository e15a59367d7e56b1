"""What the gateway does with each message a handheld sends. `handle()` is
the one per-message handler: it opens the message and runs its handler in
a savepoint of the batch's transaction, so whatever goes wrong with one
device's message (garbage under a valid key included) becomes an error
reply or a logged drop for that message alone, and the rest of the batch
is decided, committed and answered. Handlers gather facts and carry out
what the gate decides (gateway/disclosure.py); they decide nothing about
releases. Nothing is published before the commit. Channels are cached per
device; their replay windows are saved in the batch commit, and their
down-direction sequence numbers are reserved ahead, so a reply can be
sealed even when the store cannot be written."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from gateway import bundles, cases, events, gate, ledger, logins, metrics, registry, retention, sentinel
from gateway.audit import AuditUnavailable
from gateway.channels import Channels, Unsendable
from gateway.disclosure import Disclosure
from gateway.home import Home
from gateway.logs import log, log_event
from gateway.print_desk import PrintDesk
from gateway.replies import Msg, Refused, Reply, Request, Work, refused, unavailable
from gateway.store import Handle
from protocol import messages
from protocol.errors import (
    ERROR_NAMES,
    INTERNAL,
    MALFORMED,
    UNAVAILABLE,
    UNKNOWN_DEVICE,
    UNKNOWN_MESSAGE,
    ProtocolError,
)
from protocol.session import Channel

CLOCK_TOLERANCE = 600  # a handheld clock further off than this is logged (docs/scale-out.md)
ROUTE_CHUNK = 40  # parcels per route message, to stay well under the CBOR size limit
PREISSUE_CHUNK = 16  # offline tokens per preissue message
SESSION_GRACE = 86400.0  # a delivery queued under a session that ended less than this ago still counts
REPLY_MAX = 8192  # largest reply the gateway builds (the handheld decodes up to 16 KiB)
BATCHABLE = ("scan", "delivered", "token_use")  # what a handheld's offline queue holds
__all__ = ["CLOCK_TOLERANCE", "Handlers", "Msg", "Reply", "Work"]

try:  # a store failure (full disk, lost connection) is "unavailable", not a bug
    import psycopg

    STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, AuditUnavailable, OSError, psycopg.Error)
except ImportError:  # pragma: no cover - psycopg is a dependency
    STORE_ERRORS = (sqlite3.Error, AuditUnavailable, OSError)


class Handlers:
    def __init__(self, home: Home, clock: Callable[[], float] = time.time) -> None:
        self.home = home
        self.cfg = home.config
        self.clock = clock
        self.desk = Disclosure(home.keys, home.vault, home.audit, home.config, home.zone)
        self.channels = Channels(home)
        self.rotation = self.channels.rotation
        self.print_desk = PrintDesk(home)
        self.skew = 0  # the current message's device clock minus ours, in seconds
        self._nested = False  # inside a batch: refusals become the item's outcome
        self.table: dict[str, Callable[[Handle, str, Msg, float, Work], int]] = {
            "hello": self._on_hello,
            "login": self._on_login,
            "logout": self._on_logout,
            "route_request": self._on_route_request,
            "scan": self._on_scan,
            "reveal_request": self._on_reveal_request,
            "delivered": self._on_delivered,
            "batch": self._on_batch,
            "token_use": self._on_token_use,
            "preissue_request": self._on_preissue_request,
            "print_job": self._on_print_job,
            "command_ack": self._on_command_ack,
        }

    # ---- one batch, one message

    def process(self, batch: list[tuple[str, bytes, float]], now: float) -> Work:
        """A batch of (device id, payload, arrival) in one transaction, each
        message on its own. If the commit fails nothing was done, and every
        request is answered "unavailable" all the same, without a write:
        publish with `reserve=work.committed`."""
        work = Work()
        self.begin()
        try:
            with self.home.store.transaction() as tx:
                for device_id, payload, t0 in batch:
                    work.t0 = t0
                    self.handle(tx, device_id, payload, now, work)
                    work.decoded += 1
                self.save_windows(tx)
        except Exception as e:
            return self._unavailable(work, batch, now, type(e).__name__)
        return work

    def _unavailable(self, work: Work, batch: list[tuple[str, bytes, float]], now: float,
                     failure: str) -> Work:
        """The answers to a batch whose commit failed: "unavailable" for each
        request; the messages not opened yet are opened now, reading only."""
        requests = list(work.requests)
        self.after_failed_commit()
        for device_id, payload, t0 in batch[work.decoded:]:
            try:
                ch = self.channel(self.home.store, device_id)  # type: ignore[arg-type]
                if ch is None:
                    continue
                name, fields, _seq = ch.unwrap(payload, int(now))
            except Exception:
                continue  # it would not have been answered anyway
            requests.append(Request(device_id, name, fields, t0))
        replies = [r for r in (unavailable(q) for q in requests) if r is not None]
        return Work(replies=replies, committed=False, failure=failure)


    def handle(self, tx: Handle, device_id: str, payload: bytes, now: float, work: Work) -> None:
        """One message of one device, in its own savepoint: anything that
        goes wrong with it is answered or dropped for it alone."""
        name, fields = "", {}  # type: tuple[str, Msg]
        tx.run("SAVEPOINT msg")
        mark = work.mark()
        try:
            opened = self._open(tx, device_id, payload, now, work)
            if opened is not None:
                name, fields = opened
                work.requests.append(Request(device_id, name, fields, work.t0))
                self.dispatch(tx, device_id, name, fields, now, work)
            tx.run("RELEASE SAVEPOINT msg")
        except Exception as e:
            tx.run("ROLLBACK TO SAVEPOINT msg")
            tx.run("RELEASE SAVEPOINT msg")
            self.home.audit.forget_tail()
            work.undo(mark)
            self._failed(device_id, name, fields, e, work)

    def _open(self, tx: Handle, device_id: str, payload: bytes, now: float,
              work: Work) -> tuple[str, Msg] | None:
        """The message inside, or None when it is dropped (logged)."""
        try:
            channel = self.channel(tx, device_id)
        except ProtocolError as e:
            _drop(device_id, ERROR_NAMES.get(e.code, "error"), e.message)
            return None
        if channel is None:
            _drop(device_id, ERROR_NAMES[UNKNOWN_DEVICE], "")
            return None
        try:
            name, fields, work.seq = self.unwrap(tx, device_id, channel, payload, now)
        except ProtocolError as e:
            why = ERROR_NAMES.get(e.code, "error")
            _drop(device_id, why, e.message)
            if why in ("malformed", "unknown-message"):
                work.replies.append(Reply(device_id, "error", {"code": e.code, "detail": e.message[:200]}))
            return None
        except Exception as e:  # a decoder bug must cost this message only
            _drop(device_id, "malformed", "%s while decoding" % type(e).__name__)
            work.replies.append(Reply(device_id, "error", {"code": MALFORMED,
                                                           "detail": "message could not be decoded"}))
            return None
        return name, fields

    def _failed(self, device_id: str, name: str, fields: Msg, e: Exception, work: Work) -> None:
        """The answer for a message whose handling was rolled back."""
        ref = {"ref": work.seq} if name else {}
        if isinstance(e, Refused):
            log_event("refused", device=device_id, message=name, detail=e.text)
            work.replies.append(Reply(device_id, "error", dict(_error_fields(e), **ref)))
        elif isinstance(e, ProtocolError):
            log_event("bad-message", device=device_id, message=name, detail=e.message)
            work.replies.append(Reply(device_id, "error", {"code": e.code, "detail": e.message[:200], **ref}))
        elif isinstance(e, STORE_ERRORS):
            # Most likely the audit log could not be written: undone, and denied.
            log_event("handler-failed", device=device_id, message=name, error=type(e).__name__)
            reply = unavailable(Request(device_id, name, fields, work.t0)) if name else None
            if reply is not None:
                work.replies.append(reply)
        else:
            log.exception("handler for %s from %s failed", name or "a message", device_id)
            if name == "reveal_request":
                work.replies.append(unavailable(Request(device_id, name, fields, work.t0)))  # type: ignore[arg-type]
            else:
                work.replies.append(Reply(device_id, "error", {"code": INTERNAL, "detail": "internal error",
                                                               **ref}))

    def dispatch(self, tx: Handle, device_id: str, name: str, f: Msg, now: float, work: Work) -> int:
        """Run the handler for a message (nested inside a batch or not)."""
        handler = self.table.get(name)
        if handler is None or (self._nested and name not in BATCHABLE):
            where = "inside a batch" if self._nested and handler is not None else ""
            raise ProtocolError(("a handheld does not send %s %s" % (name, where)).strip(), -1,
                                UNKNOWN_MESSAGE)
        if not self._nested:
            # Device times are read on our clock, whatever the device's says.
            self.skew = int(f.get("t", now)) - int(now)
            if abs(self.skew) > CLOCK_TOLERANCE:
                log_event("clock-skew", device=device_id, seconds=self.skew)
        return handler(tx, device_id, f, now, work) or messages.BATCH_OK

    def refuse(self, device_id: str, text: str, deny: int, work: Work) -> int:
        """A policy refusal that keeps what was recorded (a strike, the audit
        entry): answered directly, or as the item's outcome inside a batch."""
        e = refused(text, deny)
        if not self._nested:
            work.replies.append(Reply(device_id, "error", dict(_error_fields(e), ref=work.seq)))
        log_event("refused", device=device_id, detail=text)
        return e.code

    # ---- channels (gateway/channels.py)

    def begin(self) -> None:
        self.channels.begin()

    def channel(self, tx: Handle, device_id: str) -> Channel | None:
        return self.channels.get(tx, device_id)

    def save_windows(self, tx: Handle) -> None:
        self.channels.save_windows(tx)

    def after_failed_commit(self) -> None:
        self.channels.after_failed_commit()

    def unwrap(self, tx: Handle, device_id: str, ch: Channel, payload: bytes,
               now: float) -> tuple[str, Msg, int]:
        return self.channels.unwrap(tx, device_id, ch, payload, now)

    def seal_reply(self, device_id: str, name: str, fields: dict[str, Any], now: float,
                   reserve: bool = True) -> bytes:
        return self.channels.seal_reply(device_id, name, fields, now, reserve)

    def _session(self, tx: Handle, device_id: str, session: bytes, since: float | None = None) -> str:
        """The courier logged in on the device under this session; with
        `since`, also a session of this device that ended after it."""
        row = registry.session_on(tx, device_id)
        if row is not None and row[0] == bytes(session).hex():
            return row[1]
        if since is not None:
            old = tx.one("SELECT courier_id FROM sessions WHERE session_id = ? AND device_id = ?"
                         " AND ended >= ?", bytes(session).hex(), device_id, since)
            if old is not None:
                return str(old[0])
        raise refused("not logged in on device " + device_id, messages.DENY_NOT_LOGGED_IN)

    def _fits(self, name: str, fields: Msg) -> None:
        size = len(messages.encode(name, fields, 0))
        if size > REPLY_MAX:
            raise ProtocolError("a %s reply of %d bytes would be too large to send" % (name, size), -1,
                                INTERNAL)

    # ---- the messages

    def _on_hello(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        state = registry.device_state(tx, device_id)
        tx.run("UPDATE devices SET fw = ?, last_seen = ? WHERE device_id = ?", f["fw"][:32], now, device_id)
        if state == "provisioned":
            # The first message under its key proves the device holds its secret.
            registry.set_device_state(tx, device_id, "active")
            # Its enrolment bundle has done its work: the secret in it must not outlive it.
            gone = bundles.shred_secrets(bundles.bundle_of(self.home.config.home, device_id))
            self.home.audit.append(tx, now, "gateway", device_id, "activate", "", "ok",
                                   {"bundle": "shredded"} if gone else {})
        return 0

    def _on_login(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        badge, audit, cfg = f["badge"], self.home.audit, self.cfg.sentinel
        actor = audit.person("courier", badge)
        state = registry.device_state(tx, device_id)
        tries = logins.attempts(tx, badge, device_id, now, cfg)
        pin_ok = False
        if state == "active" and not logins.locked(tries, cfg):
            pin_ok = registry.verify_pin(tx, badge, bytes(f["pin_proof"]).decode("utf-8", "replace"))
        v = logins.judge(state, tries, pin_ok, registry.courier_state(tx, badge), cfg)
        if not v.ok:
            if v.failed:
                tx.run("INSERT INTO login_failures (badge, device_id, at) VALUES (?, ?, ?)", badge[:64],
                       device_id, now)
            audit.append(tx, now, actor, device_id, "login", "", "denied", {"reason": v.reason})
            if v.lockout:
                self._lockout(tx, badge, device_id, tries, v, now, work)
            code, reason = v.code, v.reason
            if v.lockout:
                code = messages.DENY_SUSPENDED if v.suspend else messages.DENY_LOCKED_OUT
                reason = "badge or PIN is wrong; now %s" % ("suspended" if v.suspend else "locked out for %d"
                                                           " minutes" % self.cfg.sentinel.lockout_minutes)
            work.replies.append(Reply(device_id, "login_result", {"ok": False, "reason": reason,
                                                                  "code": code}))
            return 0
        session = bytes.fromhex(registry.login(tx, badge, device_id, now))
        tx.run("UPDATE devices SET last_seen = ? WHERE device_id = ?", now, device_id)
        shift = str(tx.one("SELECT shift FROM couriers WHERE courier_id = ?", badge)[0])  # type: ignore[index]
        shift_end = int(gate.shift_bounds(shift, now, self.home.zone)[1])
        audit.append(tx, now, actor, device_id, "login", "", "ok", "")
        work.replies.append(Reply(device_id, "login_result", {
            "ok": True, "session": session, "courier": badge, "shift_end": shift_end}))
        return 0

    def _lockout(self, tx: Handle, badge: str, device_id: str, tries: logins.Attempts, v: logins.Verdict,
                 now: float, work: Work) -> None:
        """A lockout is an alarm and a security event; one too many in a day suspends."""
        cfg = self.cfg.sentinel
        why = "%d wrong PINs for a badge (%d on device %s) in %d minutes" % (
            tries.badge_failures + 1, tries.device_failures + 1, device_id, cfg.lockout_minutes)
        known = registry.courier_state(tx, badge) is not None
        events.record(tx, "pin-lockout", badge[:64] if known else "", device_id, "", why, now)
        if v.suspend:
            why = "%d PIN lockouts in a day; %s" % (tries.lockouts_today + 1, why)
        alarm = sentinel.trip(tx, self.home.audit, badge if known else "", device_id, why, now, cfg,
                              vault=self.home.vault) \
            if v.suspend else sentinel.notice(tx, self.home.audit, badge if known else "", device_id,
                                              "pin-lockout", why, now)
        work.alarms.append(alarm)

    def _on_logout(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        courier = self._session(tx, device_id, f["session"])
        registry.logout(tx, device_id, now)
        self.home.audit.append(tx, now, self.home.audit.person("courier", courier), device_id, "logout")
        return 0

    def _on_route_request(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        courier = self._session(tx, device_id, f["session"])
        routes = [r[0] for r in tx.all("SELECT route_id FROM routes WHERE courier_id = ? AND state = 'active'"
                                       " ORDER BY route_id", courier)]
        if f.get("route"):
            if f["route"] not in routes:
                raise refused("route %s is not an active route of courier %s" % (f["route"], courier),
                              messages.DENY_NOT_ON_ROUTE)
            routes = [f["route"]]
        if not routes:
            raise refused("courier %s has no active route" % courier, messages.DENY_NOT_ON_ROUTE)
        for route in routes:
            # Masked fields only: never a label proof, never plaintext.
            rows = tx.all("SELECT tracking_no, masked_receiver_name, masked_receiver_phone,"
                          " masked_receiver_address, sort_code, window_start, window_end FROM parcels"
                          " WHERE route_id = ? AND state = 'out_for_delivery' ORDER BY tracking_no", route)
            parcels = [{"tracking_no": r[0], "name": r[1], "phone": r[2], "address": r[3], "sort_code": r[4],
                        "window_start": int(r[5]), "window_end": int(r[6])} for r in rows]
            parcels += cases.on_route(tx, courier, route, now)
            for i in range(0, max(len(parcels), 1), ROUTE_CHUNK):
                work.replies.append(Reply(device_id, "route", {"route": route,
                                                               "parcels": parcels[i:i + ROUTE_CHUNK]}))
        self.home.audit.append(tx, now, self.home.audit.person("courier", courier), device_id,
                               "route", "", "ok", {"routes": list(routes)})
        return 0

    def _on_scan(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        at = min(float(f.get("t", now)) - self.skew, now)
        label = f.get("label")
        d, alarm = self.desk.scan(tx, device_id, bytes(f["session"]).hex(), f["tracking_no"][:32],
                                  None if label is None else bytes(label), at, now)
        if alarm is not None:
            metrics.SUSPENSIONS.inc()
            work.alarms.append(alarm)
        if d.granted:
            return 0
        if alarm is not None:
            return self.refuse(device_id, d.reason + "; account and handheld suspended",
                               messages.DENY_SUSPENDED, work)
        return self.refuse(device_id, d.reason, d.code, work)

    def _on_reveal_request(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        out = self.desk.reveal(tx, device_id, bytes(f["session"]).hex(), f["tracking_no"], f["fields"],
                               f["reason"], now)
        d = out.decision
        metrics.REVEALS.labels("granted" if d.granted else "denied").inc()
        # Every decision is in the audit log already; this line is for debugging.
        log_event("reveal", logging.DEBUG, device=device_id, parcel=f["tracking_no"], outcome=d.kind)
        if d.granted:
            exp = out.exp + self.skew  # the handheld checks expiry on its own clock
            token = self.channels.cached(device_id).seal_token(f["tracking_no"], out.values, out.cti, exp)
            fields = sorted(out.values)
            out.values = {}
            work.replies.append(Reply(device_id, "reveal_grant", {
                "req": f["req"], "tracking_no": f["tracking_no"], "cti": out.cti, "exp": exp,
                "fields": fields, "token": token}, t0=work.t0))
        else:
            code, reason = d.code, d.reason
            if out.alarm is not None:  # the handheld learns it now, not at its next request
                code, reason = messages.DENY_SUSPENDED, reason + "; account and handheld suspended"
            work.replies.append(Reply(device_id, "reveal_denied", {
                "req": f["req"], "tracking_no": f["tracking_no"], "code": code, "reason": reason},
                t0=work.t0))
        if out.alarm is not None:
            metrics.SUSPENSIONS.inc()
            work.alarms.append(out.alarm)
        return 0

    def _on_delivered(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        # A delivery queued offline may arrive after its courier logged out or
        # another logged in: its proof still counts (sealing only takes away).
        courier = self._session(tx, device_id, f["session"], since=now - SESSION_GRACE)
        row = tx.one("SELECT r.courier_id FROM parcels p JOIN routes r ON r.route_id = p.route_id"
                     " WHERE p.tracking_no = ?", f["tracking_no"])
        if row is None or row[0] != courier:
            raise refused("parcel %s is not on a route of courier %s" % (f["tracking_no"], courier),
                          messages.DENY_NOT_ON_ROUTE)
        problem = gate.judge_proof(f["kind"], bytes(f["proof"]))
        if problem:
            self.home.audit.append(tx, now, self.home.audit.person("courier", courier), device_id, "deliver",
                                   f["tracking_no"], "refused", {"problem": problem})
            return self.refuse(device_id, "delivery of %s not recorded: %s" % (f["tracking_no"], problem),
                               messages.DENY_PROOF, work)
        holders = retention.deliver(tx, self.home.audit, f["tracking_no"], courier, device_id, f["kind"], now)
        for holder in holders:
            work.replies.append(Reply(holder, "seal", {"tracking_no": f["tracking_no"]}))
        return 0

    def _on_batch(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
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
        self._nested = True
        try:
            for i, item in enumerate(items):
                if ids is not None and ids[i] <= upto:
                    outcomes.append(messages.BATCH_SEEN)
                    continue
                ref = i if ids is None else ids[i]
                outcomes.append(self._item(tx, device_id, bytes(item), now, work, ref))
        finally:
            self._nested = False
        if ids is None:  # no ids: nothing to recognise it by if it comes again; outcomes by position
            work.replies.append(Reply(device_id, "batch_ack", {"ids": list(range(len(items))),
                                                               "outcomes": outcomes}))
            return 0
        if ids and max(ids) > upto:
            tx.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                   " SET value = excluded.value", key, str(max(ids)))
        work.replies.append(Reply(device_id, "batch_ack", {"ids": list(ids), "outcomes": outcomes}))
        return 0

    def _item(self, tx: Handle, device_id: str, item: bytes, now: float, work: Work, ref: int) -> int:
        """One offline item, in its own savepoint; its outcome for the batch_ack."""
        tx.run("SAVEPOINT item")
        mark = work.mark()
        try:
            name, fields = messages.decode(item)
            outcome = self.dispatch(tx, device_id, name, fields, now, work)
            tx.run("RELEASE SAVEPOINT item")
            return outcome
        except (ProtocolError, Refused) as e:
            tx.run("ROLLBACK TO SAVEPOINT item")
            tx.run("RELEASE SAVEPOINT item")
            self.home.audit.forget_tail()
            work.undo(mark)
            code = e.code
            log_event("batch-item-refused", device=device_id, item=ref, code=code,
                      detail=e.message if isinstance(e, ProtocolError) else e.text)
            return code
        except STORE_ERRORS:
            raise  # the store is failing: the whole batch is unavailable and comes again
        except Exception:
            tx.run("ROLLBACK TO SAVEPOINT item")
            tx.run("RELEASE SAVEPOINT item")
            self.home.audit.forget_tail()
            work.undo(mark)
            log.exception("batch item %s from %s failed", ref, device_id)
            return MALFORMED

    def _on_token_use(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        row = tx.one("SELECT used, tracking_no, courier_id, offline FROM tokens WHERE cti = ?"
                     " AND device_id = ?", bytes(f["cti"]), device_id)
        if row is None or row[1] != f["tracking_no"]:
            outcome = "unknown-token"
        elif row[0] is not None:
            outcome = "reused"
        else:
            outcome = "ok"
            used = min(float(f["used_at"]) - self.skew, now)
            tx.run("UPDATE tokens SET used = ? WHERE cti = ?", used, bytes(f["cti"]))
            if row[3]:
                ledger.shown(tx, str(row[2]), row[1], used)
        self.home.audit.append(tx, now, "device", device_id, "token-use", f["tracking_no"][:32], outcome, "")
        return 0

    def _on_preissue_request(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        """Offline tokens, each decided by the gate like an online reveal."""
        self._session(tx, device_id, f["session"])
        named = f.get("tracking_nos")
        fields = f.get("fields") or [messages.FIELD_PHONE]
        outs = self.desk.preissue(tx, device_id, bytes(f["session"]).hex(),
                                  None if named is None else [str(t)[:32] for t in named], fields,
                                  f.get("reason") or 1, now)
        ch = self.channels.cached(device_id)
        tokens: list[dict[str, Any]] = []
        for out in outs:
            if out.alarm is not None:
                metrics.SUSPENSIONS.inc()
                work.alarms.append(out.alarm)
            if not out.decision.granted:
                continue
            exp = out.exp + self.skew  # the handheld checks expiry on its own clock
            tokens.append({"tracking_no": out.ask.tracking_no, "cti": out.cti, "exp": exp,
                           "fields": sorted(out.values),
                           "token": ch.seal_token(out.ask.tracking_no, out.values, out.cti, exp)})
            out.values = {}
        for i in range(0, max(len(tokens), 1), PREISSUE_CHUNK):
            reply = {"tokens": tokens[i:i + PREISSUE_CHUNK]}
            self._fits("preissue", reply)  # a reply too large to send records nothing: rolled back
            work.replies.append(Reply(device_id, "preissue", reply))
        return 0

    def _on_print_job(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        self.print_desk.print_job(tx, device_id, f, now, work)
        return 0

    def _on_command_ack(self, tx: Handle, device_id: str, f: Msg, now: float, work: Work) -> int:
        self.home.audit.append(tx, now, "device", device_id, "command-ack", "",
                               "ok" if f["ok"] else "failed", {"command": f["id"]})
        if f["ok"]:
            self.rotation.acknowledged(tx, device_id, f["id"], now)
        return 0

    def retention(self, now: float) -> list[str]:
        return retention.run_retention(self.home.store, self.home.vault, self.home.audit, self.cfg, now)


def _drop(device_id: str, why: str, detail: str) -> None:
    log_event("drop", device=device_id, why=why, detail=detail)
    metrics.DROPPED.labels(why).inc()


def _error_fields(e: Refused) -> dict[str, Any]:
    out: dict[str, Any] = {"code": e.code, "detail": e.text[:200]}
    if e.deny:
        out["deny"] = e.deny
    return out


__all__ += ["UNAVAILABLE", "Unsendable"]  # Unsendable: gateway/channels.py
