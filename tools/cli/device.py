"""`veilpost device provision|revoke|suspend|resume|rotate-keys|list`:
handhelds. The work is in gateway/provision.py and gateway/key_rotation.py;
deploying a bundle to a docked handheld uses `veilpost firmware`'s build and
mpremote commands (tools/cli/firmware.py)."""

from __future__ import annotations

import csv
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import tools.cli.firmware as firmware
from gateway import key_rotation, registry
from gateway import provision as ops
from gateway import provision_batch as batch
from gateway.broker_access import BrokerAdminError
from gateway.home import Home
from protocol.errors import ConfigurationError, VeilpostError
from tools.cli.common import acting, as_option, json_option, print_json, wants_json
from tools.cli.common import open_gateway_home as _home

BUILD_DIR = Path("build/firmware")


@contextmanager
def _session(ctx: click.Context) -> Iterator[tuple[Home, ops.BrokerLink]]:
    """The home and its broker, closed afterwards; errors become messages."""
    opts = ctx.find_object(dict) or {}
    home = _home(ctx)
    link = None
    try:
        link = ops.open_broker(home, opts.get("admin_secret"), opts.get("device_broker"))
        yield home, link
    finally:
        if link is not None:
            link.close()
        home.close()


@click.group("device")
@click.option("--admin-secret", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="VEILPOST_BROKER_ADMIN_SECRET",
              help="Mosquitto dynsec admin credentials (default: HOME/broker/admin.secret).")
@click.option("--device-broker", default=None, metavar="HOST:PORT",
              help="Broker address written into bundles, instead of [mqtt] device_host and device_port.")
@click.pass_context
def device_group(ctx: click.Context, admin_secret: Path | None, device_broker: str | None) -> None:
    """Handhelds: enrol, cut off, suspend, rotate keys, list."""
    ctx.ensure_object(dict)
    ctx.obj["admin_secret"] = admin_secret
    ctx.obj["device_broker"] = device_broker


def _rows(csv_file: Path) -> list[batch.Row]:
    """The CSV's rows with their line numbers (the header is line 1)."""
    try:
        with open(csv_file, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "device_id" not in [n.strip() for n in reader.fieldnames]:
                raise ConfigurationError(f"{csv_file.name}: line 1 must name the columns, one of them"
                                         " device_id (and optionally model, fw)")
            unknown = [n for n in reader.fieldnames if n.strip() not in ("device_id", "model", "fw")]
            if unknown:
                raise ConfigurationError(f"{csv_file.name}: line 1: unknown column(s) {', '.join(unknown)}"
                                         " (device_id, model, fw)")
            rows = []
            for record in reader:
                cells = {(k or "").strip(): (v or "").strip() for k, v in record.items()
                         if isinstance(v, str)}
                if not any(cells.values()):
                    continue
                rows.append(batch.Row(reader.line_num, cells.get("device_id", ""), cells.get("model", ""),
                                    cells.get("fw", "")))
            return rows
    except UnicodeDecodeError as e:
        raise ConfigurationError(f"{csv_file.name} is not UTF-8 (byte {e.start + 1})") from None
    except csv.Error as e:
        raise ConfigurationError(f"{csv_file.name}: not CSV: {e}") from None


@device_group.command("provision")
@click.argument("device_id", required=False)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Provision every row of a CSV with columns device_id[,model,fw]: all rows or none.")
@click.option("--port", default=None, help="Serial port of a docked handheld: deploy firmware and bundle.")
@click.option("--model", default="handheld", show_default=True,
              help="Handheld model (CSV rows may say their own).")
@click.option("--fw", default="", help="Firmware version on the handheld.")
@click.option("--lang", default="zh-Hans", show_default=True, help="Handheld screen language.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where bundles go (default: HOME/bundles; folders 0700, files 0600).")
@click.option("--keep-bundle", is_flag=True, help="Keep the bundle's secret after deploying it.")
@as_option
@click.pass_context
def provision_cmd(ctx: click.Context, device_id: str | None, csv_file: Path | None, port: str | None,
                  model: str, fw: str, lang: str, out: Path | None, keep_bundle: bool,
                  as_name: str | None) -> None:
    """Register a handheld, create its broker credentials, write its bundle.

    Works with the gateway stopped. The bundle names the broker address of
    [mqtt] device_host, device_port and device_tls in veilpost.toml."""
    if (device_id is None) == (csv_file is None):
        raise click.UsageError("give either DEVICE_ID or --csv FILE")
    rows = _rows(csv_file) if csv_file is not None else []
    with _session(ctx) as (home, link):
        actor = acting(home, as_name, "it")[1]
        out = out or home.config.home / "bundles"
        where = "%s:%d%s" % (link.device_host, link.device_port, " (TLS)" if link.device_ca else "")
        if device_id is not None:
            bundle = ops.provision(home, link, device_id, out, model, fw, lang, actor=actor)
            click.echo(f"{device_id} provisioned; bundle in {bundle} (broker {where})")
            if port:
                deploy(bundle, port, keep_bundle)
                click.echo(f"deployed to {port}")
            else:
                click.echo("deploy it with `veilpost firmware deploy --bundle`, then delete it: "
                           "provision.json holds the device's master secret")
            return
        rows = [batch.Row(r.line, r.device_id, r.model or model, r.fw or fw) for r in rows]
        try:
            results = _batch(home, link, rows, out, lang, actor)
        except batch.BatchRefused as e:
            for result in e.results:
                click.echo(str(result), err=True)
            raise
        for result in results:
            click.echo(str(result))
        click.echo(f"{len(results)} handhelds provisioned; bundles in {out} (broker {where})")


def _batch(home: Home, link: ops.BrokerLink, rows: list[batch.Row], out: Path,
           lang: str, actor: str) -> list[batch.RowResult]:
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("provisioning", total=len(rows))

        def step(result: batch.RowResult) -> None:
            progress.update(task, description=f"provisioned {result.row.device_id}")
            progress.advance(task)

        return batch.provision_many(home, link, rows, out, lang, progress=step, actor=actor)


@device_group.command("revoke")
@click.argument("device_id")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--lost", is_flag=True, help="The handheld was lost or stolen (the incident says so).")
@as_option
@click.pass_context
def revoke_cmd(ctx: click.Context, device_id: str, reason: str, lost: bool, as_name: str | None) -> None:
    """Cut a handheld off now: deny-list, retained wipe, broker kick."""
    started = time.monotonic()
    opts = ctx.find_object(dict) or {}
    home = _home(ctx)
    link = None
    try:
        actor = acting(home, as_name, "it", "officer")[1]
        try:
            link = ops.open_broker(home, opts.get("admin_secret"), opts.get("device_broker"))
        except VeilpostError as e:  # whatever keeps the broker out of reach, the gateway refuses it now
            click.echo(f"broker: {e}; denying {device_id} at the gateway anyway", err=True)
        report = ops.revoke(home, link, device_id, reason, clock=time.monotonic, lost=lost, actor=actor)
    finally:
        if link is not None:
            link.close()
        home.close()
    wipe = ("acknowledged by the handheld" if report.wipe_acked else
            "posted (the handheld gets it if it ever connects)" if report.wipe_posted_ms else "NOT posted")
    click.echo(f"{device_id} revoked: gateway refuses it after {report.denied_ms:.0f} ms; wipe {wipe}"
               f" after {report.wipe_posted_ms:.0f} ms; broker session kicked after {report.kicked_ms:.0f} ms"
               f" ({(time.monotonic() - started) * 1000:.0f} ms with the broker connection)")
    click.echo(f"incident {report.incident} opened: `veilpost incidents show {report.incident}`")
    if report.problems:
        for problem in report.problems:
            click.echo("problem: " + problem, err=True)
        raise SystemExit(1)


@device_group.command("end-quarantine")
@click.option("--after", type=click.IntRange(min=0), default=ops.QUARANTINE_SECONDS, show_default=True,
              help="Seconds since the revoke after which a quarantined handheld's broker client is disabled.")
@as_option
@click.pass_context
def end_quarantine_cmd(ctx: click.Context, after: int, as_name: str | None) -> None:
    """Disable revoked handhelds whose quarantine (time to fetch the wipe) is over."""
    with _session(ctx) as (home, link):
        done = ops.end_quarantines(home, link, after=after, actor=acting(home, as_name, "it", "officer")[1])
    click.echo(("broker client disabled: " + ", ".join(done)) if done else "no quarantine to end")


@device_group.command("suspend")
@click.argument("device_id")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@as_option
@click.pass_context
def suspend_cmd(ctx: click.Context, device_id: str, reason: str, as_name: str | None) -> None:
    """Refuse a handheld for now (no wipe); `resume` lets it back."""
    with _session(ctx) as (home, link):
        ops.suspend(home, link, device_id, reason, actor=acting(home, as_name, "it", "officer")[1])
    click.echo(f"{device_id} suspended and kicked")


@device_group.command("resume")
@click.argument("device_id")
@as_option
@click.pass_context
def resume_cmd(ctx: click.Context, device_id: str, as_name: str | None) -> None:
    """Let a suspended handheld back in."""
    with _session(ctx) as (home, link):
        ops.resume(home, link, device_id, actor=acting(home, as_name, "it", "officer")[1])
    click.echo(f"{device_id} active again")


@device_group.command("rotate-keys")
@click.argument("device_id")
@click.option("--grace", type=float, default=registry.ROTATION_GRACE, show_default=True,
              help="Seconds the old key is still accepted after the handheld switched.")
@click.option("--wait", "wait_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the handheld to take the new key.")
@as_option
@click.pass_context
def rotate_keys_cmd(ctx: click.Context, device_id: str, grace: float, wait_s: float,
                    as_name: str | None) -> None:
    """New master secret and broker password for a live handheld, over the air;
    its queued messages stay."""
    home = _home(ctx)
    try:
        report = key_rotation.rotate_keys(home, device_id, grace=grace, wait=wait_s,
                                          actor=acting(home, as_name, "it")[1])
    finally:
        home.close()
    if report.switched_ms is None:
        click.echo(f"{device_id}: key rotation under way; the handheld takes the new key when it next"
                   " connects (the command waits for it, retained)")
        return
    password = ("new broker password set" if report.password_set else
                "broker password unchanged (the gateway has no broker admin credentials)")
    click.echo(f"{device_id}: new master secret in use after {report.switched_ms:.0f} ms; {password};"
               f" the old key is refused after {grace:.0f} s")


@device_group.command("list")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Every handheld with its registry state and its broker account."""
    with _session(ctx) as (home, link):
        rows = home.store.all("SELECT device_id, model, fw, state, last_seen FROM devices ORDER BY device_id")
        found = []
        for device_id, model, fw, state, last_seen in rows:
            try:
                broker = "disabled" if link.admin.is_disabled(device_id) else \
                    "quarantined" if state == "revoked" else "enabled"   # it may fetch its wipe only
            except BrokerAdminError:
                broker = "missing"
            found.append({"device": device_id, "model": model, "fw": fw, "state": state,
                          "last_seen": last_seen, "broker": broker})
    if wants_json(ctx):
        print_json(found)
        return
    if not found:
        click.echo("no handhelds: `veilpost device provision` enrols one")
        return
    table = Table("device", "model", "firmware", "state", "last seen", "broker")
    for d in found:
        seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(d["last_seen"])) if d["last_seen"] else "never"
        table.add_row(d["device"], d["model"], d["fw"] or "-", d["state"], seen, d["broker"])
    Console(width=120).print(table)


def deploy(bundle: Path, port: str, keep_bundle: bool = False,
           run: Callable[[list[str]], int] | None = None) -> None:
    """Install firmware and bundle on the board at `port` with mpremote
    (`veilpost firmware deploy`'s commands), then shred the bundle's secret."""
    firmware.check_port(port)
    if not (BUILD_DIR / "main.py").exists():
        firmware.build(BUILD_DIR)
    for cmd in firmware.deploy_commands(port, BUILD_DIR, bundle):
        rc = run(cmd) if run else subprocess.run(cmd, check=False).returncode
        if rc != 0:
            raise ops.ProvisionError(f"mpremote failed ({' '.join(cmd[3:5])}); the bundle stays in {bundle}")
    if not keep_bundle:
        ops.shred(bundle / "provision.json")


COMMANDS = (device_group,)
