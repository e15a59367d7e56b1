"""After delivery: sealing, complaint cases that reopen a sealed parcel with
two people's approval, and crypto-shredding once the retention period ends.
Every step writes an audit entry in the same transaction.

Shredding is done twice over. Each due parcel's row loses its wrapped data
key and ciphertext; and once a period (a UTC delivery day) is over by the
retention days, its period key is destroyed in the key provider, so that the
old row versions a database keeps (dead tuples, WAL, backups) open nothing
either. Before a period key goes, every parcel under it that is still needed
-- delivered late (not due yet), under an incident's hold, or named by a
complaint case not yet over -- is re-wrapped under a living period key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gateway import logins
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.keys import DAY, day_of, period_day
from gateway.logs import log_event
from gateway.store import Handle, Store
from gateway.vault import Vault
from protocol.errors import PolicyDenied

CASE_ID_MAX = 64


class CaseError(PolicyDenied):
    pass


def deliver(tx: Handle, audit: AuditLog, tracking_no: str, courier: str, device: str, proof_kind: int,
            now: float) -> list[str]:
    """Seal the parcel on proof of delivery. Returns the devices holding
    unexpired tokens for it: each is told to drop them (a `seal` message)."""
    changed = tx.run("UPDATE parcels SET state = 'delivered', delivered_at = ? WHERE tracking_no = ?"
                     " AND state = 'out_for_delivery'", now, tracking_no)
    holders = sorted({r[0] for r in tx.all(
        "SELECT DISTINCT device_id FROM tokens WHERE tracking_no = ? AND exp >= ?", tracking_no, int(now))}
        | {device})
    audit.append(tx, now, audit.person("courier", courier), device, "deliver", tracking_no,
                 "sealed" if changed else "already-sealed", {"proof_kind": proof_kind})
    return holders


def open_case(store: Store, audit: AuditLog, case_id: str, tracking_no: str, reason: str,
              opened_by: str, now: float, for_account: str = "", fields: tuple[int, ...] = (1, 2, 3)) -> None:
    """A complaint case for one parcel, naming who may see which fields once
    two officers approve it: a courier's badge (the handheld path) or
    "agent:NAME" (a complaint agent, through the CLI)."""
    if not case_id or len(case_id) > CASE_ID_MAX or not case_id.isprintable():
        raise CaseError("case id must be 1-%d printable characters" % CASE_ID_MAX)
    if not reason.strip():
        raise CaseError("a complaint case needs a reason")
    if not for_account.strip():
        raise CaseError("a complaint case names who may see the parcel (a courier badge or agent:NAME)")
    if not fields or any(f not in (1, 2, 3) for f in fields):
        raise CaseError("a case opens some of the fields 1 name, 2 phone, 3 address")
    with store.transaction() as tx:
        row = tx.one("SELECT state FROM parcels WHERE tracking_no = ?", tracking_no)
        if row is None:
            raise CaseError("no parcel " + tracking_no)
        if row[0] == "shredded":
            raise CaseError("parcel %s was destroyed after retention; nothing to open" % tracking_no)
        if tx.one("SELECT 1 FROM cases WHERE case_id = ?", case_id):
            raise CaseError("case %s already exists" % case_id)
        tx.run("INSERT INTO cases (case_id, tracking_no, reason, opened_by, opened, open_until, account,"
               " fields) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)", case_id, tracking_no, reason, opened_by, now,
               for_account.strip(), ",".join(str(f) for f in sorted(set(fields))))
        audit.append(tx, now, audit.person("staff", opened_by), "", "case-open", tracking_no, "pending",
                     {"case": case_id, "for": _who(audit, for_account.strip()),
                      "fields": sorted(set(fields))})


def _who(audit: AuditLog, account: str) -> str:
    if account.startswith("agent:"):
        return audit.person("agent", account[6:])
    return audit.person("courier", account)


@dataclass
class Approval:
    approvals: int
    open_until: float | None


def approve_case(store: Store, audit: AuditLog, cfg: Config, case_id: str, officer: str, pin: str,
                 now: float) -> Approval:
    """A second approval from a different officer opens the parcel for
    `case_open_minutes`; one person can never open it alone."""
    try:
        logins.verify_officer(store, audit, officer, pin, now, "case-approve", cfg.sentinel)
    except logins.LoginRefused as e:
        raise CaseError("approval refused: %s" % e) from None
    with store.transaction() as tx:
        row = tx.one("SELECT tracking_no, open_until FROM cases WHERE case_id = ?", case_id)
        if row is None:
            raise CaseError("no case " + case_id)
        tracking_no = row[0]
        if tx.one("SELECT 1 FROM approvals WHERE case_id = ? AND approver = ?", case_id, officer):
            raise CaseError("%s has already approved case %s; a second person must approve"
                            % (officer, case_id))
        tx.run("INSERT INTO approvals (case_id, approver, at) VALUES (?, ?, ?)", case_id, officer, now)
        count = int(tx.one("SELECT COUNT(*) FROM approvals WHERE case_id = ?", case_id)[0])  # type: ignore[index]
        until = row[1]
        if count >= 2 and until is None:
            until = now + cfg.retention.case_open_minutes * 60
            tx.run("UPDATE cases SET open_until = ? WHERE case_id = ?", until, case_id)
        audit.append(tx, now, audit.person("officer", officer), "", "case-approve", tracking_no,
                     "opened" if count == 2 else "approved", {"case": case_id, "approvals": count})
    return Approval(count, until)


def held_parcels(tx: Handle | Store, now: float) -> set[str]:
    """Parcels retention must keep readable: those an incident still holding
    someone lists, and those a complaint case names that is pending or open."""
    held: set[str] = set()
    for (listed,) in tx.all("SELECT parcels FROM incidents i WHERE EXISTS (SELECT 1 FROM incident_holds h"
                            " WHERE h.incident_id = i.incident_id AND h.state = 'held')"):
        try:
            held.update(str(t) for t in json.loads(listed) if isinstance(t, str))
        except (ValueError, TypeError):
            continue
    held.update(r[0] for r in tx.all("SELECT tracking_no FROM cases WHERE open_until IS NULL"
                                     " OR open_until > ?", now))
    return held


@dataclass
class RetentionRun:
    shredded: list[str] = field(default_factory=list)  # rows whose data key went
    destroyed: list[str] = field(default_factory=list)  # period keys destroyed in the provider
    moved: dict[str, str] = field(default_factory=dict)  # parcel still needed -> its new period key
    held: list[str] = field(default_factory=list)  # due but kept: held by an incident or a case


def run_retention(store: Store, vault: Vault, audit: AuditLog, cfg: Config, now: float) -> list[str]:
    """Shred data keys of parcels delivered more than N days ago, and of
    parcels never delivered whose window ended more than N days ago; then
    destroy the period keys whose every parcel is due. Returns what was shredded."""
    return retention_run(store, vault, audit, cfg, now).shredded


def retention_run(store: Store, vault: Vault, audit: AuditLog, cfg: Config, now: float) -> RetentionRun:
    days = cfg.retention.days_after_delivery
    cutoff = now - days * DAY
    run = RetentionRun()
    held = held_parcels(store, now)
    rows = store.all("SELECT tracking_no FROM parcels WHERE data_key IS NOT NULL AND"
                     " ((delivered_at IS NOT NULL AND delivered_at < ?) OR"
                     " (delivered_at IS NULL AND window_end < ?))", cutoff, cutoff)
    for (tracking_no,) in rows:
        if tracking_no in held:
            run.held.append(tracking_no)
            continue
        with store.transaction() as tx:
            if vault.shred(tx, tracking_no, now):
                tx.run("UPDATE parcels SET state = 'shredded' WHERE tracking_no = ?", tracking_no)
                audit.append(tx, now, "retention", "", "shred", tracking_no, "ok", {"days": days})
                run.shredded.append(tracking_no)
    _end_periods(store, vault, audit, run, held, cutoff, now)
    if run.shredded or run.destroyed:
        store.checkpoint()
    return run


def _end_periods(store: Store, vault: Vault, audit: AuditLog, run: RetentionRun, held: set[str],
                 cutoff: float, now: float) -> None:
    """Destroy each period key whose day ended before the cutoff, after moving
    the parcels still under it to a living period key: a held parcel to
    today's, a parcel delivered late to its delivery day's (which is not over)."""
    provider = vault.provider
    today = day_of(now)
    for key_id in provider.period_ids():
        day = period_day(key_id)
        if day is None or (day + 1) * DAY > cutoff:
            continue
        with store.transaction() as tx:
            left = tx.all("SELECT tracking_no, delivered_at, window_end FROM parcels"
                          " WHERE kek_id = ? AND data_key IS NOT NULL", key_id)
            for tracking_no, delivered_at, window_end in left:
                due_from = float(delivered_at if delivered_at is not None else window_end)
                target = today if tracking_no in held or due_from < cutoff else day_of(due_from)
                run.moved[tracking_no] = vault.move(tx, tracking_no, target)
            audit.append(tx, now, "retention", "", "period-key-destroy", "", "ok",
                         {"key": key_id, "moved": len(left)})
        # Only once the moves are committed: a crash before this keeps the key for the next run.
        provider.destroy(key_id)
        run.destroyed.append(key_id)
        log_event("period-key-destroyed", key=key_id, moved=len(left))
