"""`veilpost demo`: the whole system in under a minute, on this machine.

It starts the embedded broker (or uses `--broker mqtt://...`), a gateway on a
temporary home made by `veilpost init`, an emulated label printer and
simulated handhelds running the firmware source; loads the sample manifest
of obviously fake people (or `--manifest`); tells the story in six chapters;
then searches every broker message, flash image, the log, the print spool,
the printer's commands and the gateway database for the manifest's
plaintext, and writes summary.json (and the label PNGs) to `--out`.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import click

DEFAULT_SECONDS = 55.0
SAMPLE = "sample_manifest.csv"


def _name(chapter: Any) -> str:
    return str(getattr(chapter, "__name__", None) or chapter.func.__name__)


def sample_manifest() -> bytes:
    return resources.files("tools.demo").joinpath(SAMPLE).read_bytes()


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("amqtt", "transitions", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="veilpost-demo",
    show_default=True,
    help="Folder for summary.json, the label PNGs and the log.",
)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A route manifest CSV (route-import format) instead of the sample of fake parcels.",
)
@click.option(
    "--broker",
    "broker_url",
    default=None,
    metavar="mqtt://[admin:password@]host:port",
    help="An external broker (Mosquitto with dynamic security: give its admin) instead of the embedded one.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(20, 3600),
    default=DEFAULT_SECONDS,
    show_default=True,
    help="Upper bound on the run time; the couriers stop early to keep it.",
)
def demo_cmd(out_dir: str, manifest: str | None, broker_url: str | None, seconds: float) -> None:
    """Run the whole story on fake parcels and check that no plaintext leaked."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(manifest).read_bytes() if manifest else sample_manifest()
    name = Path(manifest).name if manifest else SAMPLE
    summary = run(console, out, data, name, broker_url, seconds)
    if summary["plaintext"]["hits"] != 0 or not summary["audit"]["verified"] or summary["problems"]:
        raise SystemExit(1)


def run(
    console: Any, out: Path, manifest: bytes, manifest_name: str, broker_url: str | None, seconds: float
) -> dict[str, Any]:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tools.demo import attacks
    from tools.demo.report import collect, render, scan_for_plaintext
    from tools.demo.stage import Broker
    from tools.demo.story import Story
    from tools.simulator import SimulatorError

    started = time.monotonic()
    log_path = out / "veilpost-demo.log"
    log_path.unlink(missing_ok=True)
    handler = _log_to(log_path)
    work: Path | None = None
    try:
        if broker_url:
            broker = Broker.external(broker_url)
            work = Path(tempfile.mkdtemp(prefix="veilpost-demo-"))
        else:
            work = Path(tempfile.mkdtemp(prefix="veilpost-demo-"))
            broker = Broker.embedded(work / "home")
    except BaseException:
        logging.getLogger().removeHandler(handler)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    story: Story | None = None
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("veilpost demo", total=None)
            story = Story(
                console,
                progress,
                task,
                work,
                out,
                broker,
                manifest,
                manifest_name,
                started + seconds,
                ignore_window=True,
            )
            progress.update(task, total=len(story.parcels) + sum(len(r.parcels) for r in story.honest) + 5)
            story.setup()
            chapters: list[Any] = [
                story.print_labels,
                story.deliver,
                story.sealed,
                partial(attacks.remote_attack, story),
                partial(attacks.scrape, story),
                partial(attacks.revoke, story),
            ]
            for chapter in chapters:
                try:
                    chapter()
                except (SimulatorError, TimeoutError) as e:  # the story goes on; the summary says so
                    story.problems.append("%s: %s" % (_name(chapter), e))
                    console.print("[red]%s did not finish: %s[/red]" % (_name(chapter), escape(str(e))))
            verdict = story.audit()
            leaks = scan_for_plaintext(story, out, log_path)
            progress.update(task, completed=progress.tasks[0].total)
        summary = collect(story, verdict, leaks, time.monotonic() - started, broker_url)
        (out / "summary.json").write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        render(console, summary, out)
        return summary
    finally:
        if story is not None:
            story.close()
        broker.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
        shutil.rmtree(work, ignore_errors=True)
