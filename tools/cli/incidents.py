"""`veilpost incidents list|show|export`: what the sentinel opened, and
whose data each incident's account received (for the notification duty)."""

from __future__ import annotations

import json
import sys
import time

import click

from gateway.home import Home
from tools.cli.common import open_gateway_home, out_file

_COLUMNS = "incident_id, opened, courier_id, device_id, trigger_reason, parcels, state, accounts"


@click.group("incidents")
def incidents_group() -> None:
    """Incidents the sentinel opened."""


def _incident(home: Home, incident_id: str) -> dict[str, object]:
    row = home.store.one("SELECT " + _COLUMNS + " FROM incidents WHERE incident_id = ?", incident_id)
    if row is None:
        raise click.ClickException("no incident " + incident_id)
    return {"incident": row[0], "opened": row[1], "courier": row[2], "device": row[3], "trigger": row[4],
            "parcels": json.loads(row[5]), "state": row[6], "accounts": json.loads(row[7])}


@incidents_group.command("list")
@click.pass_context
def incidents_list(ctx: click.Context) -> None:
    home = open_gateway_home(ctx)
    rows = home.store.all("SELECT " + _COLUMNS + " FROM incidents ORDER BY opened")
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
    inc = _incident(open_gateway_home(ctx), incident_id)
    click.echo("%(incident)s  %(state)s  courier %(courier)s  device %(device)s\ntrigger: %(trigger)s" % inc)
    parcels = inc["parcels"]
    assert isinstance(parcels, list)
    click.echo("%d parcels to notify:" % len(parcels))
    accounts = inc["accounts"]
    assert isinstance(accounts, list)
    if len(accounts) > 1:
        click.echo("accounts: " + "; ".join("%s on %s" % (a["courier"], ", ".join(a["devices"]))
                                            for a in accounts))
    for p in parcels:
        via = "; ".join("%s on %s (%s)" % (r["courier"], r["device"], r["path"])
                        for r in p.get("received_by", []))
        click.echo("  %s  %s  %s  fields %s  %s" % (p["tracking_no"], p["receiver_name"], p["receiver_phone"],
                                                  ",".join(str(f) for f in p["fields"]), via))


@incidents_group.command("export")
@click.argument("incident_id")
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.pass_context
def incidents_export(ctx: click.Context, incident_id: str, output: str | None) -> None:
    """The incident as JSON, for the notification duty."""
    inc = _incident(open_gateway_home(ctx), incident_id)
    out = out_file(output)
    out.write(json.dumps(inc, ensure_ascii=False, indent=2) + "\n")
    if out is not sys.stdout:
        out.close()


COMMANDS = (incidents_group,)
