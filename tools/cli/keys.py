"""`veilpost keys rotate`: a new key-encryption key, everything re-wrapped
under it while the gateway keeps running."""

from __future__ import annotations

import time

import click

from tools.cli.common import acting, as_option, open_gateway_home


@click.group("keys")
def keys_group() -> None:
    """Key-encryption keys."""


@keys_group.command("rotate")
@click.option("--keep-old", is_flag=True, help="Keep the old key files after re-wrapping.")
@as_option
@click.pass_context
def keys_rotate(ctx: click.Context, keep_old: bool, as_name: str | None) -> None:
    """New KEK; re-wrap every data key and device secret under it while the
    gateway keeps running (old keys stay readable until done), then retire."""
    home = open_gateway_home(ctx)
    actor = acting(home, as_name, "it")[1]
    kek = home.keys.kek
    old = kek.ids()
    new = kek.create()
    n = home.vault.rewrap(home.store)
    with home.store.transaction() as tx:
        home.audit.append(tx, time.time(), actor, "", "keys-rotate", "", "ok",
                          {"kek": new, "rewrapped": n})
    retired = []
    if not keep_old:
        in_use = home.vault.kek_ids_in_use(home.store)
        for k in old:
            if k not in in_use:
                kek.retire(k)
                retired.append(k)
    click.echo("new key-encryption key %s; %d keys re-wrapped; retired %s"
               % (new, n, ", ".join(retired) or "none"))


COMMANDS = (keys_group,)
