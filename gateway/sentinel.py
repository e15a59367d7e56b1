"""The sentinel carries out what the gate (gateway/gate.py) decides when a
budget or a behavioural sign trips: it suspends every account and device
involved, records an alarm, and opens one incident listing exactly whose
data those accounts received in the look-back window (from the release
ledger), with the path and device for each parcel. It also records
security events for the officer (lockouts, damaged-label reveals). Only a
named security officer lifts a suspension."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from gateway import incidents, logins, registry
from gateway.audit import AuditLog
from gateway.config import Config, SentinelConfig
from gateway.store import Handle, Store
from gateway.vault import Vault
from protocol.errors import PolicyDenied


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
    actors: list[str] = field(default_factory=list)  # every account suspended, as pseudonyms
    devices: list[str] = field(default_factory=list)  # every device suspended

    def as_dict(self) -> dict[str, object]:
        return {"alarm": self.alarm_id, "incident": self.incident_id, "kind": self.kind,
                "actor": self.actor, "device": self.device_id, "at": self.at, "parcels": self.parcels,
                "broker": self.broker, "actors": self.actors or [self.actor],
                "devices": self.devices or [self.device_id]}


def _is_courier(tx: Handle, account: str) -> bool:
    return tx.one("SELECT 1 FROM couriers WHERE courier_id = ?", account) is not None


def _hold(tx: Handle, incident_id: str, kind: str, ident: str) -> None:
    tx.run("INSERT INTO incident_holds (incident_id, kind, ident, state) VALUES (?, ?, ?, 'held')"
           " ON CONFLICT (incident_id, kind, ident) DO NOTHING", incident_id, kind, ident)


def _release_holds(tx: Handle, kind: str, ident: str) -> None:
    """A lift ends every hold on this courier or device; the incident's own
    life cycle (notification, report) goes on."""
    tx.run("UPDATE incident_holds SET state = 'lifted' WHERE kind = ? AND ident = ?", kind, ident)


def trip(tx: Handle, audit: AuditLog, courier: str, device: str, why: str, now: float,
         cfg: SentinelConfig, also: dict[str, set[str]] | None = None, vault: Vault | None = None) -> Alarm:
    """Suspend the courier and the device (and every account and device in
    `also`, for a depot-wide sign), record an alarm, open one incident
    (gateway/incidents.py; with the vault it seals the people to notify)."""
    accounts: dict[str, set[str]] = {}
    if courier:
        accounts[courier] = {device}
    for account, used in (also or {}).items():
        accounts.setdefault(account, set()).update(used)
    devices = sorted({d for ds in accounts.values() for d in ds if d} | ({device} if device else set()))
    holds: list[tuple[str, str]] = []
    for account in sorted(accounts):
        if _is_courier(tx, account):
            if registry.courier_state(tx, account) == "active":
                registry.set_courier_state(tx, account, "suspended")
            holds.append(("courier", account))
    for d in devices:
        if registry.device_state(tx, d) in ("provisioned", "active", "suspended"):
            if registry.device_state(tx, d) != "suspended":
                registry.set_device_state(tx, d, "suspended")
            holds.append(("device", d))
    incident_id, parcels = incidents.open_incident(tx, vault, audit, cfg, "sentinel", why, now, courier,
                                                   device,
                                                   accounts, devices)
    for kind, ident in holds:
        _hold(tx, incident_id, kind, ident)
    actor = audit.person("courier", courier) if courier else "device"
    actors = [audit.person("courier", a) for a in sorted(accounts)]
    alarm = Alarm("ALM-" + secrets.token_hex(4).upper(), incident_id, why, actor, device, int(now),
                  len(parcels),
                  actors=actors, devices=devices)
    tx.run("INSERT INTO alarms (alarm_id, at, kind, courier_id, device_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
           alarm.alarm_id, now, why, courier, device, incident_id)
    audit.append(tx, now, "sentinel", device, "suspend", "", "suspended",
                 {"incident": incident_id, "why": why, "accounts": len(accounts), "devices": len(devices)})
    return alarm


def notice(tx: Handle, audit: AuditLog, courier: str, device: str, kind: str, why: str, now: float) -> Alarm:
    """An alarm that suspends nobody (a lockout): the officer hears of it at once."""
    actor = audit.person("courier", courier) if courier else "device"
    alarm = Alarm("ALM-" + secrets.token_hex(4).upper(), "", why, actor, device, now, 0)
    tx.run("INSERT INTO alarms (alarm_id, at, kind, courier_id, device_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
           alarm.alarm_id, now, why, courier, device, kind)
    audit.append(tx, now, "sentinel", device, "alarm", "", kind, {"why": why})
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
    try:
        logins.verify_officer(store, audit, officer, pin, now, "lift-suspension")
    except logins.LoginRefused as e:
        raise LiftRefused("lifting refused: %s" % e) from None
    with store.transaction() as tx:
        if courier:
            if registry.courier_state(tx, courier) != "suspended":
                raise LiftRefused("courier %s is not suspended" % courier)
            # The incident stays for the notification duty; it no longer holds the account.
            _release_holds(tx, "courier", courier)
            registry.set_courier_state(tx, courier, "active")
            audit.append(tx, now, audit.person("officer", officer), "", "lift-suspension", "", "ok",
                         {"courier": audit.person("courier", courier), "reason": reason})
        if device:
            if registry.device_state(tx, device) != "suspended":
                raise LiftRefused("device %s is not suspended" % device)
            _release_holds(tx, "device", device)
            registry.set_device_state(tx, device, "active")
            audit.append(tx, now, audit.person("officer", officer), device, "lift-suspension", "", "ok",
                         {"reason": reason})
