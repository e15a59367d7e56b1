"""`veilpost suspension lift`: a named officer reinstates what the sentinel
suspended (audited)."""

from __future__ import annotations

import time

import click

from gateway import sentinel
from tools.cli.common import OFFICER_PIN_HELP, open_gateway_home


@click.group("suspension")
def suspension_group() -> None:
    """Suspensions the sentinel imposed."""


@suspension_group.command("lift")
@click.option("--officer", required=True, help="Name of the security officer lifting it.")
@click.option("--courier", default=None, help="Badge of the courier to reinstate.")
@click.option("--device", default=None, help="Id of the handheld to reinstate (its broker account too).")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--pin", prompt="Officer PIN", hide_input=True, help=OFFICER_PIN_HELP)
@click.pass_context
def suspension_lift(ctx: click.Context, officer: str, courier: str | None, device: str | None, reason: str,
                    pin: str) -> None:
    """Reinstate a courier and/or device (audited)."""
    home = open_gateway_home(ctx)
    sentinel.lift(home.store, home.audit, officer, pin, time.time(), reason, courier, device)
    if device:
        click.echo(sentinel.reenable_broker_account(home.config, device))
    click.echo("suspension lifted by %s" % officer)


COMMANDS = (suspension_group,)
