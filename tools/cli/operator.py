"""`veilpost operator add|list|remove`: the people who act on the gateway
by name (IT, depot staff, complaint agents); officers are `veilpost officer`."""

from __future__ import annotations

import time

import click

from gateway import operators
from tools.cli.common import acting, as_option, emit, json_option, open_gateway_home


@click.group("operator")
def operator_group() -> None:
    """People who act by name: IT, depot staff, complaint agents (`--as NAME`)."""


@operator_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["it", "staff", "agent"]), required=True,
              help="it: enrol and revoke handhelds, import routes; staff: print, open cases;"
                   " agent: see what an approved complaint case names.")
@as_option
@click.pass_context
def operator_add(ctx: click.Context, name: str, role: str, as_name: str | None) -> None:
    """Put NAME on the list. The first person is added by anyone holding the
    home; after that an IT operator or an officer adds the others (--as)."""
    home = open_gateway_home(ctx)
    try:
        first = not operators.listing(home.store)
        actor = home.audit.person("it", name) if first else acting(home, as_name, "it", "officer")[1]
        person = operators.add(home.store, name, role)
        with home.store.transaction() as tx:
            home.audit.append(tx, time.time(), actor, "", "operator-add", "", "ok",
                              {"person": home.audit.person(person.kind, person.name), "role": role})
    finally:
        home.close()
    click.echo("%s added as %s" % (name, operators.ROLE_NAMES[role]))


@operator_group.command("remove")
@click.argument("name")
@as_option
@click.pass_context
def operator_remove(ctx: click.Context, name: str, as_name: str | None) -> None:
    """Take NAME off the list (their past audit entries stay)."""
    home = open_gateway_home(ctx)
    try:
        actor = acting(home, as_name, "it", "officer")[1]
        gone = [p for p in operators.listing(home.store) if p.name == name and p.role != "officer"]
        if not gone or not operators.remove(home.store, name):
            raise click.ClickException("%s is not on the list" % name)
        with home.store.transaction() as tx:
            home.audit.append(tx, time.time(), actor, "", "operator-remove", "", "ok",
                              {"person": home.audit.person(gone[0].kind, name), "role": gone[0].role})
    finally:
        home.close()
    click.echo("%s removed" % name)


@operator_group.command("list")
@json_option
@click.pass_context
def operator_list(ctx: click.Context) -> None:
    """Everyone who may act by name, with their role (officers included)."""
    home = open_gateway_home(ctx)
    try:
        people = operators.listing(home.store)
    finally:
        home.close()
    emit(ctx, [{"name": p.name, "role": p.role} for p in people],
         lambda p: "%-24s %s" % (p["name"], operators.ROLE_NAMES[p["role"]]),
         "nobody yet: `veilpost operator add NAME --role it`")


COMMANDS = (operator_group,)
