"""`veilpost broker add-gateway`: the gateway's own account on the depot's
Mosquitto, made with the home's dynamic-security admin
(gateway/broker_admin.add_gateway_account)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway import config as config_mod
from gateway.broker_admin import GATEWAY_USERNAME, PASSWORD_FILE, add_gateway_account
from tools.cli.common import home_of


@click.group("broker")
def broker_group() -> None:
    """The depot's Mosquitto (dynamic security) as the gateway uses it."""


@broker_group.command("add-gateway")
@click.option("--host", default=None,
              help="The broker's host (default: [mqtt] broker of the config, else 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Its port for the gateway (default: [mqtt] port of the config, 1883).")
@click.option("--username", default=GATEWAY_USERNAME, show_default=True, help="The gateway's account name.")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The depot CA, when that port is a TLS listener.")
@click.pass_context
def add_gateway(ctx: click.Context, host: str | None, port: int | None, username: str,
                ca_file: Path | None) -> None:
    """Create the gateway's broker account (kept if it exists and the home
    holds its password), write the password to HOME/mqtt.password (0600) and
    point veilpost.toml at the broker. Needs HOME/broker/admin.secret."""
    home = home_of(ctx)
    cfg = config_mod.load(home)
    if host is None:
        host = cfg.mqtt.broker if cfg.mqtt.broker != "embedded" else "127.0.0.1"
    account = add_gateway_account(home, host, port or cfg.mqtt.port, username, ca_file)
    what = "created" if account.created else "kept (it exists and this home holds its password)"
    click.echo("gateway account %s on %s:%d %s; password in %s; veilpost.toml points at the broker"
               % (account.username, host, port or cfg.mqtt.port, what, home / PASSWORD_FILE))


COMMANDS = (broker_group,)
