"""What every `veilpost` command shares: where the home folder is, opening
it, output files, the exit codes, and finding the tools (demo, bench,
fleet) that the CLI runs without importing them. A leaf: it imports no
command module."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import IO, Any

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

# Error classes -> exit code; any other VeilpostError is EXIT_FAILED.
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigurationError, EXIT_CONFIG),
    (StoreError, EXIT_UNAVAILABLE),
    (BrokerError, EXIT_UNAVAILABLE),
    (PrinterOffline, EXIT_UNAVAILABLE),
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
