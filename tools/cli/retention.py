"""`veilpost retention run`: crypto-shred the parcels past their retention period."""

from __future__ import annotations

import time

import click

from gateway import retention
from tools.cli.common import open_gateway_home


@click.group("retention")
def retention_group() -> None:
    """Crypto-shredding after the retention period."""


@retention_group.command("run")
@click.pass_context
def retention_run(ctx: click.Context) -> None:
    home = open_gateway_home(ctx)
    gone = retention.run_retention(home.store, home.vault, home.audit, home.config, time.time())
    click.echo("shredded %d parcels" % len(gone))


COMMANDS = (retention_group,)
