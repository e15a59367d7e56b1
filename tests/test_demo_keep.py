"""`veilpost demo --keep` (issue 14, item 11): the demo's gateway home stays
in OUT/home and the demo prints the commands to look around it; each of
them runs on that home as printed. (Whether the story itself succeeded is
tests/test_demo.py's business.)"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def veilpost(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env=_env())


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def test_demo_keep_leaves_its_home_and_the_commands_it_prints_work_on_it(tmp_path: Path) -> None:
    done = veilpost(tmp_path, "demo", "--keep", "--out", "out", "--seconds", "30")
    home = tmp_path / "out" / "home"
    assert (home / "veilpost.toml").is_file() and (home / "veilpost.db").is_file(), done.stdout[-2000:]
    assert "the gateway's home is kept in out/home" in done.stdout
    commands = [line.strip() for line in done.stdout.splitlines() if line.startswith("  veilpost --home")]
    assert len(commands) >= 9, done.stdout[-2000:]
    names = [" ".join(shlex.split(c)[3:5]) for c in commands]
    for wanted in ("incidents list", "audit verify", "alarms list", "device list", "parcel list"):
        assert wanted in names, names
    for command in commands:
        ran = veilpost(tmp_path, *shlex.split(command)[1:])
        assert ran.returncode == 0, (command, ran.stdout[-1000:], ran.stderr[-1000:])
    verified = veilpost(tmp_path, "--home", "out/home", "audit", "verify")
    assert "audit log intact" in verified.stdout
    shown = [c for c in commands if " incidents show INC-" in c]
    if shown:  # the story's scrape opened one: it is the first the home lists
        listed = veilpost(tmp_path, "--home", "out/home", "--json", "incidents", "list").stdout
        assert shown[0].split()[-1] in listed

