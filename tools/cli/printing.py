"""`veilpost print`, `reprint`, `printers status|drain|settle|emulate` and
`label preview`. Labels come from a ParcelSource (the gateway's masked
parcels when the home has a gateway, else a JSON file of masked views) and
go through printer_drivers.render_label and the print spool."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import Any

import click

from gateway.config import CONFIG_NAME
from gateway.home import Home, open_home
from gateway.label_source import GatewayParcels
from printer_drivers import render_label
from printer_drivers.config import PrinterConfig, load_printers
from printer_drivers.delivery import deliver
from printer_drivers.label import MaskedLabel
from printer_drivers.layout import layout, load_template
from printer_drivers.source import JsonFileSource, ParcelNotFound, ParcelSource
from printer_drivers.spool import PRINTED, QUEUED, SENDING, UNCERTAIN, AuditHook, Spool, SpoolError
from printer_drivers.transport import PrinterOffline
from protocol.errors import ConfigurationError
from tools.cli.common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    acting,
    as_option,
    json_option,
    print_json,
    wants_json,
)
from tools.cli.common import home_of as _home

PARCELS_HELP = "JSON file of masked parcel views (used instead of the gateway store)."


def _source(ctx: click.Context, parcels: str | None) -> ParcelSource:
    if parcels:
        try:
            return JsonFileSource(parcels)
        except (OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    source = _gateway_source(_home(ctx))
    if source is None:
        raise click.ClickException(
            "no parcel source: run `veilpost init` and import a route manifest, or pass --parcels FILE"
        )
    return source


def _gateway(home: Path) -> Home | None:
    """The gateway home (store, keys, audit log) when this folder has one."""
    if not (home / CONFIG_NAME).is_file():
        return None
    try:
        return open_home(home)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc


def _gateway_source(home: Path) -> ParcelSource | None:
    gw = _gateway(home)
    return GatewayParcels(gw) if gw is not None else None


def _who(ctx: click.Context, as_name: str | None, parcels: str | None = None) -> str:
    """Who prints: with the gateway's home, the audit pseudonym of the person
    named with --as (depot staff or IT on `veilpost operator list`); a
    printing station without a gateway writes the name (or login name)
    into its own print-audit.jsonl."""
    gw = None if parcels else _gateway(_home(ctx))
    if gw is None:
        return as_name or getpass.getuser()
    try:
        return acting(gw, as_name, "staff", "it")[1]
    finally:
        gw.close()


def _audit(home: Path) -> AuditHook:
    """The gateway audit log when this home has one; a printing station
    without a gateway keeps an append-only JSON-lines file next to its spool."""
    gw = _gateway(home)
    if gw is not None:

        def to_gateway(action: str, details: dict[str, Any]) -> None:
            actor = str(details.get("actor") or "spool")  # a pseudonym (_who), or the spool's own doing
            detail = {k: v for k, v in details.items() if k not in ("actor", "tracking_no")}
            with gw.store.transaction() as tx:
                gw.audit.append(
                    tx,
                    time.time(),
                    actor,
                    "printer:" + str(details.get("printer", "")),
                    action,
                    parcel=str(details.get("tracking_no", "")),
                    detail=json.dumps(detail, ensure_ascii=False, sort_keys=True),
                )

        return to_gateway

    path = home / "print-audit.jsonl"

    def to_file(action: str, details: dict[str, Any]) -> None:
        home.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"at": time.time(), "action": action, **details}, ensure_ascii=False) + "\n")
            f.flush()

    return to_file


def _printer(ctx: click.Context, name: str) -> PrinterConfig:
    try:
        printers = load_printers(_home(ctx))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if name not in printers:
        raise click.ClickException(
            "no printer %r in %s (have: %s)"
            % (name, _home(ctx) / "printers.toml", ", ".join(printers) or "none")
        )
    return printers[name]


def _encode(cfg: PrinterConfig, view: Any, template: str | None) -> bytes:
    return render_label(view, cfg.language, template or cfg.template, cfg.dpi, cfg.zpl_font)


def _labels(cfg: PrinterConfig, source: ParcelSource, tracking_nos: list[str], template: str | None,
            actor: str, reprint_reason: str | None = None) -> list[tuple[str, bytes]]:
    """Every label's bytes or none. From the gateway each label gets a new
    possession proof (a reprint voids the old one); checked on specimens first."""
    try:
        views = [source.masked_view(t) for t in tracking_nos]
        for v in views:
            _encode(cfg, v, template)
        issue = getattr(source, "issue_labels", None)
        if issue is not None:
            views = issue(tracking_nos, actor, reprint_reason)
    except ParcelNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:  # a refused label (the gateway's LabelRefused) or a bad view
        raise click.ClickException(str(exc)) from exc
    return [(t, _encode(cfg, v, template)) for t, v in zip(tracking_nos, views, strict=True)]


def _drain(spool: Spool, cfg: PrinterConfig, give_up: float) -> None:
    report = deliver(spool, cfg.name, cfg.open(), give_up_after=give_up, retry_delay=0.5)
    click.echo("%s: %d printed" % (cfg.name, len(report.printed)))
    for job_id in report.uncertain:
        job = spool.job(job_id)
        click.echo(
            "  job %d (%s) uncertain: the link dropped mid-label; check the printer, then reprint or"
            " settle it" % (job_id, job.tracking_no)
        )
    if report.stalled:
        left = spool.counts(cfg.name)
        raise click.ClickException(
            "%s stalled (%s); %d job(s) kept in the spool, run `veilpost printers drain %s`"
            " once fixed" % (cfg.name, report.stalled, left.get(QUEUED, 0) + left.get(SENDING, 0), cfg.name)
        )


@click.command("print")
@click.argument("tracking_nos", nargs=-1)
@click.option("--route", "route_id", default=None,
              help="Every parcel of this route that has no label yet (instead of TRACKING_NOS).")
@click.option("--printer", "printer_name", required=True, help="Printer name from printers.toml.")
@click.option("--parcels", type=click.Path(exists=True, dir_okay=False), help=PARCELS_HELP)
@click.option("--template", help="Template name or file (default: the printer's).")
@click.option("--give-up", default=30.0, show_default=True, help="Seconds to wait for a stuck printer.")
@click.option("--queue-only", is_flag=True, help="Spool the labels, do not send them now.")
@as_option
@click.pass_context
def print_cmd(
    ctx: click.Context,
    tracking_nos: tuple[str, ...],
    route_id: str | None,
    printer_name: str,
    parcels: str | None,
    template: str | None,
    give_up: float,
    queue_only: bool,
    as_name: str | None,
) -> None:
    """Print waybill labels (masked fields only) for TRACKING_NOS or a whole
    --route; each label gets its own possession proof in the QR. All the
    labels or none are queued."""
    if bool(tracking_nos) == bool(route_id):
        raise click.UsageError("give TRACKING_NOS or --route ROUTE")
    cfg = _printer(ctx, printer_name)
    source = _source(ctx, parcels)
    wanted = list(tracking_nos) if tracking_nos else _route_parcels(ctx, route_id or "", parcels)
    jobs = _labels(cfg, source, wanted, template, _who(ctx, as_name, parcels))  # all or nothing
    spool = Spool.at_home(_home(ctx), _audit(_home(ctx)))
    try:
        ids = spool.submit_many(cfg.name, jobs)
    except SpoolError as exc:
        raise click.ClickException(str(exc) + " (nothing queued)") from exc
    for job_id, (tracking_no, data) in zip(ids, jobs, strict=True):
        click.echo("queued job %d: %s (%d bytes of %s)" % (job_id, tracking_no, len(data), cfg.language))
    if not queue_only:
        _drain(spool, cfg, give_up)


def _route_parcels(ctx: click.Context, route_id: str, parcels: str | None) -> list[str]:
    """The route's parcels still out for delivery and never labelled."""
    gw = None if parcels else _gateway(_home(ctx))
    if gw is None:
        raise click.UsageError("--route needs the gateway's home (not --parcels)")
    try:
        if gw.store.one("SELECT 1 FROM routes WHERE route_id = ?", route_id) is None:
            raise click.ClickException("no route %s: `veilpost route list` shows the routes" % route_id)
        rows = gw.store.all("SELECT tracking_no, label_no, state FROM parcels WHERE route_id = ?"
                            " ORDER BY tracking_no", route_id)
    finally:
        gw.close()
    todo = [str(t) for t, label_no, state in rows if not label_no and state == "out_for_delivery"]
    if not todo:
        raise click.ClickException("route %s: all %d parcels have their label or are delivered (a second"
                                   " label is `veilpost reprint TRACKING_NO --reason ...`)"
                                   % (route_id, len(rows)))
    if len(todo) < len(rows):
        click.echo("route %s: %d of %d parcels need a label (the others have one or are delivered)"
                   % (route_id, len(todo), len(rows)))
    return todo


@click.command("reprint")
@click.argument("tracking_no")
@click.option("--reason", required=True, help="Why a second label is needed (audited).")
@click.option("--printer", "printer_name", required=True, help="Printer name from printers.toml.")
@click.option("--parcels", type=click.Path(exists=True, dir_okay=False), help=PARCELS_HELP)
@click.option("--give-up", default=30.0, show_default=True, help="Seconds to wait for a stuck printer.")
@as_option
@click.pass_context
def reprint_cmd(
    ctx: click.Context,
    tracking_no: str,
    reason: str,
    printer_name: str,
    parcels: str | None,
    give_up: float,
    as_name: str | None,
) -> None:
    """Print a parcel's label again; the reason goes to the audit log first."""
    cfg = _printer(ctx, printer_name)
    actor = _who(ctx, as_name, parcels)
    data = _labels(cfg, _source(ctx, parcels), [tracking_no], None, actor, reason)[0][1]
    spool = Spool.at_home(_home(ctx), _audit(_home(ctx)))
    try:
        job_id = spool.reprint(cfg.name, tracking_no, data, reason, actor)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("reprint queued as job %d (audited)" % job_id)
    _drain(spool, cfg, give_up)


@click.group("printers")
def printers_group() -> None:
    """Label printers named in printers.toml."""


@printers_group.command("status")
@json_option
@click.pass_context
def printers_status(ctx: click.Context) -> None:
    """Ask every configured printer for its state; show the spool per printer.
    Exit 4 when a printer is offline, 1 when one is not ready (paper, head...)."""
    try:
        printers = load_printers(_home(ctx))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    if not printers:
        raise ConfigurationError("no printers configured in %s (see docs/printing.md)"
                                 % (_home(ctx) / "printers.toml"))
    spool_path = _home(ctx) / "spool.sqlite3"
    spool = Spool(spool_path) if spool_path.exists() else None
    found: list[dict[str, Any]] = []
    for cfg in printers.values():
        printer = cfg.open()
        try:
            status = printer.status()
            state, count, ready, online = status.describe(), printer.label_count(), status.ready, True
        except PrinterOffline as exc:
            state, count, ready, online = "offline (%s)" % exc, None, False, False
        finally:
            printer.close()
        counts = spool.counts(cfg.name) if spool else {}
        found.append({"printer": cfg.name, "language": cfg.language, "url": cfg.url, "online": online,
                      "ready": ready, "state": state, "labels": count,
                      "queued": counts.get(QUEUED, 0) + counts.get(SENDING, 0),
                      "uncertain": counts.get(UNCERTAIN, 0), "printed": counts.get(PRINTED, 0)})
    if spool is not None:
        spool.close()
    if wants_json(ctx):
        print_json(found)
    else:
        for p in found:
            click.echo("%-12s %-6s %-28s %s  labels=%s  queued=%d uncertain=%d printed=%d" % (
                p["printer"], p["language"], p["url"], p["state"],
                "?" if p["labels"] is None else p["labels"], p["queued"], p["uncertain"], p["printed"]))
    if not all(p["online"] for p in found):
        ctx.exit(EXIT_UNAVAILABLE)
    if not all(p["ready"] for p in found):
        ctx.exit(EXIT_FAILED)


@printers_group.command("drain")
@click.argument("printer_name")
@click.option("--give-up", default=30.0, show_default=True, help="Seconds to wait for a stuck printer.")
@click.pass_context
def printers_drain(ctx: click.Context, printer_name: str, give_up: float) -> None:
    """Send PRINTER_NAME's queued jobs (after paper, head or cable is fixed)."""
    cfg = _printer(ctx, printer_name)
    _drain(Spool.at_home(_home(ctx), _audit(_home(ctx))), cfg, give_up)


@printers_group.command("settle")
@click.argument("job_id", type=int)
@click.option("--printed/--not-printed", required=True, help="Did the label come out?")
@click.option("--reason", required=True, help="What you saw at the printer (audited).")
@as_option
@click.pass_context
def printers_settle(ctx: click.Context, job_id: int, printed: bool, reason: str, as_name: str | None) -> None:
    """Close an uncertain job after looking at the printer; --not-printed queues it again."""
    actor = _who(ctx, as_name)
    spool = Spool.at_home(_home(ctx), _audit(_home(ctx)))
    try:
        again = spool.settle(job_id, printed, actor, reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("job %d %s" % (job_id, "queued again: run `veilpost printers drain`" if again else "closed"))


@printers_group.command("emulate")
@click.argument("language", type=click.Choice(["tspl", "zpl", "escpos", "cpcl"]))
@click.option("--link", type=click.Path(dir_okay=False), help="Symlink to create for the pty (serial side).")
@click.option("--tcp", "tcp_port", type=int, help="Serve on 127.0.0.1:PORT instead of a pty.")
@click.option("--png-dir", type=click.Path(file_okay=False), help="Write each printed label here as a PNG.")
@click.option("--paper", type=int, default=None, help="Labels on the roll (default: endless).")
def printers_emulate(
    language: str, link: str | None, tcp_port: int | None, png_dir: str | None, paper: int | None
) -> None:
    """Run an emulated LANGUAGE printer for demos and tests. SIGUSR1 toggles
    paper out, SIGUSR2 the head, SIGHUP pulls/replugs the cable; Ctrl-C stops it."""
    import signal
    import threading

    from printer_drivers.emulated_link import PtyPrinter, serve
    from printer_drivers.emulator import Emulator

    if (link is None) == (tcp_port is None):
        raise click.UsageError("give exactly one of --link PATH or --tcp PORT")
    emu = Emulator(language, paper)
    stop = threading.Event()

    def toggle_paper(*_: object) -> None:
        emu.load_paper() if emu.paper_out else emu.run_out_of_paper()
        click.echo("paper %s" % ("out" if emu.paper_out else "loaded"))

    def toggle_head(*_: object) -> None:
        emu.close_head() if emu.head_open else emu.open_head()
        click.echo("head %s" % ("open" if emu.head_open else "closed"))

    signal.signal(signal.SIGUSR1, toggle_paper)
    signal.signal(signal.SIGUSR2, toggle_head)
    cable: list[Any] = []  # the PtyPrinter, once serve() has made it

    def toggle_cable(*_: object) -> None:
        for pty in cable:
            if isinstance(pty, PtyPrinter):
                pty.replug() if not pty.plugged else pty.unplug()
                click.echo("cable %s" % ("plugged" if pty.plugged else "pulled"))

    signal.signal(signal.SIGHUP, toggle_cable)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        where = Path(link) if link else None
        serve(emu, where, tcp_port, Path(png_dir) if png_dir else None, click.echo, stop, cable.append)
    except KeyboardInterrupt:
        stop.set()


@click.group("label")
def label_group() -> None:
    """Waybill label tools."""


@label_group.command("preview")
@click.argument("tracking_no")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--template", default="100x150", show_default=True, help="Template name or file.")
@click.option("--dpi", type=click.Choice(["203", "300"]), default=None,
              help="Printer resolution (default: the template's).")
@click.option("--parcels", type=click.Path(exists=True, dir_okay=False), help=PARCELS_HELP)
@click.pass_context
def label_preview(
    ctx: click.Context, tracking_no: str, out: str, template: str, dpi: str | None, parcels: str | None
) -> None:
    """Render TRACKING_NO's label to a PNG, as the printer would print it."""
    from printer_drivers.preview import save_png

    source = _source(ctx, parcels)
    lay = layout(
        load_template(template, int(dpi) if dpi else None),
        MaskedLabel.from_mapping(source.masked_view(tracking_no)),
    )
    path = save_png(lay, out)
    click.echo("wrote %s (%dx%d dots, %s)" % (path, lay.width, lay.height, lay.template.name))


COMMANDS = (print_cmd, reprint_cmd, printers_group, label_group)
