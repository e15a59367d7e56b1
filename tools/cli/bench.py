"""`veilpost bench`: the options; the benchmarks are tools/bench, found
through the `veilpost.tools` entry point `bench`. Exits 1 when a section
failed or is missing."""

from __future__ import annotations

import sys

import click

from tools.cli.common import tool


@click.command("bench")
@click.option("--quick", is_flag=True, help="CI-sized run (well under two minutes).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None,
              help="Write the full report to this file.")
@click.option("--only", multiple=True, metavar="SECTION",
              help="Run only this section (repeatable): reveal, scale_out, labels, messages, crypto,"
                   " firmware, revoke, rotation, manifest, audit.")
def bench_cmd(quick: bool, json_file: str | None, only: tuple[str, ...]) -> None:
    """Measure throughput, latency, memory, label and message bytes, and
    MicroPython cost; print a summary and optionally write JSON."""
    sys.exit(tool("bench")(quick, json_file, list(only), lambda line: click.echo(line, err=True), click.echo))


COMMANDS = (bench_cmd,)
