"""The `veilpost` command: the root group and every command group, one
module each in this package (tools/cli/common.py holds what they share).

The CLI sits above gateway/, printer_drivers/ and protocol/ and below the
tools: `veilpost demo`, `bench` and `fleet` find their implementation
through the `veilpost.tools` entry points (pyproject.toml), never by an
import. Any VeilpostError ends the command with one line on stderr and the
exit code of its branch (common.EXIT_CODES_HELP). `--home` is accepted
before the subcommand or after it, `--json` by every list and status
command, `--log-level` by the root and by `gateway run`."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import click

from gateway.logs import configure_logging
from protocol.errors import VeilpostError
from tools.cli import (
    alarms,
    audit,
    bench,
    broker,
    case,
    config,
    courier,
    demo,
    device,
    firmware,
    fleet,
    incidents,
    keys,
    officer,
    operator,
    parcel,
    printing,
    retention,
    route,
    service,
    suspension,
)
from tools.cli.common import (
    EXIT_CODES_HELP,
    HOME_HELP,
    JSON_HELP,
    LOG_LEVEL_HELP,
    LOG_LEVELS,
    exit_code,
    home_of,
    home_option,
    one_line,
    resolve_home,
)

__all__ = ["home_of", "main", "resolve_home"]


class VeilpostGroup(click.Group):
    """The root group: a VeilpostError becomes one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VeilpostError as e:
            click.echo("veilpost: " + one_line(e), err=True)
            ctx.exit(exit_code(e))


def _version() -> str:
    try:
        return metadata.version("veilpost")
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed)"


@click.group(cls=VeilpostGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_CODES_HELP)
@click.option("--home", type=click.Path(file_okay=False), default=None, help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " For list and status commands.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              help=LOG_LEVEL_HELP + " Default: warning (gateway run: info).")
@click.version_option(_version(), "--version", "-V", prog_name="veilpost", message="%(prog)s %(version)s",
                      help="Show the veilpost version and exit.")
@click.pass_context
def main(ctx: click.Context, home: str | None, as_json: bool, log_level: str | None) -> None:
    """veilpost: masked waybills, time-limited reveals, and an audit trail."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = resolve_home(home)
    ctx.obj["json"] = as_json
    ctx.obj["log_level"] = log_level
    configure_logging(log_level or "warning")  # third-party libraries at WARNING unless debug


for _module in (service, config, route, parcel, audit, incidents, alarms, keys, courier, officer, operator,
                suspension, case, retention, device, broker, printing, firmware, fleet, demo, bench):
    for _command in _module.COMMANDS:
        main.add_command(_command)


def _give_home(command: click.Command) -> None:
    """Every subcommand accepts --home too (after the subcommand's name)."""
    if not any("--home" in p.opts for p in command.params):
        command.params.append(home_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _give_home(sub)


for _command in main.commands.values():
    _give_home(_command)


if __name__ == "__main__":
    main()
