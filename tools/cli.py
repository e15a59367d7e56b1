"""The `veilpost` command. Each area adds its own click commands here; a
subcommand is registered only once it works."""

from __future__ import annotations

import os
from pathlib import Path

import click

DEFAULT_HOME = "./veilpost-data"


def resolve_home(option: str | None) -> Path:
    """--home, else $VEILPOST_HOME, else ./veilpost-data."""
    return Path(option or os.environ.get("VEILPOST_HOME") or DEFAULT_HOME)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="Where config, keys and the database live (default: $VEILPOST_HOME or ./veilpost-data).",
)
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """veilpost: masked waybills, time-limited reveals, and an audit trail."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = resolve_home(home)


def home_of(ctx: click.Context) -> Path:
    """The home folder chosen on the command line, for subcommands."""
    return Path(ctx.find_root().obj["home"])


# Registrations: one line per area, added when its commands work.
__import__("printer_drivers.cli", fromlist=["register"]).register(main)  # print, reprint, printers, label
from gateway.cli import register as register_gateway  # noqa: E402

register_gateway(main)
from tools import firmware_cli, fleet  # noqa: E402, I001  (firmware)
main.add_command(firmware_cli.firmware_cmd); main.add_command(fleet.fleet_cmd)  # noqa: E702
main.add_command(__import__("tools.bench.run", fromlist=["bench_cmd"]).bench_cmd)  # bench (scale-out)
__import__("tools.provision_cli", fromlist=["register"]).register(main)  # device, courier suspend/reset-pin


if __name__ == "__main__":
    main()
