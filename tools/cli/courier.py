"""`veilpost courier add|suspend|resume|reset-pin`: courier accounts. Every
change is audited before it is made; a courier's badge goes into the audit
log only as the log's keyed hash of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from gateway import registry
from gateway.home import Home
from tools.cli.common import acting, as_option, emit, json_option, open_gateway_home


@click.group("courier")
def courier_group() -> None:
    """Courier accounts."""


@courier_group.command("add")
@click.argument("badge")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The courier's PIN, 4 to 12 digits (asked for when not given).")
@click.option("--depot", required=True, help="The depot the courier works from.")
@click.option("--shift", default=None, help='Local time "HH:MM-HH:MM" (default from config).')
@as_option
@click.pass_context
def courier_add(ctx: click.Context, badge: str, pin: str, depot: str, shift: str | None,
                as_name: str | None) -> None:
    """Register a courier by badge id, with a PIN (kept only as an scrypt hash)."""
    home = open_gateway_home(ctx)
    actor = acting(home, as_name, "it", "staff")[1]
    registry.add_courier(home.store, badge, pin, depot, shift or home.config.reveal.default_shift)
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), actor, "", "courier-add", "", "ok",
                          {"courier": home.audit.person("courier", badge), "depot": depot})
    click.echo("courier %s added (depot %s)" % (badge, depot))


@contextmanager
def _courier_home(ctx: click.Context, badge: str) -> Iterator[Home]:
    """The home, for a courier that exists; closed afterwards."""
    home = open_gateway_home(ctx)
    try:
        if registry.courier_state(home.store, badge) is None:
            raise click.ClickException(f"no courier {badge}")
        yield home
    finally:
        home.close()


@courier_group.command("suspend")
@click.argument("badge")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@as_option
@click.pass_context
def courier_suspend(ctx: click.Context, badge: str, reason: str, as_name: str | None) -> None:
    """Refuse a courier's logins and reveals until resumed."""
    with _courier_home(ctx, badge) as home:
        actor = acting(home, as_name, "it")[1]
        with home.store.transaction() as tx:
            home.audit.append(tx, time.time(), actor, "", "courier-suspend", "", "ok",
                              {"courier": home.audit.person("courier", badge), "reason": reason})
            registry.set_courier_state(tx, badge, "suspended")
            tx.run("UPDATE sessions SET ended = ? WHERE courier_id = ? AND ended IS NULL", time.time(), badge)
    click.echo(f"courier {badge} suspended")


@courier_group.command("resume")
@click.argument("badge")
@as_option
@click.pass_context
def courier_resume(ctx: click.Context, badge: str, as_name: str | None) -> None:
    """Let a suspended courier log in again."""
    with _courier_home(ctx, badge) as home:
        actor = acting(home, as_name, "it")[1]
        with home.store.transaction() as tx:
            home.audit.append(tx, time.time(), actor, "", "courier-resume", "", "ok",
                              {"courier": home.audit.person("courier", badge)})
            registry.set_courier_state(tx, badge, "active")
    click.echo(f"courier {badge} active again")


@courier_group.command("reset-pin")
@click.argument("badge")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new PIN, 4 to 12 digits (asked for when not given).")
@as_option
@click.pass_context
def courier_reset_pin(ctx: click.Context, badge: str, pin: str, as_name: str | None) -> None:
    """Give a courier a new PIN (4 to 12 digits)."""
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise click.ClickException("PIN must be 4 to 12 digits")
    with _courier_home(ctx, badge) as home:
        actor = acting(home, as_name, "it")[1]
        with home.store.transaction() as tx:
            home.audit.append(tx, time.time(), actor, "", "courier-reset-pin", "", "ok",
                              {"courier": home.audit.person("courier", badge)})
            registry.set_pin(tx, badge, pin)
    click.echo(f"courier {badge}: new PIN set")


@courier_group.command("list")
@json_option
@click.pass_context
def courier_list(ctx: click.Context) -> None:
    """Every courier: badge, depot, shift, state, and the handheld logged in on."""
    home = open_gateway_home(ctx)
    try:
        rows = home.store.all(
            "SELECT c.courier_id, c.depot, c.shift, c.state, c.created,"
            " (SELECT s.device_id FROM sessions s WHERE s.courier_id = c.courier_id AND s.ended IS NULL"
            "  ORDER BY s.started DESC LIMIT 1)"
            " FROM couriers c ORDER BY c.courier_id")
    finally:
        home.close()
    found = [{"courier": r[0], "depot": r[1], "shift": r[2], "state": r[3], "created": r[4],
              "logged_in_on": r[5]} for r in rows]
    emit(ctx, found, lambda c: "%-12s depot %-6s shift %s  %-9s %s" % (
        c["courier"], c["depot"], c["shift"], c["state"],
        "on " + c["logged_in_on"] if c["logged_in_on"] else "not logged in"),
        "no couriers: `veilpost courier add` registers one")


COMMANDS = (courier_group,)
