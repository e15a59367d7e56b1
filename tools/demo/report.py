"""What the demo leaves behind: the plaintext search over everything the run
wrote or sent, the counts read back from the gateway's own records, the
summary table and summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tools.demo.leaks import LeakReport, files_under, needles, plaintext_values


def scan_for_plaintext(story: Any, out: Path, log_path: Path) -> tuple[LeakReport, int, int]:
    values = plaintext_values(story.manifest)
    search = needles(values)
    report = LeakReport()
    assert story.spy is not None and story.printer is not None
    seen = story.spy.collect()
    report.scan("broker messages", [topic.encode() + b"\0" + payload for topic, payload in seen], search)
    report.scan("handheld flash", files_under(story.work / "handhelds"), search)
    report.scan("log file", files_under(log_path), search)
    spool = sorted(story.home_dir.glob("spool.sqlite3*"))
    report.scan("print spool", files_under(*spool), search)
    report.scan("label commands", [story.printer.wire], search)
    database = sorted(story.home_dir.glob(story.home.config.database + "*"))
    report.scan("gateway database", files_under(*database), search)
    report.scan("label PNGs", files_under(out / "labels") if (out / "labels").exists() else [], search)
    # The search must find what is there: the manifest itself is the control.
    control = LeakReport()
    control.scan("manifest", [story.manifest], search)
    report.control = control.total
    return report, len(values), len(search)


def _count(store: Any, sql: str, *args: Any) -> int:
    row = store.one(sql, *args)
    return int(row[0]) if row and row[0] is not None else 0


def collect(
    story: Any, verdict: Any, leaks: tuple[LeakReport, int, int], seconds: float, broker_url: str | None
) -> dict[str, Any]:
    report, n_values, n_needles = leaks
    store = story.home.store
    t = story.tally
    broker = "embedded" if broker_url is None else broker_url.split("@")[-1]
    return {
        "seconds": round(seconds, 1),
        "broker": broker,
        "manifest": story.manifest_name,
        "counts": {
            "parcels": len(story.parcels),
            "handhelds": len(story.roles),
            "scans": t.scans,
            "deliveries": _count(
                store, "SELECT COUNT(*) FROM audit WHERE action = 'deliver' AND outcome = 'sealed'"
            ),
            "reveals_granted": _count(
                store, "SELECT COUNT(*) FROM audit WHERE action = 'reveal' AND outcome = 'granted'"
            ),
            "reveals_denied": _count(
                store, "SELECT COUNT(*) FROM audit WHERE action = 'reveal' AND outcome LIKE 'denied%'"
            ),
            "suspensions": _count(store, "SELECT COUNT(*) FROM audit WHERE action = 'suspend'"),
            "alarms": _count(store, "SELECT COUNT(*) FROM alarms"),
            "incidents": _count(store, "SELECT COUNT(*) FROM incidents"),
            "labels_printed": len(story.printer.printed()),
            "revoked_devices": _count(store, "SELECT COUNT(*) FROM devices WHERE state = 'revoked'"),
            "audit_entries": verdict.entries,
            "broker_messages": len(story.spy.seen),
        },
        "attacks": {
            "remote_broker_refused": t.remote_broker_refused,
            "remote_sessions_or_answers": t.remote_answers,
            "scrape_requests": t.scrape_requests,
            "scrape_records_released": t.scrape_records,
            "scrape_strikes": t.scrape_strikes,
            "incident": t.incident,
            "alarm_on_broker": t.alarm_seen,
        },
        "revocation": t.revocation,
        "audit": {
            "verified": bool(verdict.ok),
            "entries": verdict.entries,
            "checkpoints": verdict.checkpoints,
            "problem": getattr(verdict, "problem", None) if not verdict.ok else None,
        },
        "plaintext": {
            "values": n_values,
            "needles": n_needles,
            "scanned": report.scanned,
            "hits_by_place": report.hits,
            "hits": report.total,
            "control_hits_in_manifest": report.control,
        },
        "labels": t.pngs,
        "problems": story.problems,
    }


def render(console: Console, summary: dict[str, Any], out: Path) -> None:
    counts = summary["counts"]
    table = Table(title="veilpost demo: summary", show_lines=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(key.replace("_", " "), str(value))
    table.add_row("audit log", "verified" if summary["audit"]["verified"] else "[red]BROKEN[/red]")
    console.print(table)
    leaks = Table(title="plaintext of the manifest found in ...")
    leaks.add_column("place")
    leaks.add_column("items", justify="right")
    leaks.add_column("bytes", justify="right")
    leaks.add_column("hits", justify="right")
    p = summary["plaintext"]
    for place, seen in p["scanned"].items():
        hits = p["hits_by_place"][place]
        leaks.add_row(
            place, str(seen["items"]), str(seen["bytes"]), ("[red]%d[/red]" if hits else "%d") % hits
        )
    console.print(leaks)
    for problem in summary["problems"]:
        console.print("[red]not finished: %s[/red]" % escape(problem))
    colour = "green" if p["hits"] == 0 else "red"
    console.print(
        "[bold %s]plaintext hits: %d[/bold %s] (%d personal values, searched as %d byte patterns;"
        " the same search finds %d in the manifest itself)"
        % (colour, p["hits"], colour, p["values"], p["needles"], p["control_hits_in_manifest"])
    )
    console.print(
        "summary.json, %sthe log are in [bold]%s[/bold]; the run took %.1f s"
        % ("label PNGs and " if summary.get("labels") else "", out, summary["seconds"])
    )
    if not summary.get("labels"):
        console.print("[yellow]no label PNGs were written (see above why)[/yellow]")
