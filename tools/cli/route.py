"""`veilpost route import|withdraw|list`: route manifests, imported all or
nothing (gateway/manifest.py), withdrawn until they go out for delivery
(gateway/routes.py)."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gateway.home import Home
from gateway.manifest import ENCODINGS, SHOWN, ManifestError, Problem, check_manifest, import_manifest
from gateway.routes import gone_out, withdraw_route
from tools.cli.common import (
    EXIT_CONFIG,
    acting,
    as_option,
    emit,
    json_option,
    local_time,
    open_gateway_home,
)

LONG_FILE = 1 << 20  # bytes (about 8,000 rows): a file this long gets a progress bar


@click.group("route")
def route_group() -> None:
    """Route manifests: import, withdraw, list."""


def _progress_bar(size: int, verb: str) -> tuple[Progress | None, object]:
    """A rich progress bar on stderr for a long file, else none."""
    if size < LONG_FILE:
        return None, None
    bar = Progress(TextColumn("%s {task.fields[rows]:,} rows" % verb), BarColumn(), DownloadColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
    return bar, bar.add_task(verb, total=size, rows=0)


def _report(problems: list[Problem]) -> None:
    for p in problems:
        click.echo(str(p) if p.row else p.message, err=True)


@route_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", "check_only", is_flag=True,
              help="Report every bad row and column, import nothing.")
@click.option("--encoding", type=click.Choice(ENCODINGS, case_sensitive=False), default="utf-8",
              show_default=True, help="The file's character encoding.")
@as_option
@click.pass_context
def route_import(ctx: click.Context, file: Path, check_only: bool, encoding: str,
                 as_name: str | None) -> None:
    """Import a manifest CSV (columns in gateway/manifest.py), all rows or
    none; the file is read as a stream, with a progress bar when it is long.
    A bad row imports nothing: the error names the first bad rows, and
    --check lists every one with its row and column."""
    home = open_gateway_home(ctx)
    size = file.stat().st_size
    bar, task = _progress_bar(size, "checked" if check_only else "imported")

    def progress(rows: int, done: int, total: int | None) -> None:
        if bar is not None:
            bar.update(task, completed=done, total=total or size, rows=rows)  # type: ignore[arg-type]

    try:
        if bar is not None:
            bar.start()
        try:
            if check_only:
                report = check_manifest(home.store, file, home.zone, encoding=encoding, progress=progress)
            else:
                summary = import_manifest(home.store, home.vault, home.audit, file, home.zone, time.time(),
                                          acting(home, as_name, "it", "staff")[1],
                                          encoding=encoding, progress=progress)
        finally:
            if bar is not None:
                bar.stop()
    except ManifestError as e:
        more = ""
        if len(e.problems) > SHOWN:
            more = " (`veilpost route import %s --check` lists every one)" % file.name
        raise ManifestError("%s: nothing imported: %s%s" % (file.name, e, more)) from None
    finally:
        home.close()
    if check_only:
        if report.problems:
            _report(report.problems)
            click.echo("%s: %d problem(s) in %d rows; nothing imported" % (file.name, len(report.problems),
                                                                          report.rows), err=True)
            ctx.exit(EXIT_CONFIG)
        click.echo("%s: %d rows, no problems; would import %s" % (
            file.name, report.rows, str(report.summary).removeprefix("imported ")))
        return
    click.echo(str(summary))


@route_group.command("withdraw")
@click.argument("route_id")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@as_option
@click.pass_context
def route_withdraw(ctx: click.Context, route_id: str, reason: str, as_name: str | None) -> None:
    """Remove ROUTE_ID and its parcels before it goes out for delivery
    (audited); to replace a manifest, withdraw its route and import the new one."""
    home = open_gateway_home(ctx)
    try:
        done = withdraw_route(home.store, home.audit, route_id, time.time(),
                              acting(home, as_name, "it", "staff")[1], reason)
    finally:
        home.close()
    click.echo(str(done))


def routes(home: Home) -> list[dict[str, object]]:
    rows = home.store.all(
        "SELECT r.route_id, r.courier_id, r.sort_code, r.imported,"
        " COUNT(p.tracking_no), SUM(CASE WHEN p.state = 'delivered' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN p.label_no > 0 THEN 1 ELSE 0 END)"
        " FROM routes r LEFT JOIN parcels p ON p.route_id = r.route_id"
        " GROUP BY r.route_id, r.courier_id, r.sort_code, r.imported ORDER BY r.route_id")
    out = []
    for route_id, courier, sort_code, imported, parcels, delivered, labelled in rows:
        why = gone_out(home.store, route_id)
        out.append({"route": route_id, "courier": courier, "sort_code": sort_code, "imported": imported,
                    "parcels": int(parcels or 0), "delivered": int(delivered or 0),
                    "labelled": int(labelled or 0), "out_for_delivery": why is not None,
                    "withdrawable": why is None})
    return out


@route_group.command("list")
@json_option
@click.pass_context
def route_list(ctx: click.Context) -> None:
    """Every route: courier, parcels, labels printed, delivered, and whether
    it has gone out for delivery (then it can no longer be withdrawn)."""
    home = open_gateway_home(ctx)
    try:
        found = routes(home)
    finally:
        home.close()
    emit(ctx, found, lambda r: "%-10s courier %-10s %4d parcels  %4d labelled  %4d delivered  %s  imported %s"
         % (r["route"], r["courier"], r["parcels"], r["labelled"], r["delivered"],
            "out for delivery" if r["out_for_delivery"] else "at the depot    ", local_time(r["imported"])),
         "no routes: `veilpost route import FILE` loads a manifest")


COMMANDS = (route_group,)
