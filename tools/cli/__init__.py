"""The `veilpost` command: the root group and every command group, one
module each in this package (tools/cli/common.py holds what they share).

The CLI sits above gateway/, printer_drivers/ and protocol/ and below the
tools: `veilpost demo`, `bench` and `fleet` find their implementation
through the `veilpost.tools` entry points (pyproject.toml), never by an
import. Any VeilpostError ends the command with one line on stderr and the
exit code of its branch (common.EXIT_CODES_HELP)."""

from __future__ import annotations

from typing import Any

import click

from protocol.errors import VeilpostError
from tools.cli import (
    audit,
    bench,
    case,
    courier,
    demo,
    device,
    firmware,
    fleet,
    incidents,
    keys,
    officer,
    printing,
    retention,
    route,
    service,
    suspension,
)
from tools.cli.common import EXIT_CODES_HELP, exit_code, home_of, one_line, resolve_home

__all__ = ["home_of", "main", "resolve_home"]


class VeilpostGroup(click.Group):
    """The root group: a VeilpostError becomes one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VeilpostError as e:
            click.echo("veilpost: " + one_line(e), err=True)
            ctx.exit(exit_code(e))


@click.group(cls=VeilpostGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_CODES_HELP)
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


for _module in (service, route, audit, incidents, keys, courier, officer, suspension, case, retention,
                device, printing, firmware, fleet, demo, bench):
    for _command in _module.COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":
    main()
