"""`veilpost config check`: every check the gateway makes at start, and the
broker and database reached, one line per finding (gateway/config_check.py)."""

from __future__ import annotations

import sys

import click

from gateway import config as config_mod
from gateway.config_check import FAIL, Finding, check
from tools.cli.common import EXIT_FAILED, EXIT_OK, home_of, json_option, print_json, wants_json


@click.group("config")
def config_group() -> None:
    """The home's veilpost.toml."""


@config_group.command("check")
@click.option("--offline", is_flag=True, help="Skip reaching the broker and the database.")
@json_option
@click.pass_context
def config_check(ctx: click.Context, offline: bool) -> None:
    """Check types, ranges, unknown keys, the time zone, owner-only secrets,
    the key provider, and (unless --offline) that the broker and the
    database answer. One line per finding; exit 1 when any fails."""
    home = home_of(ctx)
    try:
        cfg = config_mod.load(home)
    except config_mod.ConfigError as e:
        findings = [Finding("config", FAIL, p) for p in e.problems]
    else:
        findings = check(cfg, reach=not offline)
    if wants_json(ctx):
        print_json([{"topic": f.topic, "level": f.level, "text": f.text} for f in findings])
    else:
        for f in findings:
            click.echo(str(f))
    failed = [f for f in findings if f.level == FAIL]
    if failed and not wants_json(ctx):
        click.echo("%d of %d checks failed" % (len(failed), len(findings)), err=True)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


COMMANDS = (config_group,)
