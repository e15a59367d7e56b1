"""`veilpost suspension lift`: a named officer reinstates what the sentinel
suspended (audited)."""

from __future__ import annotations

import time

import click

from gateway import sentinel
from tools.cli.common import open_gateway_home


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
    home = open_gateway_home(ctx)
    sentinel.lift(home.store, home.audit, officer, pin, time.time(), reason, courier, device)
    if device:
        click.echo(sentinel.reenable_broker_account(home.config, device))
    click.echo("suspension lifted by %s" % officer)


COMMANDS = (suspension_group,)
