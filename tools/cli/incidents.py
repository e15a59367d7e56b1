"""`veilpost incidents list|show|export|assign|note|notify|report|close`:
what the sentinel or a revoked handheld opened, whose data was received
(masked), and the incident's life cycle, each step by a named officer
(`--as NAME`). Notices go to the people themselves; the officer sees counts
and delivery states, never a contact (gateway/notify.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from gateway import incident_report, incidents, notifiers, notify
from gateway.home import Home
from gateway.operators import require
from tools.cli.common import (
    acting,
    as_option,
    emit,
    json_option,
    open_gateway_home,
    out_file,
    print_json,
    wants_json,
)


@click.group("incidents")
def incidents_group() -> None:
    """Incidents: whose data was received, notices to those people, the report."""


def _describe(home: Home, incident_id: str) -> dict[str, Any]:
    return incidents.describe(home.store, incident_id, home.zone)


@incidents_group.command("list")
@json_option
@click.pass_context
def incidents_list(ctx: click.Context) -> None:
    """Every incident: when, state, couriers, devices, parcels, and the trigger."""
    home = open_gateway_home(ctx)
    try:
        found = incidents.listing(home.store, home.zone)
    finally:
        home.close()
    emit(ctx, found, lambda i: "%s  %s  %-8s %s  couriers %s  devices %s  %d parcels  %s" % (
        i["incident"], i["opened"], i["state"], i["kind"], ",".join(i["couriers"]) or "-",
        ",".join(i["devices"]) or "-", i["parcels"], i["trigger"]), "no incidents")


@incidents_group.command("show")
@click.argument("incident_id")
@json_option
@click.pass_context
def incidents_show(ctx: click.Context, incident_id: str) -> None:
    """An incident: its steps, every parcel received (masked) with the devices, and the notices' states."""
    home = open_gateway_home(ctx)
    try:
        inc = _describe(home, incident_id)
    finally:
        home.close()
    if wants_json(ctx):
        print_json(inc)
        return
    click.echo("%(incident)s  %(state)s  %(kind)s  opened %(opened)s" % inc
               + ("  assigned to " + inc["assignee"] if inc["assignee"] else ""))
    click.echo("trigger: " + inc["trigger"])
    click.echo("devices: " + (", ".join(inc["devices"]) or "-"))
    for a in inc["accounts"]:
        click.echo("courier %s on %s" % (a["courier"], ", ".join(a["devices"]) or "-"))
    click.echo("%d parcels received:" % len(inc["parcels"]))
    for p in inc["parcels"]:
        via = "; ".join("%s on %s (%s)" % (r["courier"], r["device"], r["path"]) for r in p["received_by"])
        click.echo("  %s  %s  %s  %s  %s .. %s  %s" % (p["tracking_no"], p["receiver_name"],
                                                       p["receiver_phone"],
                                                     ",".join(p["fields"]), p["first"], p["last"], via))
    people = inc["people"]
    click.echo("people to notify: %d (%s)" % (people["total"], ", ".join(
        "%s %d" % kv for kv in sorted(people["by_state"].items())) or "none"))
    for s in inc["steps"]:
        click.echo("  %s  %-8s %s  %s" % (s["at"], s["step"], s["by"], s["note"]))


@incidents_group.command("export")
@click.argument("incident_id")
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.pass_context
def incidents_export(ctx: click.Context, incident_id: str, output: str | None) -> None:
    """The incident as JSON (masked values, ISO times, field names)."""
    home = open_gateway_home(ctx)
    try:
        inc = _describe(home, incident_id)
    finally:
        home.close()
    out = out_file(output)
    out.write(json.dumps(inc, ensure_ascii=False, indent=2) + "\n")
    if out is not sys.stdout:
        out.close()


@incidents_group.command("assign")
@click.argument("incident_id")
@click.option("--to", "to", required=True, help="The security officer who handles it.")
@as_option
@click.pass_context
def incidents_assign(ctx: click.Context, incident_id: str, to: str, as_name: str | None) -> None:
    """Give INCIDENT_ID to a named security officer."""
    home = open_gateway_home(ctx)
    try:
        _name, actor = acting(home, as_name, "officer")
        officer = require(home.store, to, ("officer",))
        if officer.role != "officer":
            raise incidents.IncidentError("%s is not a security officer" % to)
        incidents.assign(home.store, home.audit, incident_id, actor, officer.name, time.time())
    finally:
        home.close()
    click.echo("%s assigned to %s" % (incident_id, officer.name))


@incidents_group.command("note")
@click.argument("incident_id")
@click.argument("text")
@as_option
@click.pass_context
def incidents_note(ctx: click.Context, incident_id: str, text: str, as_name: str | None) -> None:
    """Add a note to INCIDENT_ID (never a person's data: notes are shown to every officer)."""
    home = open_gateway_home(ctx)
    try:
        _name, actor = acting(home, as_name, "officer")
        incidents.note(home.store, home.audit, incident_id, actor, text, time.time())
    finally:
        home.close()
    click.echo("note added to " + incident_id)


@incidents_group.command("notify")
@click.argument("incident_id")
@as_option
@json_option
@click.pass_context
def incidents_notify(ctx: click.Context, incident_id: str, as_name: str | None) -> None:
    """Send one notice per affected person ([notify] e-mail and SMS); run it again to retry failures."""
    home = open_gateway_home(ctx)
    try:
        _name, actor = acting(home, as_name, "officer")
        result = notify.notify(home.store, home.keys.kek, home.audit, home.config, home.zone, incident_id,
                               actor,
                               notifiers.notifiers_from(home.config))
    finally:
        home.close()
    if wants_json(ctx):
        print_json(result.as_dict())
    else:
        click.echo("%s: %d people: %d sent now, %d done before, %d failed, %d unreachable; state %s" % (
            incident_id, result.people, result.sent, result.already - result.unreachable, result.failed,
            result.unreachable, result.state))
        for channel, states in sorted(result.by_channel.items()):
            click.echo("  %s: %s" % (channel, ", ".join("%s %d" % kv for kv in sorted(states.items()))))
        for problem in result.problems:
            click.echo("failed: " + problem, err=True)
    if result.failed:
        raise SystemExit(1)


@incidents_group.command("report")
@click.argument("incident_id")
@click.option("-o", "--output", "folder", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for INCIDENT.json and INCIDENT.html.")
@as_option
@click.pass_context
def incidents_report(ctx: click.Context, incident_id: str, folder: str, as_name: str | None) -> None:
    """Write the report for the authorities as JSON and HTML."""
    home = open_gateway_home(ctx)
    try:
        _name, actor = acting(home, as_name, "officer")
        as_json, as_html = incident_report.write(home.store, home.audit, home.config, home.zone, incident_id,
                                                 actor, Path(folder), time.time())
    finally:
        home.close()
    click.echo("report written: %s, %s" % (as_json, as_html))


@incidents_group.command("close")
@click.argument("incident_id")
@click.option("--reason", required=True, help="Why it can be closed (kept in the audit log).")
@as_option
@click.pass_context
def incidents_close(ctx: click.Context, incident_id: str, reason: str, as_name: str | None) -> None:
    """Close a reported incident; its sealed contacts and their key are destroyed."""
    home = open_gateway_home(ctx)
    try:
        _name, actor = acting(home, as_name, "officer")
        gone = incidents.close(home.store, home.audit, home.vault.provider, incident_id, actor, reason,
                               time.time())
    finally:
        home.close()
    click.echo("%s closed; %d sealed contacts destroyed" % (incident_id, gone))


COMMANDS = (incidents_group,)
