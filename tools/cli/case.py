"""`veilpost case open|approve|list|view`: a complaint case reopens a sealed
parcel for a named agent or courier, once two different officers approved
it; `view` shows the agent what it opens (gateway/cases.py)."""

from __future__ import annotations

import time

import click

from gateway import cases, retention
from gateway.disclosure import Disclosure
from tools.cli.common import (
    OFFICER_PIN_HELP,
    acting,
    as_option,
    emit,
    json_option,
    local_time,
    open_gateway_home,
    print_json,
    wants_json,
)


@click.group("case")
def case_group() -> None:
    """Complaint cases that reopen a sealed parcel."""


@case_group.command("open")
@click.argument("case_id")
@click.argument("tracking_no")
@click.option("--reason", required=True, help="Why (the complaint; kept in the audit log).")
@click.option("--for", "for_account", required=True,
              help="Who may see the parcel once approved: a courier badge, or agent:NAME.")
@click.option("--fields", default="1,2,3", show_default=True,
              help="Fields it opens: 1 name, 2 phone, 3 address.")
@as_option
@click.pass_context
def case_open(ctx: click.Context, case_id: str, tracking_no: str, reason: str, for_account: str, fields: str,
              as_name: str | None) -> None:
    """Open a complaint case for TRACKING_NO, naming who may see which fields."""
    try:
        wanted = tuple(int(f) for f in fields.split(",") if f.strip())
    except ValueError:
        raise click.BadParameter("a list such as 2 or 1,2,3", param_hint="--fields") from None
    home = open_gateway_home(ctx)
    try:
        opened_by = acting(home, as_name, "staff", "agent", "officer")[0]  # depot staff or a complaint agent
        retention.open_case(home.store, home.audit, case_id, tracking_no, reason, opened_by, time.time(),
                            for_account=for_account, fields=wanted)
    finally:
        home.close()
    click.echo("case %s opened; it needs approval from two different officers" % case_id)


@case_group.command("approve")
@click.argument("case_id")
@click.option("--officer", required=True, help="Name of the approving security officer.")
@click.option("--pin", prompt="Officer PIN", hide_input=True, help=OFFICER_PIN_HELP)
@click.pass_context
def case_approve(ctx: click.Context, case_id: str, officer: str, pin: str) -> None:
    """Approve CASE_ID; the second approval, by a different officer, opens the parcel."""
    home = open_gateway_home(ctx)
    result = retention.approve_case(home.store, home.audit, home.config, case_id, officer, pin, time.time())
    if result.open_until is None:
        click.echo("case %s: %d approval, one more officer needed" % (case_id, result.approvals))
    else:
        click.echo("case %s approved; parcel open until %s" % (
            case_id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.open_until))))


@case_group.command("list")
@json_option
@click.pass_context
def case_list(ctx: click.Context) -> None:
    """Every complaint case: its parcel, for whom, approvals, open until when."""
    home = open_gateway_home(ctx)
    try:
        rows = home.store.all(
            "SELECT c.case_id, c.tracking_no, c.opened_by, c.opened, c.account, c.fields, c.open_until,"
            " (SELECT COUNT(*) FROM approvals a WHERE a.case_id = c.case_id)"
            " FROM cases c ORDER BY c.opened")
    finally:
        home.close()
    now = time.time()
    found = [{"case": r[0], "tracking_no": r[1], "opened_by": r[2], "opened": r[3], "for": r[4],
              "fields": [int(f) for f in str(r[5]).split(",") if f], "open_until": r[6], "approvals": r[7],
              "state": "open" if r[6] and r[6] > now else "closed" if r[6] else "pending"} for r in rows]
    emit(ctx, found, lambda c: "%-10s %s  for %s  fields %s  %d approval(s)  %s" % (
        c["case"], c["tracking_no"], c["for"] or "-", ",".join(str(f) for f in c["fields"]), c["approvals"],
        "open until " + local_time(c["open_until"]) if c["state"] == "open" else c["state"]),
        "no complaint cases")


@case_group.command("view")
@click.argument("case_id")
@as_option
@json_option
@click.pass_context
def case_view(ctx: click.Context, case_id: str, as_name: str | None) -> None:
    """Show the fields CASE_ID opens, to the complaint agent it names, while it is open (audited)."""
    home = open_gateway_home(ctx)
    try:
        name, _pseudonym = acting(home, as_name, "agent")
        desk = Disclosure(home.keys, home.vault, home.audit, home.config, home.zone)
        shown = cases.view(home.store, desk, case_id, name, time.time(), home.zone)
    finally:
        home.close()
    if wants_json(ctx):
        print_json(shown)
        return
    for field, value in shown.items():
        click.echo("%s: %s" % (field, value))


COMMANDS = (case_group,)
