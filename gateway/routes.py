"""A route's manifest withdrawn before it goes out for delivery (to replace
it, withdraw it and import the corrected file).

A route has gone out for delivery as soon as any of these is true, and from
then on it cannot be withdrawn (its parcels are in someone's hands):

- its courier's handheld has fetched it (the gateway's `route` answer,
  written to the audit log as action "route");
- a handheld has scanned one of its parcels (a row in `scans`);
- a reveal token was issued for one of its parcels (a row in `tokens`);
- one of its parcels has left the imported state `out_for_delivery`
  (delivered and sealed, or shredded).

Until then it is only data at the depot. Withdrawing deletes its parcels
(masked fields and vault ciphertext: the store overwrites deleted rows,
SQLite's secure_delete) and the route, and writes one audit entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.audit import AuditLog
from gateway.store import Handle, Store
from protocol.errors import VeilpostError


class RouteError(VeilpostError):
    """The route cannot be withdrawn; the message says why (the CLI exits 1: refused)."""


@dataclass(frozen=True)
class Withdrawn:
    route_id: str
    courier_id: str
    parcels: int

    def __str__(self) -> str:
        return "withdrew route %s of courier %s: %d parcels removed" % (self.route_id, self.courier_id,
                                                                        self.parcels)


def gone_out(tx: Handle | Store, route_id: str) -> str | None:
    """Why the route counts as out for delivery, or None if it does not."""
    moved = tx.one("SELECT tracking_no, state FROM parcels WHERE route_id = ? AND state != 'out_for_delivery'"
                   " ORDER BY tracking_no LIMIT 1", route_id)
    if moved is not None:
        return "parcel %s is %s" % (moved[0], str(moved[1]).replace("_", " "))
    scanned = tx.one("SELECT s.tracking_no, s.device_id FROM scans s JOIN parcels p"
                     " ON p.tracking_no = s.tracking_no WHERE p.route_id = ? ORDER BY s.at LIMIT 1", route_id)
    if scanned is not None:
        return "parcel %s was scanned by handheld %s" % (scanned[0], scanned[1])
    revealed = tx.one("SELECT t.tracking_no FROM tokens t JOIN parcels p ON p.tracking_no = t.tracking_no"
                      " WHERE p.route_id = ? ORDER BY t.issued LIMIT 1", route_id)
    if revealed is not None:
        return "a reveal token was issued for parcel %s" % revealed[0]
    like = "%" + route_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    for device, detail in tx.all("SELECT device, detail FROM audit WHERE action = 'route' AND outcome = 'ok'"
                                 " AND detail LIKE ? ESCAPE '\\'", like):
        if route_id in _fetched_routes(str(detail)):
            return "handheld %s has fetched it" % device
    return None


def _fetched_routes(detail: str) -> list[str]:
    """The routes a "route" audit entry names: {"routes": [...]}, or the
    comma-separated text of entries written before details were structured."""
    try:
        value = json.loads(detail)
    except ValueError:
        return detail.split(",")
    if isinstance(value, dict):
        routes = value.get("routes")
        if isinstance(routes, list):
            return [str(r) for r in routes]
        return str(value.get("text", "")).split(",")
    return []


def withdraw_route(store: Store, audit: AuditLog, route_id: str, now: float, actor: str,
                   reason: str) -> Withdrawn:
    """Remove a route and its parcels before it goes out for delivery; audited."""
    if not reason.strip():
        raise RouteError("say why the route is withdrawn (the reason goes in the audit log)")
    if len(reason) > 200 or not reason.isprintable():
        raise RouteError("the reason must be at most 200 printable characters")
    with store.transaction() as tx:
        row = tx.one("SELECT courier_id, state FROM routes WHERE route_id = ?", route_id)
        if row is None:
            raise RouteError("no route %s" % route_id)
        courier_id = str(row[0])
        why = gone_out(tx, route_id)
        if why is not None:
            raise RouteError("route %s has gone out for delivery (%s): it can no longer be withdrawn"
                             % (route_id, why))
        parcels = tx.run("DELETE FROM parcels WHERE route_id = ?", route_id)
        tx.run("DELETE FROM routes WHERE route_id = ?", route_id)
        audit.append(tx, now, actor, "", "route-withdraw", "", "ok",
                     {"route": route_id, "courier": audit.person("courier", courier_id), "parcels": parcels,
                      "reason": reason.strip()})
    return Withdrawn(route_id, courier_id, parcels)
