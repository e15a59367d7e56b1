"""What every `veilpost` command shares: where the home folder is, opening
it, output files, the exit codes, and finding the tools (demo, bench,
fleet) that the CLI runs without importing them. A leaf: it imports no
command module."""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from gateway.home import Home, open_home
from printer_drivers.transport import PrinterOffline
from protocol.errors import BrokerError, ConfigurationError, StoreError, VeilpostError

DEFAULT_HOME = "./veilpost-data"
TOOLS_GROUP = "veilpost.tools"

# Exit codes, as `veilpost --help` and the README list them.
EXIT_OK = 0
EXIT_FAILED = 1  # refused, a check failed, or a step could not be done (the line says which)
EXIT_USAGE = 2  # wrong options or arguments (click's own code)
EXIT_CONFIG = 3  # the home, its config, its keys or an input file need fixing
EXIT_UNAVAILABLE = 4  # the store, the broker or a printer failed or cannot be reached

EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 refused, a check failed or a step was not done; 2 wrong usage;"
    " 3 the home, config, keys or an input file need fixing; 4 the store, the broker or a printer"
    " failed or cannot be reached."
)

# Error classes -> exit code, the first that matches; any other VeilpostError
# is EXIT_FAILED. An unreachable broker at the gateway's start is both a
# start refusal (a ConfigurationError) and a BrokerError: it is 4.
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (StoreError, EXIT_UNAVAILABLE),
    (BrokerError, EXIT_UNAVAILABLE),
    (PrinterOffline, EXIT_UNAVAILABLE),
    (ConfigurationError, EXIT_CONFIG),
)


def exit_code(error: VeilpostError) -> int:
    """The documented exit code for this error (README "Exit codes")."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return EXIT_FAILED


def one_line(error: BaseException) -> str:
    """The error's message on one line (a multi-line one, e.g. a tool's
    stderr, is joined), never a traceback."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def resolve_home(option: str | None) -> Path:
    """--home, else $VEILPOST_HOME, else ./veilpost-data."""
    return Path(option or os.environ.get("VEILPOST_HOME") or DEFAULT_HOME)


def home_of(ctx: click.Context) -> Path:
    """The home folder chosen on the command line, for subcommands."""
    return Path(ctx.find_root().obj["home"])


def root_obj(ctx: click.Context) -> dict[str, Any]:
    """What the root group keeps for every command: home, json, log_level."""
    root = ctx.find_root()
    root.ensure_object(dict)
    obj: dict[str, Any] = root.obj
    return obj


# --- global options, accepted before or after the subcommand ---------------------------

HOME_HELP = "Where config, keys and the database live (default: $VEILPOST_HOME or ./veilpost-data)."
JSON_HELP = "Print JSON instead of text (a list is one JSON array)."
LOG_LEVEL_HELP = ("Log level: debug, info, warning or error (third-party libraries stay at warning"
                  " unless debug).")
OFFICER_PIN_HELP = "The officer's PIN (asked for when not given)."
LOG_LEVELS = ("debug", "info", "warning", "error")


def _set_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        root_obj(ctx)["home"] = resolve_home(value)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        root_obj(ctx)["json"] = True


def home_option() -> click.Option:
    """`--home`, for a subcommand: `veilpost route list --home DIR` works too."""
    return click.Option(["--home"], type=click.Path(file_okay=False), default=None, expose_value=False,
                        is_eager=True, callback=_set_home, help=HOME_HELP)


F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    """`--json` on a list or status command (the root's `--json` works too)."""
    return click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_set_json,
                        help=JSON_HELP)(f)


def wants_json(ctx: click.Context) -> bool:
    return bool(root_obj(ctx).get("json"))


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, sort_keys=True))


def emit(ctx: click.Context, rows: list[dict[str, Any]], text: Callable[[dict[str, Any]], str],
         empty: str) -> None:
    """A list: a JSON array with --json, else one line per row (or `empty`)."""
    if wants_json(ctx):
        print_json(rows)
        return
    for row in rows:
        click.echo(text(row))
    if not rows:
        click.echo(empty)


def local_time(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


SINCE_HELP = ("How far back: a duration (30m, 2h, 7d), a date or time (2030-01-02, 2030-01-02T08:00)"
              " or Unix seconds.")


def parse_since(text: str, now: float | None = None) -> float:
    """A --since value as Unix seconds; click.BadParameter when it is none of the forms."""
    now = time.time() if now is None else now
    value = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:].lower() in units and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * units[value[-1].lower()]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise click.BadParameter("%r is not a duration (2h), a date or time (2030-01-02T08:00) or Unix"
                                 " seconds" % text, param_hint="--since") from None


def open_gateway_home(ctx: click.Context) -> Home:
    """The gateway home named on the command line, opened. A missing home or
    missing keys is a ConfigurationError (exit 3); an unreadable folder too."""
    try:
        return open_home(home_of(ctx))
    except OSError as e:
        raise ConfigurationError("cannot open the home folder %s: %s" % (home_of(ctx), e)) from None


def out_file(path: str | None) -> IO[str]:
    """Standard output for None or "-", else the named file."""
    return sys.stdout if path in (None, "-") else open(path, "w", encoding="utf-8")  # noqa: SIM115


class ToolMissing(ConfigurationError):
    """A tool the CLI runs (demo, bench, fleet) is not installed."""


def _declared_in_checkout() -> dict[str, str]:
    """The tools this source checkout declares in its pyproject.toml: a
    checkout run from source may have older installed metadata."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    declared = data.get("project", {}).get("entry-points", {}).get(TOOLS_GROUP, {})
    return {str(k): str(v) for k, v in declared.items()}


def tool(name: str) -> Callable[..., Any]:
    """The implementation of `veilpost NAME`, registered in the
    `veilpost.tools` entry-point group (pyproject.toml), so that the CLI
    layer never imports the tools layer."""
    found = [ep for ep in metadata.entry_points(group=TOOLS_GROUP) if ep.name == name]
    if found:
        entry = found[0]
    else:
        value = _declared_in_checkout().get(name)
        if value is None:
            raise ToolMissing("`veilpost %s` is not installed: reinstall veilpost (pip install .) to"
                              " register its tools" % name)
        entry = metadata.EntryPoint(name, value, TOOLS_GROUP)
    try:
        loaded = entry.load()
    except ImportError as e:
        raise ToolMissing("`veilpost %s` cannot load %s: %s" % (name, entry.value, e)) from None
    if not callable(loaded):
        raise ToolMissing("`veilpost %s`: %s is not callable" % (name, entry.value))
    return loaded  # type: ignore[no-any-return]


# --- who is acting: `--as NAME`, checked against gateway/operators.py ------------------

AS_HELP = "Who you are (a name on `veilpost operator list`); default $VEILPOST_AS."


def as_option(f: F) -> F:
    """`--as NAME` on a command whose audit entry names the person acting."""
    return click.option("--as", "as_name", default=None, envvar="VEILPOST_AS", metavar="NAME",
                        help=AS_HELP)(f)


def acting(home: Home, as_name: str | None, *roles: str) -> tuple[str, str]:
    """(name, audit pseudonym) of the person named with --as, if they hold one
    of `roles`; a NotAnOperator (exit 1) says who may act otherwise."""
    from gateway.operators import require  # a leaf: gateway.operators imports no CLI

    person = require(home.store, as_name, roles)
    return person.name, home.audit.person(person.kind, person.name)
