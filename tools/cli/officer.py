"""`veilpost officer add|list`: named security officers, who lift
suspensions and approve complaint cases."""

from __future__ import annotations

import time

import click

from gateway import registry
from tools.cli.common import acting, as_option, emit, json_option, local_time, open_gateway_home


@click.group("officer")
def officer_group() -> None:
    """Named security officers (lift suspensions, approve complaint cases)."""


@officer_group.command("add")
@click.argument("name")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The officer's PIN, 6 to 12 digits (asked for when not given).")
@as_option
@click.pass_context
def officer_add(ctx: click.Context, name: str, pin: str, as_name: str | None) -> None:
    """Register a security officer by NAME, with a PIN (kept only as a hash).
    IT or another officer adds them (--as)."""
    home = open_gateway_home(ctx)
    actor = acting(home, as_name, "it", "officer")[1]
    registry.add_officer(home.store, name, pin)
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), actor, "", "officer-add", "", "ok",
                          {"officer": home.audit.person("officer", name)})
    click.echo("security officer %s added" % name)


@officer_group.command("list")
@json_option
@click.pass_context
def officer_list(ctx: click.Context) -> None:
    """Every security officer, with when they were added."""
    home = open_gateway_home(ctx)
    try:
        rows = home.store.all("SELECT name, created FROM officers ORDER BY name")
    finally:
        home.close()
    found = [{"officer": r[0], "created": r[1]} for r in rows]
    emit(ctx, found, lambda o: "%-24s added %s" % (o["officer"], local_time(o["created"])),
         "no security officers: `veilpost officer add` registers one")


COMMANDS = (officer_group,)
