"""The sentinel: reveal budgets and scraper signs, and what happens when one
trips (deny, suspend courier and device, alarm, incident listing whose data
the account received). Only a named security officer lifts a suspension."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field

from gateway import registry
from gateway.audit import AuditLog
from gateway.config import Config, SentinelConfig
from gateway.store import Handle, Store
from protocol.errors import PolicyDenied

STRIKE_SECONDS = 600  # suspicious denials count for ten minutes
_DIGITS = re.compile(r"(\d+)\Z")


@dataclass
class Usage:
    """Grants already made, counted for budgets."""
    courier_minute: int = 0
    device_minute: int = 0
    distinct_minute: set[str] = field(default_factory=set)
    courier_shift: int = 0
    route_size: int = 0


@dataclass
class Alarm:
    alarm_id: str
    incident_id: str
    kind: str
    actor: str  # HMAC pseudonym of the courier: alarms carry no personal data
    device_id: str
    at: float
    parcels: int
    broker: str = ""  # what became of the device's broker account

    def as_dict(self) -> dict[str, object]:
        return {"alarm": self.alarm_id, "incident": self.incident_id, "kind": self.kind,
                "actor": self.actor, "device": self.device_id, "at": self.at, "parcels": self.parcels,
                "broker": self.broker}


def usage(tx: Handle, courier: str, device: str, now: float, shift_start: float) -> Usage:
    """Online grants of the last minute (courier or device) and of the shift."""
    u = Usage()
    rows = tx.all("SELECT courier_id, device_id, tracking_no FROM tokens"
                  " WHERE (courier_id = ? OR device_id = ?) AND issued > ? AND offline = 0",
                  courier, device, now - 60)
    for c, d, t in rows:
        if c == courier:
            u.courier_minute += 1
            u.distinct_minute.add(t)
        if d == device:
            u.device_minute += 1
    row = tx.one("SELECT COUNT(*) FROM tokens WHERE courier_id = ? AND issued >= ?", courier, shift_start)
    u.courier_shift = int(row[0]) if row else 0
    return u


def budget_exceeded(u: Usage, tracking_no: str, cfg: SentinelConfig) -> str:
    """Which budget this one more grant would cross, or ""."""
    if u.courier_minute >= cfg.per_minute or u.device_minute >= cfg.per_minute:
        return "more than %d reveals in a minute" % cfg.per_minute
    if tracking_no not in u.distinct_minute and len(u.distinct_minute) >= cfg.distinct_per_minute:
        return "more than %d distinct parcels in a minute" % cfg.distinct_per_minute
    if u.courier_shift >= cfg.per_shift:
        return "more than %d reveals in a shift" % cfg.per_shift
    route_cap = u.route_size * cfg.per_parcel_on_route + 10
    if u.courier_shift >= route_cap:
        return "more than %d reveals for a route of %d parcels" % (route_cap, u.route_size)
    return ""


def scraper_sign(tx: Handle, courier: str, tracking_no: str, now: float, cfg: SentinelConfig) -> str:
    """Called on a suspicious denial (not on route, not scanned, off shift)."""
    if not courier:
        return ""
    row = tx.one("SELECT COUNT(*) FROM requests WHERE courier_id = ? AND strike = 1 AND at > ?",
                 courier, now - STRIKE_SECONDS)
    strikes = (int(row[0]) if row else 0) + 1
    if strikes >= cfg.strikes:
        return "%d suspicious reveal requests in %d minutes" % (strikes, STRIKE_SECONDS // 60)
    return sequential_sign(tx, courier, tracking_no, now, cfg)


def sequential_sign(tx: Handle, courier: str, tracking_no: str, now: float, cfg: SentinelConfig) -> str:
    """Tracking numbers requested one after another (…122, …123, …124)."""
    if cfg.sequential_run < 2 or not courier:
        return ""
    rows = tx.all("SELECT tracking_no FROM requests WHERE courier_id = ? AND at > ? ORDER BY at DESC"
                  " LIMIT ?", courier, now - STRIKE_SECONDS, cfg.sequential_run - 1)
    chain = [tracking_no] + [r[0] for r in rows]
    if len(chain) < cfg.sequential_run:
        return ""
    numbers = []
    for t in chain:
        m = _DIGITS.search(t)
        if m is None:
            return ""
        numbers.append(int(m.group(1)))
    steps = {a - b for a, b in zip(numbers, numbers[1:], strict=False)}
    if steps == {1} or steps == {-1}:
        return "%d sequential tracking numbers" % len(chain)
    return ""


def trip(tx: Handle, audit: AuditLog, courier: str, device: str, why: str, now: float,
         cfg: SentinelConfig) -> Alarm:
    """Suspend the courier and the device, record an alarm, open an incident."""
    actor = audit.person("courier", courier) if courier else "device"
    if courier:
        registry.set_courier_state(tx, courier, "suspended")
    if tx.one("SELECT 1 FROM devices WHERE device_id = ?", device):
        registry.set_device_state(tx, device, "suspended")
    since = now - cfg.lookback_hours * 3600
    rows = tx.all(
        "SELECT t.tracking_no, MIN(t.issued), MAX(t.issued), p.masked_receiver_name,"
        " p.masked_receiver_phone FROM tokens t JOIN parcels p ON p.tracking_no = t.tracking_no"
        " WHERE (t.courier_id = ? OR t.device_id = ?) AND t.issued >= ?"
        " GROUP BY t.tracking_no, p.masked_receiver_name, p.masked_receiver_phone ORDER BY MIN(t.issued)",
        courier, device, since)
    parcels = [{"tracking_no": r[0], "first": r[1], "last": r[2], "receiver_name": r[3],
                "receiver_phone": r[4]} for r in rows]
    for r, p in zip(rows, parcels, strict=True):
        fields = tx.all("SELECT DISTINCT fields FROM tokens WHERE tracking_no = ? AND (courier_id = ?"
                        " OR device_id = ?) AND issued >= ?", r[0], courier, device, since)
        p["fields"] = sorted({int(f) for (fs,) in fields for f in fs.split(",") if f})
    incident_id = "INC-" + secrets.token_hex(4).upper()
    tx.run("INSERT INTO incidents (incident_id, opened, courier_id, device_id, trigger_reason, parcels,"
           " state) VALUES (?, ?, ?, ?, ?, ?, 'open')", incident_id, now, courier, device, why,
           json.dumps(parcels, ensure_ascii=False))
    alarm = Alarm("ALM-" + secrets.token_hex(4).upper(), incident_id, why, actor, device, now, len(parcels))
    tx.run("INSERT INTO alarms (alarm_id, at, kind, courier_id, device_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
           alarm.alarm_id, now, why, courier, device, incident_id)
    audit.append(tx, now, "sentinel", device, "suspend", "", "suspended", "%s; %s" % (incident_id, why))
    return alarm


def reenable_broker_account(cfg: Config, device: str) -> str:
    """After a lift: the broker account the suspension disabled is enabled again."""
    from gateway.broker_admin import open_admin

    admin = open_admin(cfg)
    if admin is None:
        return "broker account of %s untouched: no broker admin credentials in this home" % device
    try:
        admin.enable(device)
    except Exception as e:
        return "broker account of %s NOT enabled again: %s" % (device, e)
    finally:
        admin.close()
    return "broker account of %s enabled again" % device


class LiftRefused(PolicyDenied):
    pass


def lift(store: Store, audit: AuditLog, officer: str, pin: str, now: float, reason: str,
         courier: str | None = None, device: str | None = None) -> None:
    """Only a named security officer, with their PIN, lifts a suspension."""
    if not courier and not device:
        raise LiftRefused("name a courier or a device to reinstate")
    if not reason.strip():
        raise LiftRefused("give a reason for lifting the suspension")
    if not registry.verify_officer(store, officer, pin):
        with store.transaction() as tx:
            audit.append(tx, now, audit.person("officer", officer), device or "", "lift-suspension", "",
                         "refused", "bad officer name or PIN")
        raise LiftRefused("lifting refused: %s is not a security officer or the PIN is wrong" % officer)
    with store.transaction() as tx:
        if courier:
            if registry.courier_state(tx, courier) != "suspended":
                raise LiftRefused("courier %s is not suspended" % courier)
            # The incident stays for the notification duty; it no longer holds the account.
            tx.run("UPDATE incidents SET state = 'reinstated' WHERE courier_id = ? AND state = 'open'",
                   courier)
            registry.set_courier_state(tx, courier, "active")
            audit.append(tx, now, audit.person("officer", officer), "", "lift-suspension", "", "ok",
                         "courier %s; %s" % (audit.person("courier", courier), reason))
        if device:
            if registry.device_state(tx, device) != "suspended":
                raise LiftRefused("device %s is not suspended" % device)
            tx.run("UPDATE incidents SET state = 'reinstated' WHERE device_id = ? AND state = 'open'", device)
            registry.set_device_state(tx, device, "active")
            audit.append(tx, now, audit.person("officer", officer), device, "lift-suspension", "", "ok",
                         reason)
