"""Label previews on a fresh machine: with no system font at all, the font
veilpost installs (Noto Sans SC from pylopdf-fonts-zh-cn, SIL OFL 1.1) draws
them; with no font to be had, the preview says what to install and the demo
says it wrote no PNGs instead of claiming them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from printer_drivers import preview
from printer_drivers.label import MaskedLabel
from printer_drivers.layout import layout, load_template
from tests.fixtures.printers import masked_view

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_system_fonts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "empty-font-folder").mkdir()
    monkeypatch.setattr(preview, "FONT_DIRS", (str(tmp_path / "empty-font-folder"),))
    monkeypatch.delenv("VEILPOST_CJK_FONT", raising=False)
    preview.find_cjk_font.cache_clear()
    yield
    preview.find_cjk_font.cache_clear()


def test_without_system_fonts_the_installed_package_draws_the_preview(tmp_path: Path,
                                                                      no_system_fonts: None) -> None:
    font = preview.find_cjk_font()
    assert "pylopdf_fonts_zh_cn" in str(font) and font.suffix == ".otf"
    licence = next(font.parent.parent.glob("pylopdf_fonts_zh_cn-*.dist-info")) / "licenses" / "LICENSE"
    assert "SIL Open Font License" in licence.read_text(encoding="utf-8")
    lay = layout(load_template("100x150"), MaskedLabel.from_mapping(masked_view()))
    out = preview.save_png(lay, tmp_path / "label.png")
    image = Image.open(out).convert("1")
    # The receiver zone (45-75 mm) has ink: the CJK name and address were drawn.
    band = image.crop((0, lay.template.dots(46), lay.width, lay.template.dots(74)))
    assert band.getbbox() is not None


def test_with_no_font_to_be_had_the_preview_says_what_to_install(no_system_fonts: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preview, "FONT_PACKAGES", ())
    with pytest.raises(preview.FontMissing, match="pylopdf-fonts-zh-cn.*fonts-wqy-zenhei.*VEILPOST_CJK_FONT"):
        preview.find_cjk_font()


NO_FONTS_DEMO = """
import sys
from printer_drivers import preview
preview.FONT_DIRS = (sys.argv[1],)
preview.FONT_PACKAGES = ()
sys.argv = ["veilpost", "demo", "--out", sys.argv[2]]
from tools.cli import main
main()
"""


@pytest.mark.slow
def test_the_demo_without_any_font_says_so_and_claims_no_pngs(tmp_path: Path) -> None:
    (tmp_path / "no-fonts").mkdir()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "VEILPOST_CJK_FONT"}
    done = subprocess.run([sys.executable, "-c", NO_FONTS_DEMO, str(tmp_path / "no-fonts"), str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = " ".join(done.stdout.split())
    assert "no label PNGs: no CJK font found" in said
    assert "no PNG previews (no CJK font)" in said
    assert "label PNGs and the log are in" not in said
    assert "no label PNGs were written" in said
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["labels"] == [] and not list((out / "labels").glob("*.png"))
