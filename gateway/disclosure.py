"""The disclosure desk: gathers the facts for an ask, lets the gate decide
(gateway/gate.py), and carries the decision out in the caller's
transaction: the request log, the audit entry, the ledger rows, the token
record, the security event, the sentinel's trip. The caller publishes a
grant only after that transaction has committed (fail closed), so a
release that is sent always has its ledger row and audit entry.

Every path that releases plaintext comes through here: `reveal()` (online
and damaged-label reveals from a handheld), `preissue()` (offline tokens)
and `case_view()` (a complaint agent's view of an opened case). `scan()`
records a checked label proof, the fact that puts a parcel in hand."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway import events, gate, ledger, sentinel
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.gate import Ask, Decision, Facts
from gateway.keys import KeyUnavailable
from gateway.labels import LabelKeys, LabelRefused
from gateway.labels import check as check_label
from gateway.store import Handle
from gateway.vault import Shredded, Vault
from protocol import messages

PREISSUE_MAX = 64  # parcels one pre-issue looks at


@dataclass
class Outcome:
    ask: Ask
    decision: Decision
    values: dict[int, str] = field(default_factory=dict)  # plaintext: seal it into a token and drop it
    cti: bytes = b""
    exp: int = 0
    alarm: sentinel.Alarm | None = None


@dataclass
class Account:
    """Who is asking: the courier logged in on a device, or a complaint agent."""
    name: str | None
    state: str | None
    depot: str = ""
    shift: str = "00:00-24:00"


class Disclosure:
    def __init__(self, store_keys: LabelKeys, vault: Vault, audit: AuditLog, cfg: Config, zone) -> None:  # type: ignore[no-untyped-def]
        self.keys, self.vault, self.audit, self.cfg, self.zone = store_keys, vault, audit, cfg, zone
        self.depots = ledger.DepotWatch(cfg.sentinel.depot_window_minutes, cfg.sentinel.depot_baseline_hours)
        self._grants: dict[str, deque[float]] = {}  # device -> times of its grants in the last minute

    # ---- facts

    def courier_on(self, tx: Handle, device_id: str, session: str) -> tuple[str | None, Account]:
        """(device state, the courier logged in on it under `session`)."""
        row = tx.one("SELECT d.state, s.courier_id, c.state, c.shift, c.depot FROM devices d"
                     " LEFT JOIN sessions s"
                     " ON s.device_id = d.device_id AND s.session_id = ? AND s.ended IS NULL"
                     " LEFT JOIN couriers c ON c.courier_id = s.courier_id WHERE d.device_id = ?",
                     session, device_id)
        if row is None:
            return None, Account(None, None)
        if row[1] is None:
            return str(row[0]), Account(None, None)
        return str(row[0]), Account(str(row[1]), row[2], str(row[4] or ""), str(row[3]))

    def gather(self, tx: Handle, ask: Ask, device_state: str | None, who: Account, now: float) -> Facts:
        """Everything `gate.decide` needs for one ask."""
        f = Facts(device_state=device_state)
        if who.name is None:
            return f
        f.account, f.account_state, f.depot, f.shift = who.name, who.state, who.depot, who.shift
        f.shift_bounds = gate.shift_bounds(who.shift, now, self.zone)
        start = f.shift_bounds[0]
        routes = tx.all("SELECT r.route_id, COUNT(p.tracking_no), SUM(CASE WHEN p.delivered_at >= ? THEN 1"
                        " ELSE 0 END) FROM routes r LEFT JOIN parcels p ON p.route_id = r.route_id"
                        " WHERE r.courier_id = ? AND r.state = 'active' GROUP BY r.route_id"
                        " ORDER BY r.route_id", start, who.name)
        f.routes = tuple(r[0] for r in routes)
        f.route_size = sum(int(r[1]) for r in routes)
        row = tx.one("SELECT p.route_id, p.state, p.window_start, p.window_end,"
                     " (SELECT s.at FROM scans s WHERE s.device_id = ? AND s.tracking_no = p.tracking_no"
                     " AND s.label_no = p.label_no),"
                     " (SELECT c.open_until FROM cases c WHERE c.tracking_no = p.tracking_no"
                     " AND c.account = ? AND c.open_until IS NOT NULL ORDER BY c.open_until DESC LIMIT 1),"
                     " (SELECT c.fields FROM cases c WHERE c.tracking_no = p.tracking_no"
                     " AND c.account = ? AND c.open_until IS NOT NULL ORDER BY c.open_until DESC LIMIT 1)"
                     " FROM parcels p WHERE p.tracking_no = ?",
                     ask.device_id, who.name, who.name, ask.tracking_no)
        if row is not None:
            f.parcel_route, f.parcel_state, f.window = row[0], row[1], (float(row[2]), float(row[3]))
            f.proven_at = None if row[4] is None else float(row[4])
            if row[5] is not None:
                f.case_open_until = float(row[5])
                f.case_fields = tuple(int(x) for x in str(row[6]).split(",") if x)
        delivered = sum(int(r[2] or 0) for r in routes)
        f.usage, f.depot_usage = ledger.usage(tx, who.name, ask.device_id, ask.tracking_no, start, now,
                                              delivered, self.depots, who.depot)
        f.usage.device_any_grants = self._recent_grants(ask.device_id, now)
        return f

    def _recent_grants(self, device_id: str, now: float) -> int:
        """Grants to the device in the last minute, re-issues included, as this
        gateway made them: a guard against a handheld asking in a loop."""
        times = self._grants.get(device_id)
        if times is None:
            return 0
        while times and times[0] <= now - 60:
            times.popleft()
        return len(times)

    # ---- the paths

    def reveal(self, tx: Handle, device_id: str, session: str, tracking_no: str, fields: Iterable[int],
               reason: int, now: float) -> Outcome:
        """An online reveal from a handheld (the gate picks the online,
        damaged-label or case path)."""
        ask = Ask(gate.REVEAL, device_id, tracking_no, tuple(fields), reason)
        state, who = self.courier_on(tx, device_id, session)
        return self._carry_out(tx, ask, state, who, now, self.cfg.reveal.token_seconds)

    def preissue(self, tx: Handle, device_id: str, session: str, named: list[str] | None,
                 fields: Iterable[int], reason: int, now: float) -> list[Outcome]:
        """Offline tokens: the gate decides each parcel (named ones, or every
        parcel this device proved in hand this shift). Quiet refusals (the
        allowance, a window not yet near) leave no trace but the audit entry."""
        state, who = self.courier_on(tx, device_id, session)
        if who.name is None or state != "active":
            ask = Ask(gate.PREISSUE, device_id, (named or [""])[0], tuple(fields), reason)
            return [self._carry_out(tx, ask, state, who, now, 0)]
        start, end = gate.shift_bounds(who.shift, now, self.zone)
        if named is None:
            rows = tx.all("SELECT p.tracking_no FROM parcels p JOIN routes r ON r.route_id = p.route_id"
                          " JOIN scans s ON s.tracking_no = p.tracking_no AND s.device_id = ?"
                          " AND s.label_no = p.label_no WHERE r.courier_id = ? AND r.state = 'active'"
                          " AND p.state = 'out_for_delivery' AND s.at >= ? ORDER BY s.at DESC, p.tracking_no",
                          device_id, who.name, start)
            wanted, quiet = [r[0] for r in rows][:PREISSUE_MAX], True
        else:
            wanted, quiet = list(dict.fromkeys(named))[:PREISSUE_MAX], False
        out = []
        for tn in wanted:
            ask = Ask(gate.PREISSUE, device_id, tn, tuple(fields), reason, named=not quiet)
            window_end = tx.one("SELECT window_end FROM parcels WHERE tracking_no = ?", tn)
            lifetime = int(min(end, float(window_end[0]) if window_end else end) - now)
            out.append(self._carry_out(tx, ask, state, who, now, max(lifetime, 0)))
            if out[-1].alarm is not None:
                break  # suspended: nothing more for this account
        left: dict[str, int] = {}
        for o in out:
            if o.decision.quiet and not o.decision.granted:
                left[o.decision.kind] = left.get(o.decision.kind, 0) + 1
        granted = sum(1 for o in out if o.decision.granted)
        self.audit.append(tx, now, self._actor(who.name), device_id, "preissue-request", "", "ok",
                          {"tokens": granted, "parcels_asked": len(wanted),
                           "left_out": dict(sorted(left.items()))})
        return out

    def case_view(self, tx: Handle, agent: str, tracking_no: str, fields: Iterable[int],
                  now: float) -> Outcome:
        """A complaint agent's view of a case the officers opened for them."""
        ask = Ask(gate.CASE_VIEW, "desk", tracking_no, tuple(fields), 1)
        who = Account("agent:" + agent, "active")
        return self._carry_out(tx, ask, "active", who, now, 0)

    def scan(self, tx: Handle, device_id: str, session: str, tracking_no: str, label: bytes | None, at: float,
             now: float) -> tuple[Decision, sentinel.Alarm | None]:
        """A handheld's scan: only a label proof that checks out is recorded
        as the parcel in hand; anything else is refused and is a strike."""
        state, who = self.courier_on(tx, device_id, session)
        if state != "active":
            code = messages.DENY_SUSPENDED if state == "suspended" else messages.DENY_DEVICE
            return Decision(False, code, "scan refused: device %s is %s" % (device_id, state), "device"), None
        if who.name is None:
            return Decision(False, messages.DENY_NOT_LOGGED_IN, "scan refused: no courier is logged in on"
                            " device " + device_id, "session"), None
        problem = None
        try:
            if label is None:
                raise LabelRefused("a typed or barcode-only tracking number is not a label proof")
            proven = check_label(tx, self.keys, label, tracking_no)
        except LabelRefused as e:
            problem = str(e)
        else:
            tx.run("INSERT INTO scans (device_id, tracking_no, at, label_no) VALUES (?, ?, ?, ?) ON CONFLICT"
                   " (device_id, tracking_no) DO UPDATE SET at = excluded.at, label_no = excluded.label_no",
                   device_id, tracking_no, at, proven.label_no)
        strikes, recent = ledger.suspicion(tx, who.name, now)
        d = gate.judge_scan(tracking_no, gate.Scan(problem, strikes, recent), who.name, self.cfg)
        if d.granted:
            return d, None
        self._log_request(tx, who.name, device_id, tracking_no, now, d)
        self.audit.append(tx, now, self.audit.person("courier", who.name), device_id, "scan",
                          tracking_no[:32],
                          "refused:label", {"reason": d.reason})
        alarm = self._trip(tx, d, who, device_id, now, Facts()) if d.trip else None
        return d, alarm

    # ---- carrying out

    def _carry_out(self, tx: Handle, ask: Ask, state: str | None, who: Account, now: float,
                   lifetime: int) -> Outcome:
        facts = self.gather(tx, ask, state, who, now)
        d = gate.decide(ask, facts, now, self.cfg)
        out = Outcome(ask, d)
        account = facts.account or ""
        if d.granted:
            try:
                out.values = self.vault.read(tx, ask.tracking_no, list(ask.fields))
            except (Shredded, KeyUnavailable):
                out.decision = d = Decision(False, messages.DENY_SHREDDED, "reveal denied: parcel %s has been"
                                            " destroyed" % ask.tracking_no, "shredded")
        if d.quiet and not d.granted and d.trip is None:
            return out  # a parcel a pre-issue left out: counted in its summary entry
        # The request log feeds the strike count and the sequence sign: denials and
        # grants without a label proof; the audit log has every decision anyway.
        if account and not account.startswith("agent:") and ask.kind == gate.REVEAL and \
                (not d.granted or d.path != gate.ONLINE):
            self._log_request(tx, account, ask.device_id, ask.tracking_no, now, d)
        elif account and d.strike:
            self._log_request(tx, account, ask.device_id, ask.tracking_no, now, d)
        actor = self._actor(account)
        detail: dict[str, object] = {"fields": list(ask.fields), "reason": ask.reason}
        if d.granted:
            detail["path"] = d.path
        outcome = "granted" if d.granted else "denied:" + d.kind
        seq = self.audit.append(tx, now, actor, ask.device_id, ask.kind, ask.tracking_no[:32], outcome,
                                detail)
        if d.granted:
            ledger.record(tx, account, facts.shift_bounds[0], ask.tracking_no, d.new_fields, ask.device_id,
                          facts.depot, d.path, now, seq)
            if d.path in gate.INTERACTIVE:
                self.depots.released(facts.depot, ask.tracking_no, now)
                if len(self._grants) > 100_000:
                    self._grants.clear()
                self._grants.setdefault(ask.device_id, deque()).append(now)
            out.cti = secrets.token_bytes(8)
            out.exp = int(now) + lifetime
            tx.run("INSERT INTO tokens (cti, device_id, courier_id, tracking_no, fields, issued, exp, used,"
                   " audit_seq, offline) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)", out.cti, ask.device_id,
                   account, ask.tracking_no, ",".join(str(f) for f in ask.fields), now, out.exp, seq,
                   1 if d.path == gate.OFFLINE else 0)
            if d.flag:
                events.record(tx, d.flag, account, ask.device_id, ask.tracking_no,
                              "fields %s without a label proof" % ",".join(str(f) for f in ask.fields), now)
        if d.trip is not None:
            out.alarm = self._trip(tx, d, who, ask.device_id, now, facts)
        return out

    def _actor(self, account: str) -> str:
        if not account:
            return "device"
        if account.startswith("agent:"):
            return self.audit.person("agent", account[6:])
        return self.audit.person("courier", account)

    def _log_request(self, tx: Handle, account: str, device_id: str, tracking_no: str, now: float,
                     d: Decision) -> None:
        tx.run("INSERT INTO requests (courier_id, device_id, tracking_no, at, outcome, strike)"
               " VALUES (?, ?, ?, ?, ?, ?)", account, device_id, tracking_no[:32], now, d.kind,
               1 if d.strike else 0)

    def _trip(self, tx: Handle, d: Decision, who: Account, device_id: str, now: float,
              facts: Facts) -> sentinel.Alarm:
        assert d.trip is not None
        also: dict[str, set[str]] = {}
        if d.trip.scope == "depot":  # every account with releases in the depot's window
            also = self.depots.accounts(tx, facts.depot, now)
        return sentinel.trip(tx, self.audit, who.name or "", device_id, d.trip.why, now, self.cfg.sentinel,
                             also=also, vault=self.vault)
