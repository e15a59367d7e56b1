"""The CPython side stays lint-clean (ruff) and type-checks (mypy); firmware
is checked against the MicroPython stubs in test_firmware_static.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing_in_the_repository() -> None:
    require(shutil.which("ruff") is not None, "ruff is not installed")
    proc = subprocess.run(["ruff", "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_no_type_errors_in_gateway_printers_and_tools() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-incremental",
         "gateway", "printer_drivers", "tools"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
