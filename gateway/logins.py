"""Logins, courier and officer alike. Wrong PINs lock a badge (and, at
twice the count, a device) out for `lockout_minutes`; every lockout raises
an alarm and a security event, and `lockouts_to_suspend` lockouts in a day
suspend the badge and the device, so a short PIN cannot be worn down
slowly. `judge()` decides; the handlers gather the counts and carry it out."""

from __future__ import annotations

from dataclasses import dataclass

from gateway import events, registry
from gateway.audit import AuditLog
from gateway.config import SentinelConfig
from gateway.store import Handle, Store
from protocol import messages as m
from protocol.errors import PolicyDenied

DAY = 86400.0


@dataclass
class Attempts:
    badge_failures: int = 0  # wrong PINs for the badge within the lockout window
    device_failures: int = 0  # wrong PINs on the device within the lockout window
    lockouts_today: int = 0  # lockouts of the badge or on the device in the last day


@dataclass
class Verdict:
    ok: bool
    code: int = 0
    reason: str = ""
    failed: bool = False  # a wrong PIN: record it
    lockout: bool = False  # this failure starts a lockout: alarm and security event
    suspend: bool = False  # ... one too many today: suspend badge and device


def locked(a: Attempts, cfg: SentinelConfig) -> bool:
    return a.badge_failures >= cfg.pin_failures or a.device_failures >= 2 * cfg.pin_failures


def judge(device_state: str | None, a: Attempts, pin_ok: bool, courier_state: str | None,
          cfg: SentinelConfig) -> Verdict:
    """The login decision, in the order a courier would want to hear it."""
    if device_state != "active":
        code = m.DENY_SUSPENDED if device_state == "suspended" else m.DENY_DEVICE
        return Verdict(False, code, "handheld is %s" % (device_state or "unknown"))
    if locked(a, cfg):
        return Verdict(False, m.DENY_LOCKED_OUT, "too many wrong PINs: try again in %d minutes"
                       % cfg.lockout_minutes)
    if not pin_ok:
        lockout = a.badge_failures + 1 >= cfg.pin_failures or a.device_failures + 1 >= 2 * cfg.pin_failures
        return Verdict(False, m.DENY_BAD_PIN, "badge or PIN is wrong", failed=True, lockout=lockout,
                       suspend=lockout and a.lockouts_today + 1 >= cfg.lockouts_to_suspend)
    if courier_state != "active":
        return Verdict(False, m.DENY_SUSPENDED, "courier account is suspended")
    return Verdict(True)


def attempts(tx: Handle, badge: str, device_id: str, now: float, cfg: SentinelConfig) -> Attempts:
    since = now - cfg.lockout_minutes * 60
    by_badge = tx.one("SELECT COUNT(*) FROM login_failures WHERE badge = ? AND at > ?", badge[:64], since)
    by_device = tx.one("SELECT COUNT(*) FROM login_failures WHERE device_id = ? AND at > ?", device_id, since)
    lockouts = tx.one("SELECT COUNT(*) FROM security_events WHERE kind = 'pin-lockout' AND at > ?"
                      " AND (courier_id = ? OR device_id = ?)", now - DAY, badge[:64], device_id)
    return Attempts(int(by_badge[0]) if by_badge else 0, int(by_device[0]) if by_device else 0,
                    int(lockouts[0]) if lockouts else 0)


class LoginRefused(PolicyDenied):
    """An officer's name or PIN was refused (or is locked out); the text says which."""


def verify_officer(store: Store, audit: AuditLog, name: str, pin: str, now: float, action: str,
                   cfg: SentinelConfig | None = None) -> None:
    """Check an officer's PIN with the same lockout as couriers'; a refusal
    is audited (and counted) before it is raised."""
    cfg = cfg or SentinelConfig()
    since = now - cfg.lockout_minutes * 60
    row = store.one("SELECT COUNT(*) FROM officer_failures WHERE name = ? AND at > ?", name[:64], since)
    failures = int(row[0]) if row else 0
    why = ""
    if failures >= cfg.pin_failures:
        why = "officer %s is locked out after %d wrong PINs: try again in %d minutes" % (
            name, failures, cfg.lockout_minutes)
    elif not registry.verify_officer(store, name, pin):
        why = "%s is not a security officer or the PIN is wrong" % name
    if not why:
        return
    with store.transaction() as tx:
        if failures < cfg.pin_failures:
            tx.run("INSERT INTO officer_failures (name, at) VALUES (?, ?)", name[:64], now)
        audit.append(tx, now, audit.person("officer", name), "", action, "", "refused",
                     {"reason": "locked out" if failures >= cfg.pin_failures else "bad officer name or PIN"})
        if failures + 1 == cfg.pin_failures:
            events.record(tx, "officer-lockout", "", "", "", "officer %s: %d wrong PINs"
                          % (audit.person("officer", name), failures + 1), now)
    raise LoginRefused(why)
