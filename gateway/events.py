"""Security events: what the security officer should look at even when
nothing was suspended (a lockout, a reveal without a label proof). They
carry no personal data: couriers by badge, parcels by tracking number."""

from __future__ import annotations

import secrets

from gateway.store import Handle


def record(tx: Handle, kind: str, courier: str, device: str, tracking_no: str, detail: str,
           now: float) -> str:
    """Write one event in the caller's transaction; returns its id."""
    event_id = "SEC-" + secrets.token_hex(4).upper()
    tx.run("INSERT INTO security_events (event_id, at, kind, courier_id, device_id, tracking_no, detail,"
           " state)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, 'open')", event_id, now, kind, courier, device, tracking_no, detail)
    return event_id
