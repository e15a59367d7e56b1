"""The disclosure gate: where every release of plaintext personal data is
decided. An online reveal, a pre-issued offline token, a reveal for a
parcel whose label is damaged and a complaint case's view all come here as
an `Ask`; `decide()` is one pure function over the `Facts` gathered for it
(gateway/disclosure.py gathers them and carries the decision out) and
returns a grant or a denial a courier can read, plus the sentinel's `Trip`
when a budget or a behavioural sign says stop.

The rules run in the order a courier would want to hear about them; the
first that fails names the denial. Every count comes from the release
ledger (gateway/ledger.py), whatever the path, so a budget means the same
online and offline; what the courier already holds this shift does not
count again.

The other doors of possession are judged here too: `judge_scan()` (only a
checked label proof puts a parcel in hand) and `judge_proof()` (a proof of
delivery that seals a parcel must be a real one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from gateway.config import Config
from protocol import messages as m

# What was asked.
REVEAL, PREISSUE, CASE_VIEW = "reveal", "preissue", "case-view"
# How a release reached the person (the ledger's path column).
ONLINE, OFFLINE, DAMAGED, CASE = "online", "offline", "damaged", "case"
INTERACTIVE = (ONLINE, DAMAGED, CASE)  # rate budgets and the depot-wide sign count these

REASON_LABEL_DAMAGED = 6
REVEALABLE = (m.FIELD_NAME, m.FIELD_PHONE, m.FIELD_ADDRESS)
STRIKE_SECONDS = 600  # suspicious requests count for ten minutes
REPEAT_FACTOR = 5  # grants a minute, re-issues included, beyond per_minute times this: try later
ROUTE_SLACK = 5  # distinct parcels a shift may exceed route_share * route size by


@dataclass(frozen=True)
class Ask:
    kind: str  # REVEAL, PREISSUE or CASE_VIEW
    device_id: str
    tracking_no: str
    fields: tuple[int, ...]
    reason: int
    named: bool = True  # a pre-issue that named this parcel (the stock handheld lets the gateway pick)


@dataclass
class Usage:
    """The account's own record, from the ledger and the request log."""
    held: frozenset[int] = frozenset()  # fields of this parcel the account holds this shift
    minute_grants: int = 0  # grants with new releases in the last minute (interactive paths)
    device_minute_grants: int = 0
    minute_parcels: frozenset[str] = frozenset()
    device_any_grants: int = 0  # every grant to the device in the last minute, re-issues too
    shift_releases: int = 0  # (parcel, field) rows this shift, every path
    shift_parcels: frozenset[str] = frozenset()
    damaged_parcels: frozenset[str] = frozenset()
    offline_parcels: frozenset[str] = frozenset()
    shown_parcels: frozenset[str] = frozenset()  # on screen: interactive paths, used offline tokens
    delivered: int = 0  # parcels the courier delivered this shift
    undelivered: int = 0  # parcels released to the account whose window ended undelivered
    strikes: int = 0  # suspicious requests in the last STRIKE_SECONDS
    recent: tuple[str, ...] = ()  # tracking numbers the account asked for, newest first


@dataclass
class DepotUsage:
    count: int = 0  # distinct parcels released in the depot's window (interactive paths)
    has_parcel: bool = False  # this ask's parcel is one of them
    baseline: float = 0.0  # the depot's mean for such a window
    couriers: int = 0  # couriers logged in at the depot now


@dataclass
class Facts:
    """What the store knows that bears on one ask."""
    device_state: str | None = None
    account: str | None = None  # the courier logged in under the ask's session, or the case agent
    account_state: str | None = None
    depot: str = ""
    shift: str = "00:00-24:00"
    shift_bounds: tuple[float, float] = (0.0, 0.0)
    routes: tuple[str, ...] = ()
    route_size: int = 0
    parcel_route: str | None = None
    parcel_state: str | None = None
    window: tuple[float, float] = (0.0, 0.0)
    proven_at: float | None = None  # this device's latest scan of the parcel's current label proof
    case_open_until: float | None = None  # an approved complaint case naming this account
    case_fields: tuple[int, ...] = REVEALABLE
    usage: Usage = field(default_factory=Usage)
    depot_usage: DepotUsage = field(default_factory=DepotUsage)


@dataclass
class Trip:
    """The sentinel's action: deny, suspend, alarm, open an incident."""
    why: str
    scope: str = "account"  # "depot": every account with releases in the depot's window


@dataclass
class Decision:
    granted: bool
    code: int = 0
    reason: str = ""
    kind: str = "granted"  # short slug for the audit log, metrics and the request log
    path: str = ""
    new_fields: tuple[int, ...] = ()
    strike: bool = False  # looks like scraping: counts towards suspension
    trip: Trip | None = None
    quiet: bool = False  # a pre-issue left this parcel out: no denial to report, no alarm
    flag: str = ""  # granted, and flagged for the officer


def _deny(code: int, kind: str, reason: str, strike: bool = False, quiet: bool = False) -> Decision:
    return Decision(False, code, "reveal denied: " + reason, kind, strike=strike, quiet=quiet)


_SHIFTS: dict[tuple[str, int, str], tuple[float, float]] = {}


def shift_bounds(shift: str, now: float, zone: tzinfo) -> tuple[float, float]:
    """Today's shift "HH:MM-HH:MM" as Unix times in the gateway's time zone."""
    key = (shift, int(now // 60), str(zone))
    cached = _SHIFTS.get(key)
    if cached is None:
        if len(_SHIFTS) > 4096:
            _SHIFTS.clear()
        start_text, end_text = shift.split("-")
        day = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)

        def at(text: str) -> float:
            hours, minutes = (int(x) for x in text.split(":"))
            return day.timestamp() + hours * 3600 + minutes * 60

        cached = _SHIFTS[key] = (at(start_text), at(end_text))
    return cached


def decide(ask: Ask, facts: Facts, now: float, cfg: Config) -> Decision:
    """The gate. Pure: the same ask and facts always give the same decision."""
    d = _admit(ask, facts, now, cfg)
    if d.granted or d.trip is not None or not d.strike:
        return d
    return _with_strike(d, facts, ask, cfg)


def _admit(ask: Ask, facts: Facts, now: float, cfg: Config) -> Decision:
    parcel, device = ask.tracking_no, ask.device_id
    if facts.device_state != "active":
        state = facts.device_state or "unknown"
        code = m.DENY_SUSPENDED if state == "suspended" else m.DENY_DEVICE
        return _deny(code, "device", "device %s is %s" % (device, state))
    if facts.account is None:
        if ask.kind == CASE_VIEW:
            return _deny(m.DENY_SEALED, "no-case", "no approved complaint case opens parcel %s" % parcel)
        return _deny(m.DENY_NOT_LOGGED_IN, "session", "no courier is logged in on device %s" % device)
    account = facts.account
    if facts.account_state != "active":
        return _deny(m.DENY_SUSPENDED, "courier", "courier %s is suspended" % account)
    if ask.reason not in cfg.reveal.reason_codes:
        return _deny(m.DENY_FIELD, "reason", "reason code %d is not a valid reason" % ask.reason)
    if not ask.fields or any(f not in REVEALABLE for f in ask.fields) or \
            len(set(ask.fields)) != len(ask.fields):
        return _deny(m.DENY_FIELD, "fields", "fields %s cannot be revealed" % list(ask.fields))
    case_open = facts.case_open_until is not None and now < facts.case_open_until
    if case_open and any(f not in facts.case_fields for f in ask.fields):
        case_open = False  # the case opens only the fields it names
    if facts.parcel_state == "shredded":
        return _deny(m.DENY_SHREDDED, "shredded", "parcel %s has been destroyed after retention" % parcel)
    if ask.kind == CASE_VIEW:
        if not case_open:
            return _deny(m.DENY_SEALED, "no-case", "no approved complaint case opens fields %s of parcel %s"
                         " for %s now" % (list(ask.fields), parcel, account))
        return _budgets(ask, facts, now, cfg, CASE)
    routes = " or ".join(facts.routes) or "(none)"
    if not case_open and (facts.parcel_route is None or facts.parcel_route not in facts.routes):
        return _deny(m.DENY_NOT_ON_ROUTE, "not-on-route", "parcel %s is not on route %s of courier %s"
                     % (parcel, routes, account), strike=ask.named)
    if facts.parcel_state != "out_for_delivery" and not case_open:
        return _deny(m.DENY_SEALED, "sealed", "parcel %s is sealed after delivery" % parcel)
    shift_start, shift_end = facts.shift_bounds
    if not shift_start <= now < shift_end:
        return _deny(m.DENY_OFF_SHIFT, "off-shift", "courier %s is outside shift %s" % (account, facts.shift),
                     strike=ask.named)
    if not cfg.reveal.ignore_window and not case_open:
        lead = cfg.reveal.preissue_lead_minutes * 60 if ask.kind == PREISSUE else 0
        if not facts.window[0] - lead <= now <= facts.window[1]:
            return _deny(m.DENY_WINDOW, "window", "parcel %s is outside its delivery window" % parcel,
                         quiet=ask.kind == PREISSUE and not ask.named)
    proven = facts.proven_at
    if ask.kind == PREISSUE:
        if proven is None or proven < shift_start:
            return _deny(m.DENY_SCAN_FIRST, "not-in-hand", "parcel %s: no checked label scan by device"
                         " %s this shift" % (parcel, device), strike=ask.named, quiet=not ask.named)
        return _budgets(ask, facts, now, cfg, OFFLINE)
    if proven is not None and now - proven <= cfg.reveal.scan_fresh_minutes * 60:
        return _budgets(ask, facts, now, cfg, ONLINE)
    if case_open:
        return _budgets(ask, facts, now, cfg, CASE)
    if ask.reason == REASON_LABEL_DAMAGED:
        return _budgets(ask, facts, now, cfg, DAMAGED)
    return _deny(m.DENY_SCAN_FIRST, "not-scanned", "scan the label of parcel %s first: device %s has no"
                 " checked label scan of it in the last %d minutes"
                 % (parcel, device, cfg.reveal.scan_fresh_minutes), strike=True)


def _budgets(ask: Ask, facts: Facts, now: float, cfg: Config, path: str) -> Decision:
    """Budgets and behavioural signs, over the ledger, for what this grant adds."""
    u, s, parcel, account = facts.usage, cfg.sentinel, ask.tracking_no, facts.account
    offline = path == OFFLINE
    if not offline and u.device_any_grants >= REPEAT_FACTOR * s.per_minute:
        return _deny(m.DENY_TOO_MANY, "repeat", "device %s asked too often in the last minute"
                     % ask.device_id)
    new = tuple(f for f in ask.fields if f not in u.held)
    if not new:  # a re-issue of what the account holds this shift: no new data, no budget
        return Decision(True, path=path, flag="label-damaged" if path == DAMAGED else "")
    new_parcel = not u.held
    why = ""
    if not offline:
        if u.minute_grants >= s.per_minute or u.device_minute_grants >= s.per_minute:
            why = "more than %d new releases in a minute" % s.per_minute
        elif parcel not in u.minute_parcels and len(u.minute_parcels) >= s.distinct_per_minute:
            why = "more than %d distinct parcels in a minute" % s.distinct_per_minute
    if not why and u.shift_releases + len(new) > s.per_shift:
        why = "more than %d releases in a shift" % s.per_shift
    cap = int(facts.route_size * s.route_share) + ROUTE_SLACK
    if not why and new_parcel and parcel not in u.shift_parcels and len(u.shift_parcels) + 1 > cap:
        why = "more than %d parcels for a route of %d" % (cap, facts.route_size)
    if why:
        if offline:  # a pre-issue stops issuing; the courier can still reveal online
            return _deny(m.DENY_BUDGET, "budget", "courier %s: %s" % (account, why), quiet=not ask.named)
        d = _deny(m.DENY_BUDGET, "budget", "courier %s has used up the reveal budget (%s)" % (account, why))
        d.trip = Trip(why)
        return d
    if path == DAMAGED and parcel not in u.damaged_parcels and \
            len(u.damaged_parcels) >= cfg.reveal.damaged_per_shift:
        return _deny(m.DENY_DAMAGED_USED, "damaged-used", "the damaged-label allowance of %d parcels this"
                     " shift is used up: scan the label's QR code" % cfg.reveal.damaged_per_shift)
    if offline and parcel not in u.offline_parcels and len(u.offline_parcels) >= cfg.reveal.offline_per_shift:
        return _deny(m.DENY_OFFLINE_USED, "offline-used", "the offline allowance of %d parcels this shift is"
                     " used up" % cfg.reveal.offline_per_shift, quiet=not ask.named)
    sign = _sign(ask, facts, cfg, path)
    if sign is not None:
        d = _deny(m.DENY_BUDGET, "scraper" if sign.scope == "account" else "depot",
                  "%s: %s" % ("courier %s" % account if sign.scope == "account" else "depot " + facts.depot,
                              sign.why))
        d.trip = sign
        return d
    return Decision(True, path=path, new_fields=new, flag="label-damaged" if path == DAMAGED else "")


def _sign(ask: Ask, facts: Facts, cfg: Config, path: str) -> Trip | None:
    """Behaviour, not only counts: sweeps, reveals without deliveries,
    releases never delivered, and the depot against its own baseline."""
    u, s, parcel = facts.usage, cfg.sentinel, ask.tracking_no
    if path == DAMAGED:  # with a label proof, the order of numbers is only the order of the van
        run = sequential(parcel, u.recent, s.sequential_run)
        if run:
            return Trip(run)
    interactive = path in INTERACTIVE
    shown = len(u.shown_parcels | ({parcel} if interactive else set()))
    if shown > s.reveal_ratio * u.delivered + s.ratio_slack:
        return Trip("%d parcels revealed against %d delivered this shift" % (shown, u.delivered))
    if u.undelivered >= s.undelivered_limit:
        return Trip("%d parcels revealed and never delivered by the end of their window" % u.undelivered)
    if interactive:
        depot = facts.depot_usage
        count = depot.count + (0 if depot.has_parcel else 1)
        limit = max(float(s.depot_floor), s.depot_per_courier * depot.couriers,
                    s.depot_factor * depot.baseline)
        if count > limit:
            return Trip("%d parcels released in %d minutes across the depot (baseline %.1f)"
                        % (count, s.depot_window_minutes, depot.baseline), scope="depot")
    return None


def _with_strike(d: Decision, facts: Facts, ask: Ask, cfg: Config) -> Decision:
    """A suspicious denial: enough of them in ten minutes suspend the account."""
    strikes = facts.usage.strikes + 1
    if strikes >= cfg.sentinel.strikes:
        d.trip = Trip("%d suspicious requests in %d minutes" % (strikes, STRIKE_SECONDS // 60))
    else:
        run = sequential(ask.tracking_no, facts.usage.recent, cfg.sentinel.sequential_run)
        if run:
            d.trip = Trip(run)
    return d


def sequential(tracking_no: str, recent: tuple[str, ...], run: int) -> str:
    """Tracking numbers asked for one after another (...122, ...123, ...124)."""
    if run < 2 or len(recent) < run - 1:
        return ""
    numbers = []
    for t in (tracking_no,) + recent[:run - 1]:
        digits = ""
        for c in reversed(t):
            if not c.isdigit():
                break
            digits = c + digits
        if not digits:
            return ""
        numbers.append(int(digits))
    steps = {a - b for a, b in zip(numbers, numbers[1:], strict=False)}
    if steps == {1} or steps == {-1}:
        return "%d sequential tracking numbers" % run
    return ""


# ---- scans: only a checked label proof puts a parcel in hand

@dataclass
class Scan:
    """What the gateway made of one scan message."""
    proof_problem: str | None  # None: the label proof checked out; else why not
    strikes: int  # the account's suspicious requests in the last STRIKE_SECONDS
    recent: tuple[str, ...] = ()


def judge_scan(tracking_no: str, scan: Scan, account: str, cfg: Config) -> Decision:
    if scan.proof_problem is None:
        return Decision(True, kind="in-hand")
    d = Decision(False, m.DENY_LABEL, "scan refused: %s" % scan.proof_problem, "label", strike=True)
    strikes = scan.strikes + 1
    if strikes >= cfg.sentinel.strikes:
        d.trip = Trip("%d suspicious requests in %d minutes (scans without a valid label)"
                      % (strikes, STRIKE_SECONDS // 60))
    else:
        run = sequential(tracking_no, scan.recent, cfg.sentinel.sequential_run)
        if run:
            d.trip = Trip(run)
    return d


# ---- proofs of delivery: a parcel is sealed only on a real one

PROOF_RULES = {  # kind -> (what it must be, min bytes, max bytes)
    1: ("a signature", 16, 2048),
    2: ("a photo's digest or thumbnail", 16, 2048),
    3: ("the receiver's code: 4 to 12 digits", 4, 12),
    4: ("where it was left with a neighbour", 2, 64),
    5: ("a locker's id and code: 4 to 32 letters, digits or '-'", 4, 32),
}


def judge_proof(kind: int, proof: bytes) -> str:
    """"" when the proof of delivery may seal the parcel, else what is wrong."""
    rule = PROOF_RULES.get(kind)
    if rule is None:
        return "proof kind %d is not one of %s" % (kind, ", ".join(
            "%d %s" % (k, v) for k, v in sorted(m.PROOF_KINDS.items())))
    what, low, high = rule
    if not low <= len(proof) <= high:
        return "a %s proof must be %s (%d to %d bytes), got %d bytes" % (
            m.PROOF_KINDS[kind], what, low, high, len(proof))
    if kind == 3 and not proof.isdigit():
        return "a code proof must be %s" % what
    if kind == 5 and not all(c in b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             for c in proof):
        return "a locker proof must be %s" % what
    if kind == 4:
        try:
            text = proof.decode("utf-8")
        except UnicodeDecodeError:
            return "a neighbour proof must be UTF-8 text"
        if not text.strip() or not text.isprintable():
            return "a neighbour proof must be printable text"
    return ""
