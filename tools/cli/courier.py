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
from tools.cli.common import open_gateway_home


@click.group("courier")
def courier_group() -> None:
    """Courier accounts."""


@courier_group.command("add")
@click.argument("badge")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--depot", required=True)
@click.option("--shift", default=None, help='Local time "HH:MM-HH:MM" (default from config).')
@click.pass_context
def courier_add(ctx: click.Context, badge: str, pin: str, depot: str, shift: str | None) -> None:
    """Register a courier by badge id, with a PIN (kept only as an scrypt hash)."""
    home = open_gateway_home(ctx)
    registry.add_courier(home.store, badge, pin, depot, shift or home.config.reveal.default_shift)
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "courier-add", "", "ok",
                          home.audit.person("courier", badge))
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
@click.option("--reason", required=True)
@click.pass_context
def courier_suspend(ctx: click.Context, badge: str, reason: str) -> None:
    """Refuse a courier's logins and reveals until resumed."""
    with _courier_home(ctx, badge) as home, home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "courier-suspend", "", "ok",
                          home.audit.person("courier", badge) + " " + reason)
        registry.set_courier_state(tx, badge, "suspended")
        tx.run("UPDATE sessions SET ended = ? WHERE courier_id = ? AND ended IS NULL", time.time(), badge)
    click.echo(f"courier {badge} suspended")


@courier_group.command("resume")
@click.argument("badge")
@click.pass_context
def courier_resume(ctx: click.Context, badge: str) -> None:
    """Let a suspended courier log in again."""
    with _courier_home(ctx, badge) as home, home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "courier-resume", "", "ok",
                          home.audit.person("courier", badge))
        registry.set_courier_state(tx, badge, "active")
    click.echo(f"courier {badge} active again")


@courier_group.command("reset-pin")
@click.argument("badge")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True)
@click.pass_context
def courier_reset_pin(ctx: click.Context, badge: str, pin: str) -> None:
    """Give a courier a new PIN (4 to 12 digits)."""
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise click.ClickException("PIN must be 4 to 12 digits")
    with _courier_home(ctx, badge) as home, home.store.transaction() as tx:
        home.audit.append(tx, time.time(), "operator", "", "courier-reset-pin", "", "ok",
                          home.audit.person("courier", badge))
        registry.set_pin(tx, badge, pin)
    click.echo(f"courier {badge}: new PIN set")


COMMANDS = (courier_group,)
