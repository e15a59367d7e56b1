"""`veilpost bench` says whether it measured everything: a section that
fails or is missing makes it exit 1, and the installed command, run from a
folder outside the checkout, completes every section without the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import require
from tools.bench.run import SECTIONS

REPO = Path(__file__).resolve().parents[1]


def bench(tmp_path: Path, sections: str) -> tuple[int, dict]:
    out = tmp_path / "bench.json"
    env = {**os.environ, "VEILPOST_BENCH_SECTIONS": sections}
    r = subprocess.run([sys.executable, "-m", "tools", "bench", "--quick", "--json", str(out)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=120)
    return r.returncode, json.loads(out.read_text(encoding="utf-8"))


def test_bench_exits_zero_when_every_section_completed(tmp_path: Path) -> None:
    code, report = bench(tmp_path, "messages=tools.bench.message_sizes:measure")
    assert code == 0, report
    assert report["sections"]["messages"]["hello"]["wire"] > 0


def test_a_failing_or_missing_section_makes_bench_exit_one(tmp_path: Path) -> None:
    code, report = bench(tmp_path, "messages=tools.bench.message_sizes:measure,"
                                   "broken=tests.fixtures.bench_sections:explode,"
                                   "absent=tools.bench.no_such_benchmark:run")
    assert code == 1
    assert "a section that fails on purpose" in report["sections"]["broken"]["error"]
    assert "missing" in report["sections"]["absent"]
    assert report["highlights"]["failed"] == ["broken"] and report["highlights"]["missing"] == ["absent"]


def test_an_unknown_only_section_is_a_usage_error(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tools", "bench", "--only", "nonsense"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no bench section nonsense" in r.stderr


@pytest.mark.slow
def test_installed_bench_completes_every_section_from_outside_the_checkout(tmp_path: Path) -> None:
    require(shutil.which("mosquitto") is not None, "the mosquitto binary is not installed")
    # Installed from a copy: pip builds in the source folder, and the checkout stays as it is.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                 ".*_cache", "veilpost-data", "bench-out"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source) + "[bench]"],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VEILPOST_HOME")}
    probe = ("import importlib.util, tools, gateway\n"
             "print(tools.__file__, gateway.__file__, importlib.util.find_spec('tests.fixtures'))")
    where = subprocess.run([str(python), "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                           timeout=60)
    installed = where.stdout.split()
    assert all(p.startswith(str(env_dir)) for p in installed[:2]), where.stdout + where.stderr
    assert installed[2] == "None"  # the tests are not installed, and nothing needs them
    r = subprocess.run([str(env_dir / "bin" / "veilpost"), "bench", "--quick", "--json", "out.json"],
                       cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)
    report = json.loads((elsewhere / "out.json").read_text(encoding="utf-8"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(report["sections"]) == sorted(s[0] for s in SECTIONS)
    assert report["highlights"]["missing"] == [] and report["highlights"]["failed"] == []
    assert "open_reveal_grant" in report["sections"]["crypto"]["micropython"]  # the VM ran, installed
