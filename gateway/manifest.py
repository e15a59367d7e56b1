"""Route manifest import: one CSV file, checked row by row, stored in one
transaction (a bad row imports nothing). Personal fields are masked with
protocol.masking and sealed in the vault; plaintext is never stored.

Columns: tracking_no, route_id, courier_id, receiver_name, receiver_phone,
receiver_address, sender_name, sender_phone, sender_address,
delivery_window_start, delivery_window_end (ISO 8601; without an offset the
gateway's configured time zone applies), and optionally sort_code. Without a
sort_code column a parcel's sort code is derived from its route id: the
route id's letters and digits, upper-cased, last six kept ("R-07" -> "R07").
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from gateway.audit import AuditLog
from gateway.store import Store
from gateway.vault import (
    RECEIVER_ADDRESS,
    RECEIVER_NAME,
    RECEIVER_PHONE,
    SENDER_ADDRESS,
    SENDER_NAME,
    SENDER_PHONE,
    Vault,
)
from protocol import masking
from protocol.errors import ConfigurationError

REQUIRED = (
    "tracking_no", "route_id", "courier_id", "receiver_name", "receiver_phone", "receiver_address",
    "sender_name", "sender_phone", "sender_address", "delivery_window_start", "delivery_window_end",
)
OPTIONAL = ("sort_code",)
TRACKING_NO = re.compile(r"[A-Z0-9]{6,32}\Z")
ROUTE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
SORT_CODE = re.compile(r"[A-Za-z0-9_-]{1,16}\Z")
PHONE = re.compile(r"\+?[0-9][0-9 -]{4,22}[0-9]\Z")
MAX_TEXT = 200


class ManifestError(ConfigurationError):
    """What is wrong with the file, naming the row and column."""


@dataclass
class ImportSummary:
    parcels: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    couriers: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        per_route = ", ".join("%s: %d" % (r, n) for r, n in sorted(self.routes.items()))
        return "imported %d parcels on %d routes for %d couriers (%s)" % (
            self.parcels, len(self.routes), len(self.couriers), per_route)


def derive_sort_code(route_id: str) -> str:
    return "".join(c for c in route_id if c.isalnum()).upper()[-6:]


def _time(text: str, zone: tzinfo, where: str) -> float:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ManifestError("%s: %r is not an ISO 8601 time" % (where, text)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _text(value: str, where: str) -> str:
    value = value.strip()
    if not value:
        raise ManifestError(where + ": empty")
    if len(value) > MAX_TEXT or not value.isprintable():
        raise ManifestError(where + ": too long or contains control characters")
    return value


def _read(raw: bytes) -> list[dict[str, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError("file is not UTF-8 (byte %d)" % e.start) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ManifestError("row 1: missing column(s) " + ", ".join(missing))
    unknown = [c for c in header if c not in REQUIRED and c not in OPTIONAL]
    if unknown:
        raise ManifestError("row 1: unknown column(s) " + ", ".join(unknown))
    rows = []
    for record in reader:
        if None in record or any(v is None for v in record.values()):
            raise ManifestError("row %d: wrong number of cells" % reader.line_num)
        record["__row"] = str(reader.line_num)
        rows.append(record)
    if not rows:
        raise ManifestError("file has no parcels")
    return rows


def import_manifest(store: Store, vault: Vault, audit: AuditLog, source: Path | bytes, zone: tzinfo,
                    now: float, actor: str = "operator") -> ImportSummary:
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    rows = _read(raw)
    summary = ImportSummary()
    seen: set[str] = set()
    route_courier: dict[str, str] = {}
    with store.transaction() as tx:
        for r in rows:
            n = r["__row"]

            def at(col: str, n: str = n) -> str:
                return "row %s, column %s" % (n, col)

            tracking_no = r["tracking_no"].strip()
            if not TRACKING_NO.match(tracking_no):
                raise ManifestError(at("tracking_no") + ": %r is not 6-32 of A-Z 0-9" % tracking_no)
            if tracking_no in seen:
                raise ManifestError(at("tracking_no") + ": %s appears twice in the file" % tracking_no)
            if tx.one("SELECT 1 FROM parcels WHERE tracking_no = ?", tracking_no):
                raise ManifestError(at("tracking_no") + ": %s was already imported" % tracking_no)
            seen.add(tracking_no)
            route_id = r["route_id"].strip()
            if not ROUTE_ID.match(route_id):
                raise ManifestError(at("route_id") + ": %r is not 1-32 of A-Z a-z 0-9 _ -" % route_id)
            courier_id = r["courier_id"].strip()
            if tx.one("SELECT 1 FROM couriers WHERE courier_id = ?", courier_id) is None:
                raise ManifestError(at("courier_id") + ": unknown courier %r" % courier_id)
            known = route_courier.get(route_id)
            if known is None:
                row = tx.one("SELECT courier_id FROM routes WHERE route_id = ?", route_id)
                known = route_courier[route_id] = courier_id if row is None else str(row[0])
            if known != courier_id:
                raise ManifestError(at("courier_id") + ": route %s belongs to courier %s, not %s"
                                    % (route_id, known, courier_id))
            values: dict[int, str] = {}
            for fid, col in ((RECEIVER_NAME, "receiver_name"), (RECEIVER_ADDRESS, "receiver_address"),
                             (SENDER_NAME, "sender_name"), (SENDER_ADDRESS, "sender_address")):
                values[fid] = _text(r[col], at(col))
            for fid, col in ((RECEIVER_PHONE, "receiver_phone"), (SENDER_PHONE, "sender_phone")):
                phone = r[col].strip()
                if not PHONE.match(phone):
                    raise ManifestError(at(col) + ": not a phone number")
                values[fid] = phone
            start = _time(r["delivery_window_start"], zone, at("delivery_window_start"))
            end = _time(r["delivery_window_end"], zone, at("delivery_window_end"))
            if end <= start:
                raise ManifestError(at("delivery_window_end") + ": ends before it starts")
            sort_code = (r.get("sort_code") or "").strip() or derive_sort_code(route_id)
            if not SORT_CODE.match(sort_code):
                raise ManifestError(at("sort_code") + ": %r is not 1-16 of A-Z a-z 0-9 _ -" % sort_code)
            if tx.one("SELECT 1 FROM routes WHERE route_id = ?", route_id) is None:
                tx.run("INSERT INTO routes (route_id, courier_id, sort_code, state, imported)"
                       " VALUES (?, ?, ?, 'active', ?)", route_id, courier_id, sort_code, now)
            tx.run(
                "INSERT INTO parcels (tracking_no, route_id, sort_code, state, window_start, window_end,"
                " masked_receiver_name, masked_receiver_phone, masked_receiver_address,"
                " masked_sender_name, masked_sender_phone, masked_sender_address)"
                " VALUES (?, ?, ?, 'out_for_delivery', ?, ?, ?, ?, ?, ?, ?, ?)",
                tracking_no, route_id, sort_code, start, end,
                masking.mask_name(values[RECEIVER_NAME]), masking.mask_phone(values[RECEIVER_PHONE]),
                masking.mask_address(values[RECEIVER_ADDRESS]), masking.mask_name(values[SENDER_NAME]),
                masking.mask_phone(values[SENDER_PHONE]), masking.mask_address(values[SENDER_ADDRESS]),
            )
            vault.put(tx, tracking_no, values)
            summary.parcels += 1
            summary.routes[route_id] += 1
            summary.couriers.add(courier_id)
        audit.append(tx, now, actor, "", "route-import", "", "ok",
                     "%d parcels, routes %s" % (summary.parcels, ",".join(sorted(summary.routes))))
    return summary
