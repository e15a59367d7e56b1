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


def _register_areas() -> None:
    """Each area's commands, registered once they work."""
    from gateway import cli as gateway_cli
    from printer_drivers import cli as printer_cli
    from tools import firmware_cli, fleet, provision_cli
    from tools.bench.run import bench_cmd
    from tools.demo import demo_cmd

    gateway_cli.register(main)  # init, gateway run, route import, audit, incidents, keys, courier, cases
    printer_cli.register(main)  # print, reprint, printers, label preview
    provision_cli.register(main)  # device, courier suspend/resume/reset-pin
    main.add_command(firmware_cli.firmware_cmd)
    main.add_command(fleet.fleet_cmd)
    main.add_command(demo_cmd)
    main.add_command(bench_cmd)


_register_areas()


if __name__ == "__main__":
    main()
