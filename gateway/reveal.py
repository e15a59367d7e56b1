"""Where a reveal is decided. `decide()` is the one policy function: it reads
the facts gathered for a request and returns a grant or a denial a courier can
read. `RevealDesk.handle()` gathers the facts, decides, and writes the audit
entry, the token record and any sentinel action in one transaction; the
caller publishes the grant only after that transaction has committed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from gateway import sentinel
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.store import Handle, Store
from gateway.vault import Shredded, Vault

# Denial codes, as protocol/messages.py DENIALS numbers them.
NOT_ON_ROUTE = 1
SCAN_FIRST = 2
SEALED = 3
BUDGET = 4
OFF_SHIFT = 5
SUSPENDED = 6
FIELD_NOT_ALLOWED = 7
NOT_LOGGED_IN = 8
TOO_MANY = 9
REVEALABLE_FIELDS = (1, 2, 3)


@dataclass
class RevealRequest:
    device_id: str
    session: str  # hex of the session id the device was given at login
    tracking_no: str
    fields: list[int]
    reason: int
    req: int = 0


@dataclass
class Facts:
    """What the store knows that bears on one request."""
    device_state: str | None = None
    courier_id: str | None = None  # logged in on the device under the request's session
    courier_state: str | None = None
    shift: str = "00:00-24:00"
    courier_routes: list[str] = field(default_factory=list)
    parcel_route: str | None = None
    parcel_state: str | None = None
    window: tuple[float, float] = (0.0, 0.0)
    last_scan: float | None = None
    case_open_until: float | None = None
    usage: sentinel.Usage = field(default_factory=sentinel.Usage)


@dataclass
class Decision:
    granted: bool
    code: int = 0
    reason: str = ""
    kind: str = "granted"  # short slug for audit and metrics
    strike: bool = False  # looks like scraping, counts towards suspension
    trigger: str = ""  # non-empty: the sentinel suspends the account and device


def _deny(code: int, kind: str, reason: str, strike: bool = False) -> Decision:
    return Decision(False, code, "reveal denied: " + reason, kind, strike)


_SHIFTS: dict[tuple[str, int, str], tuple[float, float]] = {}


def shift_bounds(shift: str, now: float, zone: tzinfo) -> tuple[float, float]:
    """Today's shift as Unix times, in the gateway's time zone."""
    key = (shift, int(now // 60), str(zone))
    cached = _SHIFTS.get(key)
    if cached is None:
        if len(_SHIFTS) > 4096:
            _SHIFTS.clear()
        cached = _SHIFTS[key] = _shift_bounds(shift, now, zone)
    return cached


def _shift_bounds(shift: str, now: float, zone: tzinfo) -> tuple[float, float]:
    start_text, end_text = shift.split("-")
    day = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)

    def at(text: str) -> float:
        hours, minutes = (int(x) for x in text.split(":"))
        return day.timestamp() + hours * 3600 + minutes * 60

    return at(start_text), at(end_text)


def decide(req: RevealRequest, facts: Facts, now: float, cfg: Config, zone: tzinfo) -> Decision:
    """The reveal policy. Every rule is here, in the order a courier would
    want to hear about it; the first that fails names the denial."""
    parcel = req.tracking_no
    if facts.device_state != "active":
        state = facts.device_state or "unknown"
        return _deny(SUSPENDED, "device", "device %s is %s" % (req.device_id, state))
    if facts.courier_id is None:
        return _deny(NOT_LOGGED_IN, "session", "no courier is logged in on device %s" % req.device_id)
    courier = facts.courier_id
    if facts.courier_state != "active":
        return _deny(SUSPENDED, "courier", "courier %s is suspended" % courier)
    if req.reason not in cfg.reveal.reason_codes:
        return _deny(FIELD_NOT_ALLOWED, "reason", "reason code %d is not a valid reason" % req.reason)
    if not req.fields or any(f not in REVEALABLE_FIELDS for f in req.fields) or \
            len(set(req.fields)) != len(req.fields):
        return _deny(FIELD_NOT_ALLOWED, "fields", "fields %s cannot be revealed" % req.fields)
    routes = " or ".join(facts.courier_routes) or "(none)"
    if facts.parcel_route is None or facts.parcel_route not in facts.courier_routes:
        return _deny(NOT_ON_ROUTE, "not-on-route",
                     "parcel %s is not on route %s of courier %s" % (parcel, routes, courier), strike=True)
    case_open = facts.case_open_until is not None and now < facts.case_open_until
    if facts.parcel_state == "shredded":
        return _deny(SEALED, "shredded", "parcel %s has been destroyed after retention" % parcel)
    if facts.parcel_state != "out_for_delivery" and not case_open:
        return _deny(SEALED, "sealed", "parcel %s is sealed after delivery" % parcel)
    shift_start, shift_end = shift_bounds(facts.shift, now, zone)
    if not shift_start <= now < shift_end:
        return _deny(OFF_SHIFT, "off-shift", "courier %s is outside shift %s" % (courier, facts.shift),
                     strike=True)
    if not cfg.reveal.ignore_window and not case_open and \
            not facts.window[0] <= now <= facts.window[1]:
        return _deny(OFF_SHIFT, "window", "parcel %s is outside its delivery window" % parcel)
    fresh = cfg.reveal.scan_fresh_minutes * 60
    if facts.last_scan is None or now - facts.last_scan > fresh:
        return _deny(SCAN_FIRST, "not-scanned",
                     "scan parcel %s first: device %s has not scanned it in the last %d minutes"
                     % (parcel, req.device_id, cfg.reveal.scan_fresh_minutes), strike=True)
    trigger = sentinel.budget_exceeded(facts.usage, parcel, cfg.sentinel)
    if trigger:
        decision = _deny(BUDGET, "budget",
                         "courier %s has used up the reveal budget (%s)" % (courier, trigger))
        decision.trigger = trigger
        return decision
    return Decision(True)


class RevealDesk:
    """Turns requests into committed outcomes; see the module comment."""

    def __init__(self, store: Store, vault: Vault, audit: AuditLog, cfg: Config, zone: tzinfo) -> None:
        self.store, self.vault, self.audit, self.cfg, self.zone = store, vault, audit, cfg, zone

    def gather(self, tx: Handle, req: RevealRequest, now: float) -> Facts:
        """Everything `decide` needs, in five queries."""
        f = Facts()
        row = tx.one("SELECT d.state, s.courier_id, c.state, c.shift FROM devices d LEFT JOIN sessions s"
                     " ON s.device_id = d.device_id AND s.session_id = ? AND s.ended IS NULL"
                     " LEFT JOIN couriers c ON c.courier_id = s.courier_id WHERE d.device_id = ?",
                     req.session, req.device_id)
        if row is None:
            return f
        f.device_state = row[0]
        if row[1] is None:
            return f
        f.courier_id, f.courier_state, f.shift = row[1], row[2], row[3]
        routes = tx.all("SELECT r.route_id, (SELECT COUNT(*) FROM parcels p WHERE p.route_id = r.route_id)"
                        " FROM routes r WHERE r.courier_id = ? AND r.state = 'active' ORDER BY r.route_id",
                        f.courier_id)
        f.courier_routes = [r[0] for r in routes]
        row = tx.one("SELECT p.route_id, p.state, p.window_start, p.window_end,"
                     " (SELECT s.at FROM scans s WHERE s.device_id = ? AND s.tracking_no = p.tracking_no),"
                     " (SELECT MAX(c.open_until) FROM cases c WHERE c.tracking_no = p.tracking_no)"
                     " FROM parcels p WHERE p.tracking_no = ?", req.device_id, req.tracking_no)
        if row is not None:
            f.parcel_route, f.parcel_state, f.window = row[0], row[1], (row[2], row[3])
            f.last_scan, f.case_open_until = row[4], row[5]
        shift_start = shift_bounds(f.shift, now, self.zone)[0]
        f.usage = sentinel.usage(tx, f.courier_id, req.device_id, now, shift_start)
        f.usage.route_size = sum(int(r[1]) for r in routes)
        return f

    def handle(self, reqs: list[RevealRequest], now: float) -> list[Outcome]:
        """Decide a batch in one transaction (one commit for many requests).
        If the transaction fails, every request in it is denied: fail closed."""
        try:
            with self.store.transaction() as tx:
                return [self.within(tx, req, now) for req in reqs]
        except Exception as e:
            return [Outcome(req, _deny(0, "internal", "audit log unavailable (%s)" % type(e).__name__))
                    for req in reqs]

    def within(self, tx: Handle, req: RevealRequest, now: float) -> Outcome:
        """Decide one request inside the caller's transaction."""
        facts = self.gather(tx, req, now)
        decision = decide(req, facts, now, self.cfg, self.zone)
        courier = facts.courier_id or ""
        if not decision.granted and not decision.trigger and decision.strike:
            decision.trigger = sentinel.scraper_sign(tx, courier, req.tracking_no, now, self.cfg.sentinel)
        elif decision.granted:
            sign = sentinel.sequential_sign(tx, courier, req.tracking_no, now, self.cfg.sentinel)
            if sign:
                decision = _deny(BUDGET, "scraper", "courier %s is sweeping tracking numbers" % courier)
                decision.trigger = sign
        actor = self.audit.person("courier", courier) if courier else "device"
        out = Outcome(req, decision)
        if decision.granted:
            try:
                out.values = self.vault.read(tx, req.tracking_no, req.fields)
            except Shredded:
                out.decision = _deny(SEALED, "shredded", "parcel %s has been destroyed" % req.tracking_no)
        if courier:
            tx.run("INSERT INTO requests (courier_id, device_id, tracking_no, at, outcome, strike)"
                   " VALUES (?, ?, ?, ?, ?, ?)", courier, req.device_id, req.tracking_no, now,
                   out.decision.kind, 1 if out.decision.strike else 0)
        fields = ",".join(str(f) for f in req.fields)
        seq = self.audit.append(tx, now, actor, req.device_id, "reveal", req.tracking_no,
                                "granted" if out.decision.granted else "denied:" + out.decision.kind,
                                "fields %s reason %d" % (fields, req.reason))
        if out.decision.granted:
            out.cti = secrets.token_bytes(8)
            out.exp = int(now) + self.cfg.reveal.token_seconds
            tx.run("INSERT INTO tokens (cti, device_id, courier_id, tracking_no, fields, issued, exp, used,"
                   " audit_seq, offline) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, 0)",
                   out.cti, req.device_id, courier, req.tracking_no, fields, now, out.exp, seq)
        if out.decision.trigger:
            out.alarm = sentinel.trip(tx, self.audit, courier, req.device_id, out.decision.trigger,
                                      now, self.cfg.sentinel)
        return out


@dataclass
class Outcome:
    request: RevealRequest
    decision: Decision
    values: dict[int, str] = field(default_factory=dict)
    cti: bytes = b""
    exp: int = 0
    alarm: sentinel.Alarm | None = None
