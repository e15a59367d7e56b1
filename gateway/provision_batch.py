"""Provisioning a CSV of handhelds (`veilpost device provision --csv`), all
rows or none, like a manifest import: every row is checked before anything
is done, and a failure halfway takes back the rows before it (registry row,
broker account, bundle; audited). Each row gets a line in the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway import registry
from gateway.broker_access import BrokerAdminError
from gateway.home import Home
from gateway.provision import BrokerLink, ProvisionError, provision, undo
from protocol.errors import ConfigurationError
from protocol.topics import ID_RULE, valid_id


@dataclass(frozen=True)
class Row:
    """One line of a provisioning CSV: columns device_id[,model,fw]."""

    line: int
    device_id: str
    model: str
    fw: str


@dataclass
class RowResult:
    row: Row
    problem: str = ""  # empty: fine
    bundle: Path | None = None

    def __str__(self) -> str:
        done = "provisioned, bundle %s" % self.bundle if self.bundle else "ok, not provisioned"
        what = self.problem or done
        return "line %d  %s  %s" % (self.row.line, self.row.device_id or "(no device_id)", what)


class BatchRefused(ConfigurationError):
    """A provisioning CSV with a bad row: nothing was provisioned; `results`
    says which rows and why."""

    def __init__(self, message: str, results: list[RowResult]) -> None:
        super().__init__(message)
        self.results = results


MAX_MODEL = 64


def check_rows(home: Home, link: BrokerLink, rows: list[Row]) -> list[RowResult]:
    """What is wrong with each row, before anything is done."""
    taken = set(link.admin.usernames())
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        problem = ""
        if not row.device_id:
            problem = "no device_id"
        elif not valid_id(row.device_id):
            problem = f"device id {row.device_id[:40]!r} is not {ID_RULE}"
        elif row.device_id in seen:
            problem = f"{row.device_id} is on line {seen[row.device_id]} already"
        elif (state := registry.device_state(home.store, row.device_id)) is not None:
            problem = f"{row.device_id} is registered already ({state})"
        elif row.device_id in taken:
            problem = f"{row.device_id} has a broker account already"
        elif len(row.model) > MAX_MODEL or len(row.fw) > MAX_MODEL:
            problem = f"model and fw must be at most {MAX_MODEL} characters"
        if row.device_id and row.device_id not in seen:
            seen[row.device_id] = row.line
        out.append(RowResult(row, problem))
    return out


def provision_many(home: Home, link: BrokerLink, rows: list[Row], out_dir: Path, lang: str = "zh-Hans",
                   now: float | None = None, progress: Callable[[RowResult], None] | None = None,
                   *, actor: str) -> list[RowResult]:
    """Every row or none: all rows are checked first (BatchRefused lists the
    bad ones, nothing done); then each is provisioned, and if one fails all
    those before it are taken back (registry, broker account, bundle)."""
    now = time.time() if now is None else now
    if not rows:
        raise BatchRefused("the file has no handhelds", [])
    results = check_rows(home, link, rows)
    bad = [r for r in results if r.problem]
    if bad:
        raise BatchRefused("%d of %d rows are wrong, nothing provisioned: %s"
                           % (len(bad), len(rows), "; ".join("line %d: %s" % (r.row.line, r.problem)
                                                              for r in bad[:5])), results)
    done: list[RowResult] = []
    for result in results:
        row = result.row
        try:
            result.bundle = provision(home, link, row.device_id, out_dir, row.model, row.fw, lang, now,
                                      actor=actor)
        except (ProvisionError, BrokerAdminError) as e:
            result.problem = str(e)
            for earlier in reversed(done):
                undo(home, link, earlier.row.device_id, out_dir / earlier.row.device_id, now,
                      f"batch failed at line {row.line}", actor=actor)
                earlier.problem, earlier.bundle = "taken back: line %d failed" % row.line, None
            raise BatchRefused(f"line {row.line}: {e}; the {len(done)} handhelds before it were taken back,"
                               " nothing provisioned", results) from None
        done.append(result)
        if progress is not None:
            progress(result)
    return results
