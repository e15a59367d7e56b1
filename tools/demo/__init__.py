"""`veilpost demo`: the whole system in under a minute, on this machine.

It starts the embedded broker (or uses `--broker mqtt://...`), a gateway on a
temporary home made by `veilpost init`, an emulated label printer and
simulated handhelds running the firmware source; loads the sample manifest
of obviously fake people (or `--manifest`); tells the story in six chapters;
then searches every broker message, flash image, the log, the print spool,
the printer's commands and the gateway database for the manifest's
plaintext, and writes summary.json (and the label PNGs) to `--out`.

`veilpost demo` (tools/cli/demo.py) calls `main` through the `veilpost.tools`
entry point `demo`.
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


def main(out_dir: str, manifest: str | None, broker_url: str | None, seconds: float) -> int:
    """Run the whole story on fake parcels; 0 when no plaintext leaked, the
    audit log verified and every chapter finished, else 1."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(manifest).read_bytes() if manifest else sample_manifest()
    name = Path(manifest).name if manifest else SAMPLE
    summary = run(console, out, data, name, broker_url, seconds)
    clean = summary["plaintext"]["hits"] == 0 and summary["audit"]["verified"] and not summary["problems"]
    return 0 if clean else 1


def _stage(broker_url: str | None) -> tuple[Any, Path]:
    """The broker and a work folder (removed by the caller)."""
    from tools.demo.stage import Broker

    work = Path(tempfile.mkdtemp(prefix="veilpost-demo-"))
    try:
        broker = Broker.external(broker_url) if broker_url else Broker.embedded(work / "home")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return broker, work


def _chapters(story: Any) -> list[Any]:
    from tools.demo import attacks

    return [story.print_labels, story.deliver, story.sealed, partial(attacks.remote_attack, story),
            partial(attacks.scrape, story), partial(attacks.revoke, story)]


def _tell(story: Any, console: Any) -> None:
    """Every chapter in order; one that fails is noted and the story goes on."""
    from rich.markup import escape

    from tools.simulator import SimulatorError

    story.setup()
    for chapter in _chapters(story):
        try:
            chapter()
        except (SimulatorError, TimeoutError) as e:  # the story goes on; the summary says so
            story.problems.append("%s: %s" % (_name(chapter), e))
            console.print("[red]%s did not finish: %s[/red]" % (_name(chapter), escape(str(e))))


def run(
    console: Any, out: Path, manifest: bytes, manifest_name: str, broker_url: str | None, seconds: float
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tools.demo.report import collect, render, scan_for_plaintext
    from tools.demo.story import Story

    started = time.monotonic()
    log_path = out / "veilpost-demo.log"
    log_path.unlink(missing_ok=True)
    handler = _log_to(log_path)
    try:
        broker, work = _stage(broker_url)
    except BaseException:
        logging.getLogger().removeHandler(handler)
        raise
    story: Story | None = None
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("veilpost demo", total=None)
            story = Story(console, progress, task, work, out, broker, manifest, manifest_name,
                          started + seconds, ignore_window=True)
            progress.update(task, total=len(story.parcels) + sum(len(r.parcels) for r in story.honest) + 5)
            _tell(story, console)
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
