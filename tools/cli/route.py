"""`veilpost route import`: load a route manifest, all or nothing."""

from __future__ import annotations

import time
from pathlib import Path

import click

from gateway.manifest import ManifestError, import_manifest
from tools.cli.common import open_gateway_home


@click.group("route")
def route_group() -> None:
    """Route manifests."""


@route_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def route_import(ctx: click.Context, file: str) -> None:
    """Import a manifest CSV (columns in gateway/manifest.py); all or nothing."""
    home = open_gateway_home(ctx)
    try:
        summary = import_manifest(home.store, home.vault, home.audit, Path(file), home.zone, time.time())
    except ManifestError as e:
        raise ManifestError("%s: nothing imported: %s" % (Path(file).name, e)) from None
    click.echo(str(summary))


COMMANDS = (route_group,)
