"""Reading the audit log for people: `veilpost audit export` (every entry as
a JSON line with field names and ISO times) and `veilpost audit search`
(an officer's query by person, device, parcel, action, outcome and time).
People are searched by their pseudonym, which the caller computes through
the key provider (`AuditLog.person`); the log never holds a badge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from gateway.audit import ENTRY_COLUMNS, rows
from gateway.store import Store

MAX_RESULTS = 10_000


def iso(at_ms: int) -> str:
    """UTC with milliseconds: 2030-01-02T08:00:00.123Z."""
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (at_ms % 1000)


def entry(row: tuple[Any, ...]) -> dict[str, Any]:
    """One entry row (ENTRY_COLUMNS) as named fields; a version 1 entry's
    free text comes out as {"text": ...}, its float seconds as milliseconds."""
    seq, at, actor, device, action, parcel, outcome, detail, prev, digest, v, at_ms = row
    v = int(v or 1)
    at_ms = int(at_ms) if at_ms is not None else int(round(float(at) * 1000))
    if v == 1:
        structured: Any = {"text": detail} if detail else {}
    else:
        try:
            structured = json.loads(detail)
        except (TypeError, ValueError):
            structured = {"unreadable": str(detail)[:200]}
    return {"v": v, "seq": int(seq), "at": iso(at_ms), "at_ms": at_ms, "actor": actor, "device": device,
            "action": action, "parcel": parcel, "outcome": outcome, "detail": structured,
            "prev_hash": bytes(prev).hex(), "hash": bytes(digest).hex()}


def export(store: Store, out: IO[str]) -> int:
    """Write every entry as one JSON object per line; returns how many."""
    n = 0
    for row in rows(store):
        out.write(json.dumps(entry(row), ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


@dataclass(frozen=True)
class Query:
    """What an officer asks for; empty fields match everything."""

    actor: str = ""  # a pseudonym (courier:..., it:..., officer:...) or a role word (gateway, sentinel)
    device: str = ""
    parcel: str = ""
    action: str = ""
    outcome: str = ""
    since: float | None = None  # Unix seconds, inclusive
    until: float | None = None  # Unix seconds, exclusive
    limit: int = 1000


def search(store: Store, q: Query) -> Iterator[dict[str, Any]]:
    """The entries matching `q`, oldest first, at most q.limit (<= MAX_RESULTS)."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("actor", q.actor), ("device", q.device), ("parcel", q.parcel),
                          ("action", q.action), ("outcome", q.outcome)):
        if value:
            where.append(column + " = ?")
            args.append(value)
    if q.since is not None:
        where.append("at >= ?")
        args.append(float(q.since))
    if q.until is not None:
        where.append("at < ?")
        args.append(float(q.until))
    limit = max(1, min(int(q.limit), MAX_RESULTS))
    sql = "SELECT " + ENTRY_COLUMNS + " FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    for row in store.all(sql + " ORDER BY seq LIMIT ?", *args, limit):
        yield entry(row)
