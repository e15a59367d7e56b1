"""The release ledger: one row for every (parcel, field) whose plaintext an
account received in a shift, whatever the path (online, offline, damaged
label, complaint case), with the device, the depot and the audit entry of
the grant that first released it. Every budget and sign of the gate reads
these rows, and an incident lists them. Re-issuing what an account already
holds this shift adds no row, so repetition never counts twice.

Rows are written in the same transaction as the grant's audit entry and
token, before anything is sent."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.gate import INTERACTIVE, STRIKE_SECONDS, DepotUsage, Usage
from gateway.store import Handle

BASELINE_DAYS = 7  # the same time of day over the past week
BASELINE_TTL = 30.0  # seconds a depot's baseline is reused
SESSION_DAY = 16 * 3600.0  # a courier logged in longer ago than this is not counted as at the depot
WINDOW_TTL = 2.0  # seconds a depot's window is reused (this gateway's own releases are added at once)


def record(tx: Handle, account: str, shift_start: float, tracking_no: str, fields: Iterable[int],
           device_id: str, depot: str, path: str, at: float, audit_seq: int) -> int:
    """Ledger rows for fields newly released; returns how many were new.
    Interactive releases are on screen at once; offline ones when used."""
    added = 0
    shown = None if path == "offline" else at
    for f in fields:
        added += tx.run("INSERT INTO releases (account, shift_start, tracking_no, field, device_id, depot,"
                        " path, at, audit_seq, shown_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT"
                        " (account, shift_start, tracking_no, field) DO NOTHING",
                        account, shift_start, tracking_no, int(f), device_id, depot, path, at, audit_seq,
                        shown)
    return added


def shown(tx: Handle, account: str, tracking_no: str, at: float) -> None:
    """A pre-issued token was used: its fields were on screen."""
    tx.run("UPDATE releases SET shown_at = ? WHERE account = ? AND tracking_no = ? AND path = 'offline'"
           " AND shown_at IS NULL", at, account, tracking_no)


def usage(tx: Handle, account: str, device_id: str, tracking_no: str, shift_start: float, now: float,
          delivered: int, depot: DepotWatch | None = None, depot_id: str = "") -> tuple[Usage, DepotUsage]:
    """The account's counts for one ask (two queries), and the depot's."""
    shift = tx.all("SELECT r.tracking_no, r.field, r.path, r.at, r.audit_seq, r.shown_at, p.window_end,"
                   " p.state FROM releases r LEFT JOIN parcels p ON p.tracking_no = r.tracking_no"
                   " WHERE r.account = ? AND r.shift_start = ?", account, shift_start)
    minute = now - 60
    mine = [r for r in shift if r[3] > minute and r[2] in INTERACTIVE]
    late = {r[0] for r in shift if r[6] is not None and r[6] < now and r[7] == "out_for_delivery"}
    since = now - STRIKE_SECONDS
    rows = tx.all(
        "SELECT 'r', COUNT(DISTINCT audit_seq), '' FROM releases WHERE device_id = ? AND at > ?"
        " AND path <> 'offline'"
        " UNION ALL SELECT 's', COUNT(*), '' FROM requests WHERE courier_id = ? AND strike = 1 AND at > ?"
        " UNION ALL SELECT * FROM (SELECT 'q', 0, tracking_no FROM requests WHERE courier_id = ? AND at > ?"
        " ORDER BY at DESC LIMIT 8) recent",
        device_id, minute, account, since, account, since)
    counts = {str(r[0]): int(r[1] or 0) for r in rows if r[0] != "q"}
    recent = tuple(str(r[2]) for r in rows if r[0] == "q")
    depot_usage = DepotUsage()
    if depot is not None and depot_id:
        depot_usage = depot.usage(tx, depot_id, tracking_no, now)
    return Usage(
        held=frozenset(int(r[1]) for r in shift if r[0] == tracking_no),
        minute_grants=len({r[4] for r in mine}),
        device_minute_grants=counts.get("r", 0),
        minute_parcels=frozenset(r[0] for r in mine),
        shift_releases=len(shift),
        shift_parcels=frozenset(r[0] for r in shift),
        damaged_parcels=frozenset(r[0] for r in shift if r[2] == "damaged"),
        offline_parcels=frozenset(r[0] for r in shift if r[2] == "offline"),
        shown_parcels=frozenset(r[0] for r in shift if r[5] is not None),
        delivered=delivered,
        undelivered=len(late),
        strikes=counts.get("s", 0),
        recent=recent,
    ), depot_usage


def suspicion(tx: Handle, account: str, now: float) -> tuple[int, tuple[str, ...]]:
    """The account's suspicious requests in the strike window, and the
    tracking numbers it asked for, newest first (one query)."""
    since = now - STRIKE_SECONDS
    rows = tx.all("SELECT NULL, COUNT(*) FROM requests WHERE courier_id = ? AND strike = 1 AND at > ?"
                  " UNION ALL SELECT * FROM (SELECT tracking_no, 0 FROM requests WHERE courier_id = ?"
                  " AND at > ? ORDER BY at DESC LIMIT 8) recent", account, since, account, since)
    strikes = int(rows[0][1]) if rows else 0
    return strikes, tuple(str(r[0]) for r in rows[1:])


@dataclass
class _Baseline:
    value: float
    until: float
    couriers: int = 0


class DepotWatch:
    """The depot-wide view: what every account of a depot received in the
    last window, against the depot's own baseline for such a window."""

    def __init__(self, window_minutes: int, baseline_hours: int, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.window = window_minutes * 60.0
        self.hours = baseline_hours
        self._clock = clock
        self._baselines: dict[str, _Baseline] = {}
        # depot -> (valid until, {parcel: its last release in the window})
        self._windows: dict[str, tuple[float, dict[str, float]]] = {}

    def usage(self, tx: Handle, depot: str, tracking_no: str, now: float) -> DepotUsage:
        """Distinct parcels released in the depot's window, and whether this
        parcel is one of them. The window is read from the store at most every
        WINDOW_TTL seconds (other gateways' releases reach it that late);
        this gateway's own releases count at once (`released`)."""
        window = self._windows.get(depot)
        if window is None or window[0] <= self._clock():
            paths = ", ".join("'%s'" % p for p in INTERACTIVE)
            rows = tx.all("SELECT tracking_no, MAX(at) FROM releases WHERE depot = ? AND at > ?"
                          " AND path IN (%s) GROUP BY tracking_no" % paths, depot, now - self.window)
            if len(self._windows) > 1024:
                self._windows.clear()
            window = (self._clock() + WINDOW_TTL, {str(r[0]): float(r[1]) for r in rows})
            self._windows[depot] = window
        parcels = window[1]
        cutoff = now - self.window
        count = sum(1 for at in parcels.values() if at > cutoff)
        has = parcels.get(tracking_no, 0.0) > cutoff
        baseline, couriers = self.baseline(tx, depot, now)
        return DepotUsage(count=count, has_parcel=has, baseline=baseline, couriers=couriers)

    def released(self, depot: str, tracking_no: str, at: float) -> None:
        """This gateway released the parcel just now (after its commit, or in
        the transaction: a rolled back release only makes the sign earlier)."""
        window = self._windows.get(depot)
        if window is not None:
            window[1][tracking_no] = max(at, window[1].get(tracking_no, 0.0))

    def accounts(self, tx: Handle, depot: str, now: float) -> dict[str, set[str]]:
        """Every account with releases in the depot's window, and its devices."""
        paths = ", ".join("'%s'" % p for p in INTERACTIVE)
        out: dict[str, set[str]] = {}
        for account, device in tx.all("SELECT DISTINCT account, device_id FROM releases WHERE depot = ?"
                                      " AND at > ? AND path IN (%s)" % paths, depot, now - self.window):
            out.setdefault(account, set()).add(device)
        return out

    def baseline(self, tx: Handle, depot: str, now: float) -> tuple[float, int]:
        """The larger of: the mean per window over the hours before this
        window, and the mean of this window's time of day over the past week;
        and how many of the depot's couriers are logged in."""
        cached = self._baselines.get(depot)
        if cached is not None and cached.until > self._clock():
            return cached.value, cached.couriers
        paths = ", ".join("'%s'" % p for p in INTERACTIVE)
        count = "SELECT COUNT(DISTINCT tracking_no) FROM releases WHERE depot = ? AND at > ? AND at <= ?" \
                " AND path IN (%s)" % paths
        span = self.hours * 3600.0
        recent = 0.0
        if span > 0:
            row = tx.one(count, depot, now - self.window - span, now - self.window)
            recent = (int(row[0]) if row else 0) * self.window / span
        days = []
        for d in range(1, BASELINE_DAYS + 1):
            row = tx.one(count, depot, now - d * 86400 - self.window, now - d * 86400)
            days.append(int(row[0]) if row else 0)
        value = max(recent, sum(days) / len(days))
        # Logged in this day: a session never logged out does not count forever.
        row = tx.one("SELECT COUNT(DISTINCT s.courier_id) FROM sessions s JOIN couriers c"
                     " ON c.courier_id = s.courier_id WHERE s.ended IS NULL AND s.started > ?"
                     " AND c.depot = ?", now - SESSION_DAY, depot)
        couriers = int(row[0]) if row else 0
        if len(self._baselines) > 1024:
            self._baselines.clear()
        self._baselines[depot] = _Baseline(value, self._clock() + BASELINE_TTL, couriers)
        return value, couriers


def received(tx: Handle, accounts: Iterable[str], devices: Iterable[str],
             since: float) -> list[dict[str, object]]:
    """Whose data these accounts, or anyone on these devices, received since
    `since`: one entry per parcel with its masked receiver, the fields, and
    how and where."""
    names, devs = sorted(set(accounts)) or [""], sorted(set(devices)) or [""]
    rows = tx.all("SELECT r.tracking_no, r.field, r.account, r.device_id, r.path, r.at,"
                  " p.masked_receiver_name, p.masked_receiver_phone FROM releases r LEFT JOIN parcels p"
                  " ON p.tracking_no = r.tracking_no WHERE (r.account IN (%s) OR r.device_id IN (%s))"
                  " AND r.at >= ? ORDER BY r.at, r.tracking_no, r.field"
                  % (", ".join("?" for _ in names), ", ".join("?" for _ in devs)), *names, *devs, since)
    out: dict[str, dict[str, object]] = {}
    for tn, fid, account, device, path, at, name, phone in rows:
        p = out.get(tn)
        if p is None:
            p = out[tn] = {"tracking_no": tn, "receiver_name": name or "", "receiver_phone": phone or "",
                           "fields": [], "first": at, "last": at, "received_by": []}
        fields = p["fields"]
        assert isinstance(fields, list)
        if int(fid) not in fields:
            fields.append(int(fid))
            fields.sort()
        p["last"] = at
        via = p["received_by"]
        assert isinstance(via, list)
        entry = {"courier": account, "device": device, "path": path}
        if entry not in via:
            via.append(entry)
    return list(out.values())
