"""The gateway's `veilpost` commands: init, gateway run, route import, audit,
incidents, keys, couriers, officers, suspensions, complaint cases and
retention. Registered on the root group by tools/cli.py."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import IO

import click

from gateway import audit as audit_mod
from gateway import registry, retention, sentinel
from gateway.home import Home, init, open_home
from gateway.keys import KeyUnavailable


def _home(ctx: click.Context) -> Home:
    from tools.cli import home_of

    try:
        return open_home(home_of(ctx))
    except (KeyUnavailable, OSError) as e:
        raise click.ClickException(str(e)) from None


def _out(path: str | None) -> IO[str]:
    return sys.stdout if path in (None, "-") else open(path, "w", encoding="utf-8")  # noqa: SIM115


@click.command("init")
@click.pass_context
def init_cmd(ctx: click.Context) -> None:
    """Create config, keys and database (keeps what already exists)."""
    from tools.cli import home_of

    home = init(home_of(ctx))
    click.echo("veilpost home ready: %s (config veilpost.toml, keys %s, database %s)"
               % (home.config.home, home.config.keys_dir, home.config.database))
    home.close()


@click.group("gateway")
def gateway_group() -> None:
    """The gateway service."""


@gateway_group.command("run")
@click.pass_context
def gateway_run(ctx: click.Context) -> None:
    """Run the gateway until interrupted."""
    from gateway.service import GatewayService

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("amqtt").setLevel(logging.WARNING)  # the embedded broker is chatty
    home = _home(ctx)
    service = GatewayService(home)
    click.echo("gateway %s starting" % home.config.gateway_id, err=True)
    service.run_forever()


@click.group("route")
def route_group() -> None:
    """Route manifests."""


@route_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def route_import(ctx: click.Context, file: str) -> None:
    """Import a manifest CSV (columns in gateway/manifest.py); all or nothing."""
    from gateway.manifest import ManifestError, import_manifest

    home = _home(ctx)
    try:
        summary = import_manifest(home.store, home.vault, home.audit, Path(file), home.zone, time.time())
    except ManifestError as e:
        raise click.ClickException("%s: nothing imported: %s" % (Path(file).name, e)) from None
    click.echo(str(summary))


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the whole chain and the signed checkpoints; non-zero on any break."""
    home = _home(ctx)
    verdict = audit_mod.verify(home.store, home.keys.signing_key.public_key())
    if not verdict.ok:
        click.echo("audit log BROKEN at entry %s: %s" % (verdict.first_bad, verdict.problem), err=True)
        sys.exit(1)
    click.echo("audit log intact: %d entries, %d signed checkpoints" % (verdict.entries, verdict.checkpoints))


@audit_group.command("export")
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.pass_context
def audit_export(ctx: click.Context, output: str | None) -> None:
    """Write every entry as JSON lines."""
    home = _home(ctx)
    out = _out(output)
    n = audit_mod.export(home.store, out)
    if out is not sys.stdout:
        out.close()
        click.echo("exported %d entries" % n, err=True)


@click.group("incidents")
def incidents_group() -> None:
    """Incidents the sentinel opened."""


def _incident(home: Home, incident_id: str) -> dict[str, object]:
    row = home.store.one("SELECT incident_id, opened, courier_id, device_id, trigger_reason, parcels, state"
                         " FROM incidents WHERE incident_id = ?", incident_id)
    if row is None:
        raise click.ClickException("no incident " + incident_id)
    return {"incident": row[0], "opened": row[1], "courier": row[2], "device": row[3], "trigger": row[4],
            "parcels": json.loads(row[5]), "state": row[6]}


@incidents_group.command("list")
@click.pass_context
def incidents_list(ctx: click.Context) -> None:
    home = _home(ctx)
    rows = home.store.all("SELECT incident_id, opened, courier_id, device_id, trigger_reason, parcels, state"
                          " FROM incidents ORDER BY opened")
    for r in rows:
        opened = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r[1]))
        click.echo("%s  %s  %-6s courier %s device %s  %d parcels  %s"
                   % (r[0], opened, r[6], r[2], r[3], len(json.loads(r[5])), r[4]))
    if not rows:
        click.echo("no incidents")


@incidents_group.command("show")
@click.argument("incident_id")
@click.pass_context
def incidents_show(ctx: click.Context, incident_id: str) -> None:
    """An incident and every parcel whose data the account received."""
    inc = _incident(_home(ctx), incident_id)
    click.echo("%(incident)s  %(state)s  courier %(courier)s  device %(device)s\ntrigger: %(trigger)s" % inc)
    parcels = inc["parcels"]
    assert isinstance(parcels, list)
    click.echo("%d parcels to notify:" % len(parcels))
    for p in parcels:
        click.echo("  %s  %s  %s  fields %s" % (p["tracking_no"], p["receiver_name"], p["receiver_phone"],
                                              ",".join(str(f) for f in p["fields"])))


@incidents_group.command("export")
@click.argument("incident_id")
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.pass_context
def incidents_export(ctx: click.Context, incident_id: str, output: str | None) -> None:
    """The incident as JSON, for the notification duty."""
    inc = _incident(_home(ctx), incident_id)
    out = _out(output)
    out.write(json.dumps(inc, ensure_ascii=False, indent=2) + "\n")
    if out is not sys.stdout:
        out.close()


@click.group("keys")
def keys_group() -> None:
    """Key-encryption keys."""


@keys_group.command("rotate")
@click.option("--keep-old", is_flag=True, help="Keep the old key files after re-wrapping.")
@click.pass_context
def keys_rotate(ctx: click.Context, keep_old: bool) -> None:
    """New KEK; re-wrap every data key and device secret under it while the
    gateway keeps running (old keys stay readable until done), then retire."""
    home = _home(ctx)
    kek = home.keys.kek
    old = kek.ids()
    new = kek.create()
    n = home.vault.rewrap(home.store)
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "keys-rotate", "", "ok",
                          "%s, %d re-wrapped" % (new, n))
    retired = []
    if not keep_old:
        in_use = home.vault.kek_ids_in_use(home.store)
        for k in old:
            if k not in in_use:
                kek.retire(k)
                retired.append(k)
    click.echo("new key-encryption key %s; %d keys re-wrapped; retired %s"
               % (new, n, ", ".join(retired) or "none"))


@click.group("courier")
def courier_group() -> None:
    """Courier accounts."""


@courier_group.command("add")
@click.argument("badge")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--depot", required=True)
@click.option("--shift", default=None, help='Local time "HH:MM-HH:MM" (default from config).')
@click.pass_context
def courier_add(ctx: click.Context, badge: str, pin: str, depot: str, shift: str | None) -> None:
    """Register a courier by badge id, with a PIN (kept only as an scrypt hash)."""
    home = _home(ctx)
    try:
        registry.add_courier(home.store, badge, pin, depot, shift or home.config.reveal.default_shift)
    except registry.RegistryError as e:
        raise click.ClickException(str(e)) from None
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "courier-add", "", "ok",
                          home.audit.person("courier", badge))
    click.echo("courier %s added (depot %s)" % (badge, depot))


@click.group("officer")
def officer_group() -> None:
    """Named security officers (lift suspensions, approve complaint cases)."""


@officer_group.command("add")
@click.argument("name")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_context
def officer_add(ctx: click.Context, name: str, pin: str) -> None:
    home = _home(ctx)
    try:
        registry.add_officer(home.store, name, pin)
    except registry.RegistryError as e:
        raise click.ClickException(str(e)) from None
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "officer-add", "", "ok",
                          home.audit.person("officer", name))
    click.echo("security officer %s added" % name)


@click.group("suspension")
def suspension_group() -> None:
    """Suspensions the sentinel imposed."""


@suspension_group.command("lift")
@click.option("--officer", required=True, help="Name of the security officer lifting it.")
@click.option("--courier", default=None)
@click.option("--device", default=None)
@click.option("--reason", required=True)
@click.option("--pin", prompt="Officer PIN", hide_input=True)
@click.pass_context
def suspension_lift(ctx: click.Context, officer: str, courier: str | None, device: str | None, reason: str,
                    pin: str) -> None:
    """Reinstate a courier and/or device (audited)."""
    home = _home(ctx)
    try:
        sentinel.lift(home.store, home.audit, officer, pin, time.time(), reason, courier, device)
    except sentinel.LiftRefused as e:
        raise click.ClickException(str(e)) from None
    if device:
        click.echo(sentinel.reenable_broker_account(home.config, device))
    click.echo("suspension lifted by %s" % officer)


@click.group("case")
def case_group() -> None:
    """Complaint cases that reopen a sealed parcel."""


@case_group.command("open")
@click.argument("case_id")
@click.argument("tracking_no")
@click.option("--reason", required=True)
@click.option("--by", "opened_by", required=True, help="Who opens the case.")
@click.pass_context
def case_open(ctx: click.Context, case_id: str, tracking_no: str, reason: str, opened_by: str) -> None:
    home = _home(ctx)
    try:
        retention.open_case(home.store, home.audit, case_id, tracking_no, reason, opened_by, time.time())
    except retention.CaseError as e:
        raise click.ClickException(str(e)) from None
    click.echo("case %s opened; it needs approval from two different officers" % case_id)


@case_group.command("approve")
@click.argument("case_id")
@click.option("--officer", required=True)
@click.option("--pin", prompt="Officer PIN", hide_input=True)
@click.pass_context
def case_approve(ctx: click.Context, case_id: str, officer: str, pin: str) -> None:
    home = _home(ctx)
    try:
        result = retention.approve_case(home.store, home.audit, home.config, case_id, officer, pin,
                                        time.time())
    except retention.CaseError as e:
        raise click.ClickException(str(e)) from None
    if result.open_until is None:
        click.echo("case %s: %d approval, one more officer needed" % (case_id, result.approvals))
    else:
        click.echo("case %s approved; parcel open until %s" % (
            case_id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.open_until))))


@click.group("retention")
def retention_group() -> None:
    """Crypto-shredding after the retention period."""


@retention_group.command("run")
@click.pass_context
def retention_run(ctx: click.Context) -> None:
    home = _home(ctx)
    gone = retention.run_retention(home.store, home.vault, home.audit, home.config, time.time())
    click.echo("shredded %d parcels" % len(gone))


COMMANDS = (init_cmd, gateway_group, route_group, audit_group, incidents_group, keys_group, courier_group,
            officer_group, suspension_group, case_group, retention_group)


def register(root: click.Group) -> None:
    for command in COMMANDS:
        root.add_command(command)
