"""Route manifest import: one CSV file, read as a stream (one line at a time,
never the whole file), every row checked, stored in one transaction: a file
with any bad row imports nothing, and the error lists every bad row and
column. `check_manifest` runs the same checks without storing anything.
Personal fields are masked with protocol.masking and sealed in the vault;
plaintext is never stored.

Columns: tracking_no, route_id, courier_id, receiver_name, receiver_phone,
receiver_address, sender_name, sender_phone, sender_address,
delivery_window_start, delivery_window_end (ISO 8601; without an offset the
gateway's configured time zone applies), and optionally sort_code and
receiver_email (kept in the vault, never sent to a handheld: an incident's
notice goes there). Without a
sort_code column a parcel's sort code is derived from its route id: the
route id's letters and digits, upper-cased, last six kept ("R-07" -> "R07").
Phones may be written with parentheses, spaces, hyphens, +86 and an
extension; they are stored in one normal form (gateway/manifest_rows.py).
The file is UTF-8 by default, or GBK / GB18030 when told so.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import BinaryIO

from gateway.audit import AuditLog
from gateway.manifest_rows import OPTIONAL, REQUIRED, Parcel, check_row, derive_sort_code
from gateway.store import Handle, Store
from gateway.vault import (
    RECEIVER_ADDRESS,
    RECEIVER_EMAIL,
    RECEIVER_NAME,
    RECEIVER_PHONE,
    SENDER_ADDRESS,
    SENDER_NAME,
    SENDER_PHONE,
    Vault,
)
from protocol import masking
from protocol.errors import ConfigurationError

__all__ = ["ENCODINGS", "ImportSummary", "ManifestError", "ManifestReport", "Problem",
           "check_manifest", "derive_sort_code", "import_manifest"]

ENCODINGS = ("utf-8", "gbk", "gb18030")
FIELD_IDS = {"receiver_name": RECEIVER_NAME, "receiver_phone": RECEIVER_PHONE,
             "receiver_address": RECEIVER_ADDRESS, "sender_name": SENDER_NAME, "sender_phone": SENDER_PHONE,
             "sender_address": SENDER_ADDRESS, "receiver_email": RECEIVER_EMAIL}
PROGRESS_EVERY = 500  # rows between progress calls
SHOWN = 10  # problems spelled out in the error's message; all are in .problems
Progress = Callable[[int, int, int | None], None]  # rows so far, bytes read, file size (None: unknown)


@dataclass(frozen=True)
class Problem:
    row: int  # line of the file where the row starts (the header is row 1)
    column: str  # "" when the whole row is wrong
    message: str

    def __str__(self) -> str:
        where = "row %d, column %s" % (self.row, self.column) if self.column else "row %d" % self.row
        return "%s: %s" % (where, self.message)


class ManifestError(ConfigurationError):
    """What is wrong with the file: every bad row and column in `problems`,
    the first few in the message."""

    def __init__(self, problems: str | list[Problem]) -> None:
        self.problems = [Problem(0, "", problems)] if isinstance(problems, str) else list(problems)
        shown = "; ".join(str(p) if p.row else p.message for p in self.problems[:SHOWN])
        more = len(self.problems) - SHOWN
        super().__init__(shown + ("; and %d more" % more if more > 0 else ""))


@dataclass
class ImportSummary:
    parcels: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    couriers: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        per_route = ", ".join("%s: %d" % (r, n) for r, n in sorted(self.routes.items()))
        return "imported %d parcels on %d routes for %d couriers (%s)" % (
            self.parcels, len(self.routes), len(self.couriers), per_route)


@dataclass
class ManifestReport:
    """What `check_manifest` found: the rows read, every problem, and what an
    import would store."""

    rows: int
    problems: list[Problem]
    summary: ImportSummary

    @property
    def ok(self) -> bool:
        return not self.problems


# --- reading -------------------------------------------------------------------------


def _open(source: Path | bytes | BinaryIO) -> tuple[BinaryIO, int | None, bool]:
    """A binary stream, its size if known, and whether we opened it."""
    if isinstance(source, bytes):
        return io.BytesIO(source), len(source), True
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            stream = path.open("rb")
        except OSError as e:
            raise ManifestError("%s cannot be read: %s" % (path.name, e.strerror or e)) from None
        return stream, os.fstat(stream.fileno()).st_size, True
    return source, None, False


def _decoded(stream: BinaryIO, encoding: str, problems: list[Problem]) -> Iterator[str]:
    """The file's lines as text. A line that does not decode is a problem of
    its own (with a hint at the encoding it looks like) and is read on with
    replacement characters, so the rest of the file is still checked."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError as e:
            problems.append(Problem(number, "", "not %s (byte %d of the line)%s"
                                    % (encoding.upper(), e.start + 1, _hint(raw, encoding))))
            yield raw.decode(encoding, errors="replace")


def _hint(raw: bytes, encoding: str) -> str:
    for other in ENCODINGS:
        if other != encoding:
            try:
                raw.decode(other)
            except UnicodeDecodeError:
                continue
            return "; it reads as %s: give the encoding %s" % (other.upper(), other)
    return ""


def _records(stream: BinaryIO, encoding: str,
             problems: list[Problem]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(_decoded(stream, encoding, problems))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ManifestError("the file is empty") from None
    except csv.Error as e:
        raise ManifestError("row 1: %s" % e) from None
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED and c not in OPTIONAL]
    if missing:
        raise ManifestError("row 1: missing column(s) " + ", ".join(missing))
    if unknown:
        raise ManifestError("row 1: unknown column(s) " + ", ".join(unknown))
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problems.append(Problem(start, "", "not CSV: %s" % e))
            start = reader.line_num + 1
            continue
        row, start = start, reader.line_num + 1
        if not cells or cells == [""]:
            continue  # a blank line
        if len(cells) != len(header):
            problems.append(Problem(row, "", "%d cells, the header has %d" % (len(cells), len(header))))
            continue
        yield row, dict(zip(header, cells, strict=True))


# --- checking ------------------------------------------------------------------------


class _Checks:
    """What a row needs from the database and from the rows before it."""

    def __init__(self, tx: Handle | Store) -> None:
        self.tx = tx
        self.seen: set[str] = set()
        self.route_courier: dict[str, str] = {}
        self.couriers: dict[str, bool] = {}

    def row(self, row: int, record: dict[str, str], zone: tzinfo) -> tuple[Parcel | None, list[Problem]]:
        parcel, cells = check_row(record, zone, FIELD_IDS)
        problems = [Problem(row, column, message) for column, message in cells]
        tracking_no = record["tracking_no"].strip()
        if tracking_no in self.seen:
            problems.append(Problem(row, "tracking_no", "%s appears twice in the file" % tracking_no))
        elif self.tx.one("SELECT 1 FROM parcels WHERE tracking_no = ?", tracking_no):
            problems.append(Problem(row, "tracking_no", "%s was already imported" % tracking_no))
        self.seen.add(tracking_no)
        courier_id, route_id = record["courier_id"].strip(), record["route_id"].strip()
        known_courier = self.couriers.get(courier_id)
        if known_courier is None:
            known_courier = self.couriers[courier_id] = self.tx.one(
                "SELECT 1 FROM couriers WHERE courier_id = ?", courier_id) is not None
        if not known_courier:
            problems.append(Problem(row, "courier_id", "unknown courier %r" % courier_id[:40]))
        else:
            owner = self.route_courier.get(route_id)
            if owner is None:
                found = self.tx.one("SELECT courier_id FROM routes WHERE route_id = ?", route_id)
                owner = self.route_courier[route_id] = courier_id if found is None else str(found[0])
            if owner != courier_id:
                problems.append(Problem(row, "courier_id", "route %s belongs to courier %s, not %s"
                                        % (route_id, owner, courier_id)))
        return (None if problems else parcel), problems


def _walk(tx: Handle | Store, source: Path | bytes | BinaryIO, zone: tzinfo, encoding: str,
          progress: Progress | None, store: Callable[[Parcel], None] | None) -> ManifestReport:
    if encoding.lower().replace("_", "-") not in ENCODINGS:
        raise ManifestError("encoding %r is not one of %s" % (encoding, ", ".join(ENCODINGS)))
    encoding = encoding.lower().replace("_", "-")
    stream, size, ours = _open(source)
    problems: list[Problem] = []
    summary = ImportSummary()
    rows = 0
    checks = _Checks(tx)
    try:
        for row, record in _records(stream, encoding, problems):
            rows += 1
            parcel, found = checks.row(row, record, zone)
            problems += found
            if parcel is not None:
                if store is not None and not problems:
                    store(parcel)  # after the first problem nothing more is stored: it all rolls back
                summary.parcels += 1
                summary.routes[parcel.route_id] += 1
                summary.couriers.add(parcel.courier_id)
            if progress is not None and rows % PROGRESS_EVERY == 0:
                progress(rows, stream.tell() if stream.seekable() else 0, size)
        if progress is not None:
            progress(rows, stream.tell() if stream.seekable() else 0, size)
    finally:
        if ours:
            stream.close()
    if rows == 0 and not problems:
        problems.append(Problem(2, "", "file has no parcels"))
    problems.sort(key=lambda p: p.row)
    return ManifestReport(rows, problems, summary)


def check_manifest(store: Store, source: Path | bytes | BinaryIO, zone: tzinfo, *,
                   encoding: str = "utf-8", progress: Progress | None = None) -> ManifestReport:
    """Every problem of the file, and what an import would store; stores nothing."""
    return _walk(store, source, zone, encoding, progress, None)


def import_manifest(store: Store, vault: Vault, audit: AuditLog, source: Path | bytes | BinaryIO,
                    zone: tzinfo, now: float, actor: str, *, encoding: str = "utf-8",
                    progress: Progress | None = None) -> ImportSummary:
    """Store the file's parcels in one transaction, or nothing: ManifestError
    lists every bad row and column."""
    with store.transaction() as tx:
        routes: set[str] = set()

        def keep(p: Parcel) -> None:
            new = p.route_id not in routes
            if new and tx.one("SELECT 1 FROM routes WHERE route_id = ?", p.route_id) is None:
                tx.run("INSERT INTO routes (route_id, courier_id, sort_code, state, imported)"
                       " VALUES (?, ?, ?, 'active', ?)", p.route_id, p.courier_id, p.sort_code, now)
            routes.add(p.route_id)
            v = p.values
            tx.run(
                "INSERT INTO parcels (tracking_no, route_id, sort_code, state, window_start, window_end,"
                " masked_receiver_name, masked_receiver_phone, masked_receiver_address,"
                " masked_sender_name, masked_sender_phone, masked_sender_address)"
                " VALUES (?, ?, ?, 'out_for_delivery', ?, ?, ?, ?, ?, ?, ?, ?)",
                p.tracking_no, p.route_id, p.sort_code, p.window[0], p.window[1],
                masking.mask_name(v[RECEIVER_NAME]), masking.mask_phone(v[RECEIVER_PHONE]),
                masking.mask_address(v[RECEIVER_ADDRESS]), masking.mask_name(v[SENDER_NAME]),
                masking.mask_phone(v[SENDER_PHONE]), masking.mask_address(v[SENDER_ADDRESS]),
            )
            vault.put(tx, p.tracking_no, v)

        report = _walk(tx, source, zone, encoding, progress, keep)
        if report.problems:
            raise ManifestError(report.problems)  # leaves the transaction: nothing stays
        audit.append(tx, now, actor, "", "route-import", "", "ok",
                     {"parcels": report.summary.parcels, "routes": sorted(report.summary.routes)})
    return report.summary
