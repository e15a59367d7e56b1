"""`veilpost audit verify|export`: the hash-chained audit log."""

from __future__ import annotations

import sys

import click

from gateway import audit as audit_mod
from tools.cli.common import EXIT_FAILED, open_gateway_home, out_file


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the whole chain and the signed checkpoints; non-zero on any break."""
    home = open_gateway_home(ctx)
    verdict = audit_mod.verify(home.store, home.keys.public_key())
    if not verdict.ok:
        click.echo("audit log BROKEN at entry %s: %s" % (verdict.first_bad, verdict.problem), err=True)
        sys.exit(EXIT_FAILED)
    click.echo("audit log intact: %d entries, %d signed checkpoints" % (verdict.entries, verdict.checkpoints))


@audit_group.command("export")
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.pass_context
def audit_export(ctx: click.Context, output: str | None) -> None:
    """Write every entry as JSON lines."""
    home = open_gateway_home(ctx)
    out = out_file(output)
    n = audit_mod.export(home.store, out)
    if out is not sys.stdout:
        out.close()
        click.echo("exported %d entries" % n, err=True)


COMMANDS = (audit_group,)
