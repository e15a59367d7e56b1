"""Every language over a pty at 9600 and 115200 baud: the emulated printer
reads the label back into its fields, and no byte holds plaintext."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from printer_drivers import LANGUAGES, MaskedLabel, dialect, layout, load_template
from printer_drivers.emulated_link import PtyPrinter
from printer_drivers.emulator import Emulator
from printer_drivers.transport import Printer
from tests.fixtures.printers import MASKED, QR_PAYLOAD, masked_view, plaintext_needles


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("template", ["76x130", "100x150"])
@pytest.mark.parametrize("baud", [9600, 115200])
@pytest.mark.parametrize("language", LANGUAGES)
def test_label_sent_over_pty_reads_back_into_its_fields(
    pty_printer: Callable[..., PtyPrinter], language: str, baud: int, template: str
) -> None:
    pp = pty_printer(language)
    printer = Printer(str(pp.path), dialect(language), baud=baud, flow="rtscts", timeout=5.0)
    lay = layout(load_template(template), MaskedLabel.from_mapping(masked_view()))
    printer.send(dialect(language).encode(lay))
    assert printer.status().idle  # answered after the label: the printer has parsed it
    wait_for(lambda: pp.call(lambda e: len(e.printed)) == 1)
    label = pp.call(lambda e: e.printed[0])
    assert label.tracking_no == "VP2611280007"
    assert label.qr_payload == QR_PAYLOAD
    assert MASKED["receiver"]["name"] in label.texts
    assert MASKED["receiver"]["phone"] in label.texts
    assert "571-W2 07" in label.texts
    assert pp.call(lambda e: e.errors) == []
    wire = bytes(pp.wire)
    for needle in plaintext_needles():
        assert needle not in wire, needle
    printer.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_full_raster_of_the_label_also_reads_back(language: str) -> None:
    from printer_drivers.preview import raster

    lay = layout(load_template("76x130"), MaskedLabel.from_mapping(masked_view()))
    emu = Emulator(language)
    emu.feed(dialect(language).encode_raster(lay, raster(lay)))
    assert len(emu.printed) == 1 and emu.errors == []
    assert emu.printed[0].tracking_no is None  # only pixels: why native commands matter


def test_zpl_text_is_utf8_in_the_configured_font() -> None:
    lay = layout(load_template("100x150"), MaskedLabel.from_mapping(masked_view()))
    data = dialect("zpl", zpl_font="E:NOTOSANSSC.TTF").encode(lay)
    assert b"^CI28" in data and b"E:NOTOSANSSC.TTF" in data
    assert MASKED["receiver"]["name"].encode("utf-8") in data


@pytest.mark.parametrize("language", ["tspl", "escpos", "cpcl"])
def test_cjk_text_goes_as_gb18030_bytes(language: str) -> None:
    lay = layout(load_template("100x150"), MaskedLabel.from_mapping(masked_view()))
    data = dialect(language).encode(lay)
    assert "測**".encode("gb18030") in data
    assert "測**".encode() not in data
