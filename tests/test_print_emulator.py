"""The emulated printer renders what it received; for every language that
is the preview, pixel for pixel, whether sent as native commands or as one
full-page bitmap."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops

from printer_drivers import LANGUAGES, MaskedLabel, dialect, escpos, layout, load_template
from printer_drivers.emulator import Emulator
from printer_drivers.preview import raster, render
from tests.fixtures.printers import masked_view


def differing_pixels(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    return ImageChops.logical_xor(a.convert("1"), b.convert("1")).histogram()[255]


@pytest.mark.parametrize("template", ["76x130", "100x150"])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("as_raster", [False, True], ids=["native", "raster"])
def test_emulator_png_matches_the_preview(
    tmp_path: Path, language: str, template: str, as_raster: bool
) -> None:
    lay = layout(load_template(template), MaskedLabel.from_mapping(masked_view()))
    d = dialect(language)
    job = d.encode_raster(lay, raster(lay)) if as_raster else d.encode(lay)
    emu = Emulator(language)
    for i in range(0, len(job), 61):  # arrives in pieces, as over a serial line
        emu.feed(job[i : i + 61])
    assert emu.errors == [] and len(emu.printed) == 1
    png = emu.printed[0].render_png(tmp_path / "got.png")
    got = Image.open(png)
    if got.size != (lay.width, lay.height):  # ESC/POS rasters end where the data ends
        got = got.crop((0, 0, lay.width, lay.height))
    # ESC/POS rasters lose the odd dot that would spell a real-time command (escpos.guard_raster).
    guarded = escpos.guard_raster(raster(lay).data)[1] if as_raster and language == "escpos" else 0
    assert differing_pixels(render(lay), got) == guarded


def test_emulator_keeps_labels_while_paper_is_out_and_prints_them_after() -> None:
    lay = layout(load_template("76x130"), MaskedLabel.from_mapping(masked_view()))
    emu = Emulator("tspl", paper=1)
    emu.feed(dialect("tspl").encode(lay) * 3)
    assert (len(emu.printed), len(emu.held), emu.paper_out) == (1, 2, True)
    emu.load_paper()
    assert (len(emu.printed), len(emu.held)) == (3, 0)


def test_garbage_prints_nothing() -> None:
    for language in LANGUAGES:
        emu = Emulator(language)
        emu.feed(b"\x00\x1fhello\r\nNOPE 1,2\r\n^ZZ\r\n")
        assert emu.printed == []
