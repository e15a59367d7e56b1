"""Incidents: opened by the sentinel (a budget or sign tripped) or by a lost
or revoked handheld, each lists whose data the accounts and devices involved
received in the look-back window ([sentinel] lookback_hours), and then runs
one life cycle, every step audited under the acting officer's pseudonym:

    open -> assigned -> notified -> reported -> closed     (notes at any step)

At opening the incident fixes what notifying needs, so that shredding after
retention cannot prevent the notice: each affected parcel's contact fields are
decrypted in memory only and sealed again, grouped per person, under a fresh
incident data key wrapped by the key provider (`incident_keys`,
`incident_people.sealed`). Closing destroys that key and the sealed records.
No plaintext is ever stored, logged or shown to the officer."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway import ledger
from gateway.audit import AuditLog
from gateway.config import SentinelConfig
from gateway.keys import OWN_PREFIX, KekProvider, KeyProvider, KeyUnavailable
from gateway.logs import log_event
from gateway.store import Handle, Store
from gateway.vault import (
    FIELD_NAMES,
    RECEIVER_ADDRESS,
    RECEIVER_EMAIL,
    RECEIVER_NAME,
    RECEIVER_PHONE,
    Shredded,
    Vault,
)
from protocol.errors import PolicyDenied, VeilpostError

STAGES = ("open", "assigned", "notified", "reported", "closed")
KINDS = ("sentinel", "device-revoked", "device-lost")
CONTACT_FIELDS = (RECEIVER_NAME, RECEIVER_PHONE, RECEIVER_ADDRESS, RECEIVER_EMAIL)
NOTE_MAX = 2000
_COLUMNS = ("incident_id, opened, courier_id, device_id, trigger_reason, parcels, state, accounts, kind,"
            " assignee, devices")


class IncidentError(PolicyDenied):
    """A step the incident's life cycle does not allow now (the message says why)."""


@dataclass
class Person:
    """One person to notify: their parcels grouped (same phone or e-mail)."""

    person: str  # P-001...: a per-incident number, never derived from the data
    parcels: int
    fields: list[int]
    channel: str  # email, sms, or none (no mobile and no e-mail: reported, not notified)
    state: str  # pending, sending, sent, failed, unreachable
    attempts: int
    problem: str  # why the last try failed, without any personal data
    sent_at: int | None


# --- opening ---------------------------------------------------------------------------


def open_incident(tx: Handle, vault: Vault | None, audit: AuditLog, cfg: SentinelConfig, kind: str,
                  why: str, now: float, courier: str, device: str, accounts: dict[str, set[str]],
                  devices: list[str], actor: str = "sentinel") -> tuple[str, list[dict[str, object]]]:
    """Record the incident, what the accounts and devices received since the
    look-back, and (with a vault) the people to notify, sealed. Returns
    (incident id, the parcels listed)."""
    incident_id = "INC-" + secrets.token_hex(4).upper()
    since = now - cfg.lookback_hours * 3600
    parcels = ledger.received(tx, accounts, devices, since)
    listed = [{"courier": a, "devices": sorted(d for d in accounts[a] if d)} for a in sorted(accounts)]
    tx.run("INSERT INTO incidents (incident_id, opened, courier_id, device_id, trigger_reason, parcels,"
           " state, accounts, kind, assignee, devices) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, '', ?)",
           incident_id, int(now), courier, device, why, json.dumps(parcels, ensure_ascii=False),
           json.dumps(listed, ensure_ascii=False), kind, json.dumps(sorted(devices)))
    people = 0
    if vault is not None:
        try:
            people = fix_people(tx, vault, incident_id, parcels)
        except VeilpostError as e:  # the provider is down: the suspension must still happen
            log_event("incident-people-not-sealed", logging.ERROR, incident=incident_id, problem=str(e)[:200])
    _step(tx, audit, incident_id, now, "open", actor, "%s; %d parcels, %d people" % (kind, len(parcels),
                                                                                     people))
    return incident_id, parcels


def open_for_device(tx: Handle, vault: Vault | None, audit: AuditLog, cfg: SentinelConfig, device_id: str,
                    why: str, now: float, lost: bool = False) -> tuple[str, list[dict[str, object]]]:
    """A revoked or lost handheld: whose data it, and the accounts logged in
    on it during the look-back, received."""
    since = now - cfg.lookback_hours * 3600
    rows = tx.all("SELECT DISTINCT courier_id FROM sessions WHERE device_id = ?"
                  " AND (ended IS NULL OR ended >= ?)",
                  device_id, since)
    accounts = {str(r[0]): {device_id} for r in rows}
    kind = "device-lost" if lost else "device-revoked"
    return open_incident(tx, vault, audit, cfg, kind, "%s %s: %s" % (
        "lost handheld" if lost else "revoked handheld", device_id, why.strip()), now, "", device_id,
        accounts,
        [device_id], actor="revocation")


def _aad(incident_id: str, person: str = "") -> bytes:
    return ("incident:%s/%s" % (incident_id, person)).encode()


def _is_mobile(phone: str) -> bool:
    return (len(phone) == 11 and phone.isdigit() and phone[0] == "1") or phone.startswith("+")


def fix_people(tx: Handle, vault: Vault, incident_id: str, parcels: list[dict[str, object]]) -> int:
    """Seal each person's contact under the incident's own key (in memory
    only in between). Parcels already shredded are counted, not sealed."""
    groups: list[dict[str, Any]] = []
    by_contact: dict[str, dict[str, Any]] = {}
    for p in parcels:
        tn = str(p["tracking_no"])
        try:
            values = vault.read(tx, tn, list(CONTACT_FIELDS))
        except Shredded:
            continue
        except (KeyUnavailable, InvalidTag, ValueError) as e:  # withdrawn, or a key the provider refuses
            log_event("incident-contact-unavailable", logging.WARNING, incident=incident_id, tracking_no=tn,
                      problem=type(e).__name__)
            continue
        depot = tx.one("SELECT c.depot FROM parcels p JOIN routes r ON r.route_id = p.route_id"
                       " LEFT JOIN couriers c ON c.courier_id = r.courier_id WHERE p.tracking_no = ?", tn)
        keys = [k for k in ("tel:" + values.get(RECEIVER_PHONE, ""), "mail:" + values.get(RECEIVER_EMAIL, ""))
                if not k.endswith(":")] or ["parcel:" + tn]
        group = next((by_contact[k] for k in keys if k in by_contact), None)
        if group is None:
            group = {"name": values.get(RECEIVER_NAME, ""), "phone": values.get(RECEIVER_PHONE, ""),
                     "email": values.get(RECEIVER_EMAIL, ""), "address": values.get(RECEIVER_ADDRESS, ""),
                     "depot": str(depot[0] or "") if depot else "", "parcels": [], "fields": set()}
            groups.append(group)
        for k in keys:
            by_contact[k] = group
        if not group["email"] and values.get(RECEIVER_EMAIL):
            group["email"] = values[RECEIVER_EMAIL]
        group["parcels"].append(tn)
        group["fields"].update(int(f) for f in p["fields"])  # type: ignore[attr-defined]
    if not groups:
        return 0
    data_key = AESGCM.generate_key(bit_length=256)
    # A key of the incident's own in the provider: closing destroys it, so no
    # copy of the store (dead rows, WAL, a backup) opens the contacts again.
    kek_id, wrapped = vault.provider.own_wrap(incident_id, data_key, _aad(incident_id))
    tx.run("INSERT INTO incident_keys (incident_id, kek_id, wrapped) VALUES (?, ?, ?)",
           incident_id, kek_id, wrapped)
    aead = AESGCM(data_key)
    for n, g in enumerate(groups, 1):
        person = "P-%03d" % n
        g["fields"] = sorted(g["fields"])
        channel = "email" if g["email"] else "sms" if _is_mobile(g["phone"]) else "none"
        nonce = secrets.token_bytes(12)
        sealed = nonce + aead.encrypt(nonce, cbor2.dumps(g, canonical=True), _aad(incident_id, person))
        tx.run("INSERT INTO incident_people (incident_id, person, parcels, fields, channel, lang, sealed,"
               " state, attempts, problem, sent_at) VALUES (?, ?, ?, ?, ?, '', ?, ?, 0, '', NULL)",
               incident_id, person, len(g["parcels"]), ",".join(str(f) for f in g["fields"]), channel, sealed,
               "pending" if channel != "none" else "unreachable")
    return len(groups)


def seal_if_missing(store: Store, vault: Vault, incident_id: str) -> int:
    """An incident opened while the key provider was unavailable seals its
    people now, from the parcels not yet shredded. Returns how many."""
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM incident_keys WHERE incident_id = ?", incident_id) is not None or \
                tx.one("SELECT 1 FROM incident_people WHERE incident_id = ?", incident_id) is not None:
            return 0
        row = tx.one("SELECT parcels FROM incidents WHERE incident_id = ?", incident_id)
        return fix_people(tx, vault, incident_id, json.loads(row[0])) if row else 0


def open_contact(tx: Handle | Store, provider: KeyProvider, incident_id: str, person: str) -> dict[str, Any]:
    """One person's sealed contact, opened for the notifier alone."""
    key = tx.one("SELECT kek_id, wrapped FROM incident_keys WHERE incident_id = ?", incident_id)
    row = tx.one("SELECT sealed FROM incident_people WHERE incident_id = ? AND person = ?", incident_id,
                 person)
    if key is None or row is None or row[0] is None:
        raise IncidentError("incident %s holds no contact for %s (closed?)" % (incident_id, person))
    data_key = provider.unwrap(str(key[0]), bytes(key[1]), _aad(incident_id))
    blob = bytes(row[0])
    contact: dict[str, Any] = cbor2.loads(AESGCM(data_key).decrypt(blob[:12], blob[12:],
                                                                   _aad(incident_id, person)))
    return contact


# --- the life cycle ----------------------------------------------------------------------


def _step(tx: Handle, audit: AuditLog, incident_id: str, now: float, step: str, actor: str,
          note: str) -> None:
    row = tx.one("SELECT MAX(seq) FROM incident_steps WHERE incident_id = ?", incident_id)
    seq = int(row[0]) + 1 if row and row[0] is not None else 1
    tx.run("INSERT INTO incident_steps (incident_id, seq, at, step, actor, note) VALUES (?, ?, ?, ?, ?, ?)",
           incident_id, seq, int(now), step, actor, note)
    # A note is the officer's free text: the audit entry holds its digest, not its words.
    shown = "note sha256:" + hashlib.sha256(note.encode()).hexdigest()[:16] if step == "note" else note
    audit.append(tx, now, actor, "", "incident-" + step, "", "ok", "%s; %s" % (incident_id, shown))


def stage(tx: Handle | Store, incident_id: str) -> str:
    row = tx.one("SELECT state FROM incidents WHERE incident_id = ?", incident_id)
    if row is None:
        raise IncidentError("no incident %s" % incident_id)
    return str(row[0])


def advance(tx: Handle, audit: AuditLog, incident_id: str, to: str, actor: str, now: float,
            note: str) -> None:
    """Move to stage `to` (never back), audited."""
    current = stage(tx, incident_id)
    if STAGES.index(to) > STAGES.index(current):
        tx.run("UPDATE incidents SET state = ? WHERE incident_id = ?", to, incident_id)
    _step(tx, audit, incident_id, now, to, actor, note)


def _need(current: str, allowed: Iterable[str], what: str, incident_id: str) -> None:
    if current not in allowed:
        raise IncidentError("cannot %s incident %s: it is %s" % (what, incident_id, current))


def assign(store: Store, audit: AuditLog, incident_id: str, actor: str, to: str, now: float) -> None:
    """Give the incident to a named officer (`to` is checked by the caller)."""
    with store.transaction() as tx:
        _need(stage(tx, incident_id), ("open", "assigned"), "assign", incident_id)
        tx.run("UPDATE incidents SET assignee = ? WHERE incident_id = ?", to, incident_id)
        advance(tx, audit, incident_id, "assigned", actor, now, "to " + audit.person("officer", to))


def note(store: Store, audit: AuditLog, incident_id: str, actor: str, text: str, now: float) -> None:
    text = text.strip()
    if not text or len(text) > NOTE_MAX or not all(c.isprintable() or c == "\n" for c in text):
        raise IncidentError("a note is 1-%d printable characters" % NOTE_MAX)
    with store.transaction() as tx:
        _need(stage(tx, incident_id), STAGES[:-1], "add a note to", incident_id)
        _step(tx, audit, incident_id, now, "note", actor, text)


def close(store: Store, audit: AuditLog, provider: KekProvider, incident_id: str, actor: str, reason: str,
          now: float) -> int:
    """Close a reported incident: its data key and sealed contacts are
    destroyed, the key in the provider too (after the commit, as retention
    does), so no copy of the store opens them. Returns how many went."""
    if not reason.strip():
        raise IncidentError("closing an incident needs a reason")
    with store.transaction() as tx:
        current = stage(tx, incident_id)
        if current != "reported":
            missing = {"open": "assign it, notify the people and write the report",
                       "assigned": "notify the people and write the report",
                       "notified": "write the report (`veilpost incidents report`)"}.get(current, "")
            raise IncidentError("cannot close incident %s: it is %s%s" % (
                incident_id, current, "; first " + missing if missing else ""))
        gone = tx.run("UPDATE incident_people SET sealed = NULL WHERE incident_id = ? AND sealed IS NOT NULL",
                      incident_id)
        key = tx.one("SELECT kek_id FROM incident_keys WHERE incident_id = ?", incident_id)
        tx.run("DELETE FROM incident_keys WHERE incident_id = ?", incident_id)
        advance(tx, audit, incident_id, "closed", actor, now, "%s; %d sealed contacts destroyed"
                % (reason.strip(), gone))
    if key is not None and str(key[0]).startswith(OWN_PREFIX):
        provider.destroy(str(key[0]))
    store.checkpoint()
    return gone


# --- what the officer sees ------------------------------------------------------------------


def iso(at: float | int | None, zone: ZoneInfo) -> str | None:
    return None if at is None else datetime.fromtimestamp(int(at), zone).isoformat()


def field_names(ids: Iterable[object]) -> list[str]:
    return [FIELD_NAMES.get(int(str(f)), "field %s" % f) for f in ids]


def people(tx: Handle | Store, incident_id: str) -> list[Person]:
    rows = tx.all("SELECT person, parcels, fields, channel, state, attempts, problem, sent_at FROM"
                  " incident_people WHERE incident_id = ? ORDER BY person", incident_id)
    return [Person(str(r[0]), int(r[1]), [int(f) for f in str(r[2]).split(",") if f], str(r[3]), str(r[4]),
                   int(r[5]), str(r[6]), None if r[7] is None else int(r[7])) for r in rows]


def describe(tx: Handle | Store, incident_id: str, zone: ZoneInfo) -> dict[str, Any]:
    """The incident as the officer sees it: ISO times, field names, every
    device per parcel, the steps, and people as counts and delivery states."""
    row = tx.one("SELECT " + _COLUMNS + " FROM incidents WHERE incident_id = ?", incident_id)
    if row is None:
        raise IncidentError("no incident %s" % incident_id)
    parcels = json.loads(row[5])
    accounts = json.loads(row[7])
    devices = json.loads(row[10]) or sorted({d for a in accounts for d in a.get("devices", [])}
                                           | ({row[3]} if row[3] else set()))
    shown = [{"tracking_no": p["tracking_no"], "receiver_name": p.get("receiver_name", ""),
              "receiver_phone": p.get("receiver_phone", ""), "fields": field_names(p["fields"]),
              "first": iso(p.get("first"), zone), "last": iso(p.get("last"), zone),
              "devices": sorted({r["device"] for r in p.get("received_by", [])}),
              "received_by": p.get("received_by", [])} for p in parcels]
    steps = [{"at": iso(r[0], zone), "step": r[1], "by": r[2], "note": r[3]} for r in tx.all(
        "SELECT at, step, actor, note FROM incident_steps WHERE incident_id = ? ORDER BY seq", incident_id)]
    held = tx.all("SELECT kind, ident, state FROM incident_holds WHERE incident_id = ? ORDER BY kind, ident",
                  incident_id)
    folks = people(tx, incident_id)
    return {"incident": row[0], "opened": iso(row[1], zone), "opened_at": int(row[1]), "kind": row[8],
            "state": row[6], "assignee": row[9], "trigger": row[4], "courier": row[2], "devices": devices,
            "accounts": accounts, "parcels": shown,
            "holds": [{"kind": h[0], "ident": h[1], "state": h[2]} for h in held],
            "people": {"total": len(folks), "by_state": _count(p.state for p in folks),
                       "by_channel": _count(p.channel for p in folks)},
            "notices": [{"person": p.person, "parcels": p.parcels, "fields": field_names(p.fields),
                         "channel": p.channel, "state": p.state, "attempts": p.attempts, "problem": p.problem,
                         "sent": iso(p.sent_at, zone)} for p in folks],
            "steps": steps}


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def listing(tx: Handle | Store, zone: ZoneInfo) -> list[dict[str, Any]]:
    rows = tx.all("SELECT " + _COLUMNS + " FROM incidents ORDER BY opened, incident_id")
    out = []
    for r in rows:
        accounts = json.loads(r[7])
        devices = json.loads(r[10]) or sorted({d for a in accounts for d in a.get("devices", [])}
                                             | ({r[3]} if r[3] else set()))
        out.append({"incident": r[0], "opened": iso(r[1], zone), "state": r[6], "kind": r[8],
                    "assignee": r[9],
                    "couriers": [a["courier"] for a in accounts] or ([r[2]] if r[2] else []),
                    "devices": devices, "parcels": len(json.loads(r[5])), "trigger": r[4]})
    return out
