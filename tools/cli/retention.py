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
    """Destroy the data key of every parcel past [retention] days_after_delivery,
    then each period key whose parcels are all due, in the key provider (audited)."""
    home = open_gateway_home(ctx)
    run = retention.retention_run(home.store, home.vault, home.audit, home.config, time.time())
    click.echo("shredded %d parcels; destroyed %d period keys; %d parcels kept (incident hold or"
               " complaint case), %d moved to a living key"
               % (len(run.shredded), len(run.destroyed), len(run.held), len(run.moved)))


COMMANDS = (retention_group,)
