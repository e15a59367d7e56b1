"""Static checks on the firmware: pyright finds no errors against the
MicroPython ESP32 stubs with MicroPython's own standard-library stubs.
(tests/test_mpy_cross.py compiles every firmware file with mpy-cross.)"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"


def firmware_sources() -> list[Path]:
    return sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


def stub_root() -> Path:
    """The site-packages folder holding the ESP32 stubs and micropython-stdlib-stubs'
    stdlib/ (a venv with --system-site-packages may see them in the base one)."""
    candidates = [Path(sysconfig.get_paths()["purelib"]), *map(Path, site.getsitepackages())]
    for folder in candidates:
        if (folder / "esp32.pyi").exists():
            return folder
    return candidates[0]


def test_pyright_finds_no_errors_against_the_esp32_stubs() -> None:
    require(shutil.which("pyright") is not None, "pyright is not installed")
    require((stub_root() / "esp32.pyi").exists(), "micropython-esp32 stubs are not installed")
    require((stub_root() / "stdlib" / "builtins.pyi").exists(), "micropython-stdlib-stubs are not installed")
    proc = subprocess.run(
        ["pyright", "--outputjson", "-p", str(FIRMWARE), "--pythonpath", sys.executable,
         "--typeshedpath", str(stub_root())],
        capture_output=True, text=True, cwd=REPO, timeout=240,
    )
    report = json.loads(proc.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert report["summary"]["filesAnalyzed"] >= 10
    assert errors == [], "\n".join(f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']}"
                                   for d in errors)


def test_pyright_would_catch_a_call_the_esp32_lacks(tmp_path: Path) -> None:
    """The check has teeth: a CPython-only call in firmware code is an error."""
    require(shutil.which("pyright") is not None, "pyright is not installed")
    bad = tmp_path / "fw"
    bad.mkdir()
    (bad / "probe.py").write_text("import esp32\nesp32.NVS('x').no_such_method()\n")
    (bad / "pyrightconfig.json").write_text(json.dumps({"include": ["."], "typeCheckingMode": "basic"}))
    proc = subprocess.run(
        ["pyright", "--outputjson", "-p", str(bad), "--pythonpath", sys.executable,
         "--typeshedpath", str(stub_root())],
        capture_output=True, text=True, timeout=240,
    )
    report = json.loads(proc.stdout)
    assert report["summary"]["errorCount"] >= 1
