"""`veilpost officer add`: named security officers, who lift suspensions and
approve complaint cases."""

from __future__ import annotations

import time

import click

from gateway import registry
from tools.cli.common import open_gateway_home


@click.group("officer")
def officer_group() -> None:
    """Named security officers (lift suspensions, approve complaint cases)."""


@officer_group.command("add")
@click.argument("name")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_context
def officer_add(ctx: click.Context, name: str, pin: str) -> None:
    home = open_gateway_home(ctx)
    registry.add_officer(home.store, name, pin)
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "officer-add", "", "ok",
                          home.audit.person("officer", name))
    click.echo("security officer %s added" % name)


COMMANDS = (officer_group,)
