"""Complaint cases that work, once two officers approved them
(gateway/retention.py opens and approves them):

- a complaint agent named by the case (`agent:NAME`) sees the fields it
  names through `veilpost case view CASE --as NAME`, only while the case is
  open; the disclosure gate decides the view and audits it;
- a courier named by the case gets the sealed parcel back in the route
  manifest sent after a fresh login, marked with `case_until`, so that the
  handheld does not refuse it locally; the gate grants it to that courier
  only, and only the case's fields, until the case closes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.disclosure import Disclosure
from gateway.retention import CaseError
from gateway.store import Handle, Store
from gateway.vault import FIELD_NAMES


def on_route(tx: Handle, courier: str, route: str, now: float) -> list[dict[str, object]]:
    """Delivered parcels of `route` an open case names `courier` for (masked, as the manifest has them)."""
    rows = tx.all("SELECT p.tracking_no, p.masked_receiver_name, p.masked_receiver_phone,"
                  " p.masked_receiver_address, p.sort_code, p.window_start, p.window_end, MAX(c.open_until)"
                  " FROM parcels p JOIN cases c ON c.tracking_no = p.tracking_no WHERE p.route_id = ?"
                  " AND p.state = 'delivered' AND c.account = ? AND c.open_until > ?"
                  " GROUP BY p.tracking_no, p.masked_receiver_name, p.masked_receiver_phone,"
                  " p.masked_receiver_address, p.sort_code, p.window_start, p.window_end"
                  " ORDER BY p.tracking_no",
                  route, courier, now)
    return [{"tracking_no": r[0], "name": r[1], "phone": r[2], "address": r[3], "sort_code": r[4],
             "window_start": int(r[5]), "window_end": int(r[6]), "case_until": int(r[7])} for r in rows]


def view(store: Store, desk: Disclosure, case_id: str, agent: str, now: float,
         zone: ZoneInfo) -> dict[str, str]:
    """What the case opens, for the agent it names: {field name: value}.
    CaseError says why not (another agent's case, not approved, closed)."""
    row = store.one("SELECT tracking_no, account, fields, open_until FROM cases WHERE case_id = ?", case_id)
    if row is None:
        raise CaseError("no case " + case_id)
    tracking_no, account, fields, until = str(row[0]), str(row[1]), str(row[2]), row[3]
    if account != "agent:" + agent:
        raise CaseError("case %s is not for complaint agent %s" % (case_id, agent))
    if until is None:
        raise CaseError("case %s is not approved yet: two different officers must approve it" % case_id)
    if now >= float(until):
        raise CaseError("case %s closed at %s" % (case_id, datetime.fromtimestamp(int(until),
                                                                                  zone).isoformat()))
    wanted = [int(f) for f in fields.split(",") if f]
    with store.transaction() as tx:
        out = desk.case_view(tx, agent, tracking_no, wanted, now)
    if not out.decision.granted:
        raise CaseError("case %s: %s" % (case_id, out.decision.reason))
    return {FIELD_NAMES[f]: v for f, v in sorted(out.values.items())}
