"""The demo's leak check: every personal value of the manifest, in every
encoding it could take on its way somewhere (UTF-8, GB18030 for printers,
UTF-16 and JSON escapes for logs), searched for in the bytes the run left
behind. A hit is a broken invariant; the demo reports the count, never the value."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from protocol import masking

PERSONAL_COLUMNS = (
    "receiver_name",
    "receiver_phone",
    "receiver_address",
    "sender_name",
    "sender_phone",
    "sender_address",
)
ENCODINGS = ("utf-8", "gb18030", "utf-16-le")


def plaintext_values(manifest: bytes) -> list[str]:
    """The personal values of a route-import CSV (no checks: the import does those)."""
    reader = csv.DictReader(io.StringIO(manifest.decode("utf-8-sig"), newline=""))
    values: set[str] = set()
    for row in reader:
        for column in PERSONAL_COLUMNS:
            value = (row.get(column) or "").strip()
            if value:
                values.add(value)
    return sorted(values)


def _unit_part(address: str) -> str | None:
    """The unit/room part the masking hides ("3棟502室"), when it is long enough to search for."""
    parts = address.split()
    if len(parts) < 2:
        return None
    unit = parts[-1]
    if len(unit.encode("utf-8")) < 4 or unit in masking.mask_address(address):
        return None
    return unit


def needles(values: Iterable[str]) -> list[bytes]:
    out: set[bytes] = set()
    for value in values:
        texts = [value]
        unit = _unit_part(value)
        if unit:
            texts.append(unit)
        for text in texts:
            for encoding in ENCODINGS:
                out.add(text.encode(encoding))
            out.add(json.dumps(text, ensure_ascii=True)[1:-1].encode("ascii"))
    return sorted(out)


@dataclass
class LeakReport:
    """Bytes and items scanned per place, and the hits found there."""

    scanned: dict[str, dict[str, int]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    control: int = 0  # hits in a blob known to hold the plaintext

    def scan(self, place: str, blobs: Iterable[bytes], needle_list: list[bytes]) -> None:
        seen = self.scanned.setdefault(place, {"items": 0, "bytes": 0})
        hits = self.hits.setdefault(place, 0)
        for blob in blobs:
            seen["items"] += 1
            seen["bytes"] += len(blob)
            hits += sum(1 for n in needle_list if n in blob)
        self.hits[place] = hits

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def files_under(*roots: Path) -> list[bytes]:
    """The contents of every regular file under the given folders (or files)."""
    blobs = []
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            try:
                blobs.append(path.read_bytes())
            except OSError:
                continue
    return blobs
