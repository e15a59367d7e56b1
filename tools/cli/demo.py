"""`veilpost demo`: the options; the story itself is tools/demo, found
through the `veilpost.tools` entry point `demo`."""

from __future__ import annotations

import sys

import click

from tools.cli.common import tool

DEFAULT_SECONDS = 55.0


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="veilpost-demo",
              show_default=True, help="Folder for summary.json, the label PNGs and the log.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A route manifest CSV (route-import format) instead of the sample of fake parcels.")
@click.option("--broker", "broker_url", default=None, metavar="mqtt://[admin:password@]host:port",
              help="An external broker (Mosquitto with dynamic security: give its admin) instead of the"
                   " embedded one.")
@click.option("--seconds", type=click.FloatRange(20, 3600), default=DEFAULT_SECONDS, show_default=True,
              help="Upper bound on the run time; the couriers stop early to keep it.")
def demo_cmd(out_dir: str, manifest: str | None, broker_url: str | None, seconds: float) -> None:
    """Run the whole story on fake parcels and check that no plaintext leaked."""
    sys.exit(tool("demo")(out_dir, manifest, broker_url, seconds))


COMMANDS = (demo_cmd,)
