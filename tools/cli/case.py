"""`veilpost case open|approve`: a complaint case reopens a sealed parcel
for a named agent, once two different officers approved it."""

from __future__ import annotations

import time

import click

from gateway import retention
from tools.cli.common import open_gateway_home


@click.group("case")
def case_group() -> None:
    """Complaint cases that reopen a sealed parcel."""


@case_group.command("open")
@click.argument("case_id")
@click.argument("tracking_no")
@click.option("--reason", required=True)
@click.option("--by", "opened_by", required=True, help="Who opens the case.")
@click.option("--for", "for_account", required=True,
              help="Who may see the parcel once approved: a courier badge, or agent:NAME.")
@click.option("--fields", default="1,2,3", show_default=True,
              help="Fields it opens: 1 name, 2 phone, 3 address.")
@click.pass_context
def case_open(ctx: click.Context, case_id: str, tracking_no: str, reason: str, opened_by: str,
              for_account: str, fields: str) -> None:
    """Open a complaint case for TRACKING_NO, naming who may see which fields."""
    try:
        wanted = tuple(int(f) for f in fields.split(",") if f.strip())
    except ValueError:
        raise click.BadParameter("a list such as 2 or 1,2,3", param_hint="--fields") from None
    home = open_gateway_home(ctx)
    retention.open_case(home.store, home.audit, case_id, tracking_no, reason, opened_by, time.time(),
                        for_account=for_account, fields=wanted)
    click.echo("case %s opened; it needs approval from two different officers" % case_id)


@case_group.command("approve")
@click.argument("case_id")
@click.option("--officer", required=True)
@click.option("--pin", prompt="Officer PIN", hide_input=True)
@click.pass_context
def case_approve(ctx: click.Context, case_id: str, officer: str, pin: str) -> None:
    home = open_gateway_home(ctx)
    result = retention.approve_case(home.store, home.audit, home.config, case_id, officer, pin, time.time())
    if result.open_until is None:
        click.echo("case %s: %d approval, one more officer needed" % (case_id, result.approvals))
    else:
        click.echo("case %s approved; parcel open until %s" % (
            case_id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.open_until))))


COMMANDS = (case_group,)
