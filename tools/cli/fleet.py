"""`veilpost fleet`: the options; the simulated handhelds are tools/fleet.py,
found through the `veilpost.tools` entry point `fleet`."""

from __future__ import annotations

import sys

import click

from tools.cli.common import home_of, tool


@click.command("fleet")
@click.option("--devices", type=click.IntRange(1, 500), default=10, show_default=True)
@click.option("--parcels", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Parcels on each handheld's route.")
@click.option("--per-minute", type=click.IntRange(0), default=0,
              help="Raise the gateway's reveals-per-minute budgets to this for the run (0: keep them).")
@click.pass_context
def fleet_cmd(ctx: click.Context, devices: int, parcels: int, per_minute: int) -> None:
    """Run N simulated handhelds against a gateway on the embedded broker, in
    this process, with fake couriers and routes added to the home (--home)."""
    sys.exit(tool("fleet")(home_of(ctx), devices, parcels, per_minute, click.echo))


COMMANDS = (fleet_cmd,)
