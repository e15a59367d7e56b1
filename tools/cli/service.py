"""`veilpost init` and `veilpost gateway run`: make a home folder, and run
the gateway service in it until interrupted."""

from __future__ import annotations

import logging

import click

from gateway.home import init
from tools.cli.common import home_of, open_gateway_home


@click.command("init")
@click.pass_context
def init_cmd(ctx: click.Context) -> None:
    """Create config, keys and database (keeps what already exists)."""
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
    from gateway.supervisor import supervised

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("amqtt").setLevel(logging.WARNING)  # the embedded broker is chatty
    home = open_gateway_home(ctx)
    service = supervised(home)
    click.echo("gateway %s starting" % home.config.gateway_id, err=True)
    service.run_forever()


COMMANDS = (init_cmd, gateway_group)
