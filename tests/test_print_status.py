"""Status read-back per language, the ESC/POS real-time guard, transports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from printer_drivers import LANGUAGES, dialect
from printer_drivers.emulated_link import PtyPrinter, TcpPrinter
from printer_drivers.emulator import Emulator
from printer_drivers.escpos import EscPos, find_realtime, guard_raster
from printer_drivers.layout import Bitmap
from printer_drivers.status import StatusError
from printer_drivers.transport import Printer, PrinterOffline, open_link
from printer_drivers.zpl import unz64, z64


@pytest.mark.parametrize("language", LANGUAGES)
def test_paper_out_head_open_and_recovery_are_reported(
    pty_printer: Callable[..., PtyPrinter], language: str
) -> None:
    pp = pty_printer(language)
    printer = Printer(str(pp.path), dialect(language), baud=115200, timeout=5.0)
    assert printer.status().ready
    pp.call(lambda e: e.run_out_of_paper())
    st = printer.status()
    assert st.paper_out and not st.ready
    pp.call(lambda e: e.load_paper())
    pp.call(lambda e: e.open_head())
    st = printer.status()
    assert st.head_open and not st.paper_out
    pp.call(lambda e: e.close_head())
    assert printer.status().idle
    printer.close()


@pytest.mark.parametrize("language", ["tspl", "zpl"])
def test_pause_is_reported(pty_printer: Callable[..., PtyPrinter], language: str) -> None:
    pp = pty_printer(language)
    pp.call(lambda e: e.pause())
    printer = Printer(str(pp.path), dialect(language), timeout=5.0)
    assert printer.status().paused
    printer.close()


def test_tspl_status_byte_bits() -> None:
    st, used = dialect("tspl").parse_status(b"\x2c")  # type: ignore[misc]
    assert used == 1 and st.paper_out and st.ribbon_out and st.busy and not st.head_open


def test_zpl_host_status_fields() -> None:
    reply = (
        b"\x02030,1,1,1200,002,0,0,0,000,0,0,0\x03\r\n"
        b"\x02001,0,1,1,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"
    )
    st, used = dialect("zpl").parse_status(reply)  # type: ignore[misc]
    assert used == len(reply)
    assert st.paper_out and st.paused and st.head_open and st.ribbon_out and st.busy
    assert dialect("zpl").parse_status(reply[:40]) is None  # not all there yet


def test_malformed_status_replies_raise_a_clear_error() -> None:
    with pytest.raises(StatusError, match="fields"):
        dialect("zpl").parse_status(b"\x02garbage\x03\r\n\x02x\x03\r\n\x02y\x03\r\n")
    with pytest.raises(StatusError, match="fixed bits"):
        dialect("escpos").parse_status(b"\xff\xff\xff")


def test_silent_printer_is_offline_not_a_hang() -> None:
    # loop:// only echoes our own ~HS back, never an <STX> status frame
    printer = Printer("loop://", dialect("zpl"), timeout=0.2)
    with pytest.raises(PrinterOffline, match="did not answer"):
        printer.status()


def test_unplugged_printer_is_offline_and_comes_back(pty_printer: Callable[..., PtyPrinter]) -> None:
    pp = pty_printer("zpl")
    printer = Printer(str(pp.path), dialect("zpl"), timeout=5.0)
    assert printer.status().ready
    pp.unplug()
    with pytest.raises(PrinterOffline):
        printer.status()
    with pytest.raises(PrinterOffline, match="cannot open"):
        printer.status()
    pp.replug()
    assert printer.status().ready


def test_xonxoff_is_refused_for_binary_label_data() -> None:
    with pytest.raises(ValueError, match="XON/XOFF"):
        open_link("loop://", flow="xonxoff")


def test_dsrdtr_flow_control_opens() -> None:
    link = open_link("loop://", baud=115200, flow="dsrdtr")
    assert isinstance(link, serial.SerialBase) and link.dsrdtr and not link.xonxoff and not link.rtscts
    link.close()


def test_file_output_appends_jobs(tmp_path: Path) -> None:
    out = tmp_path / "jobs.prn"
    printer = Printer("file:" + str(out), dialect("tspl"))
    printer.send(b"CLS\r\nPRINT 1,1\r\n")
    printer.send(b"CLS\r\nPRINT 1,1\r\n")
    printer.close()
    assert out.read_bytes().count(b"PRINT 1,1") == 2
    assert printer.status().ready and printer.label_count() is None


def test_tcp_9100_printer_answers_status_and_counter() -> None:
    with TcpPrinter(Emulator("zpl")) as tp:
        printer = Printer(tp.url, dialect("zpl"))
        assert printer.status().idle
        assert printer.label_count() == 0
        printer.close()


def test_escpos_guard_breaks_every_realtime_sequence() -> None:
    image = bytes([0x10, 0x04, 0x01, 0xFF, 0x10, 0x05, 0x02, 0x10, 0x14, 0x01, 0x10, 0x10, 0x04, 0x04])
    guarded, dropped = guard_raster(image)
    assert find_realtime(guarded) == []
    assert dropped == 4
    # one dot per hit, nothing else changes
    assert sum(bin(a ^ b).count("1") for a, b in zip(image, guarded, strict=True)) == dropped


def test_unguarded_raster_would_make_the_printer_answer_mid_image() -> None:
    hazard = bytes([0x10, 0x04, 0x01]) * 8
    bitmap = Bitmap(0, 0, 3, 8, hazard)
    emu = Emulator("escpos")
    raw = b"\x1b@\x1dv0\x00\x03\x00\x08\x00" + hazard + b"\x0c"
    assert emu.feed(raw) != b""  # the printer really would act on them
    from printer_drivers.layout import Layout, Template

    lay = Layout(Template("t", 3, 1, 203, 2), [])
    job = EscPos().encode_raster(lay, bitmap)
    emu2 = Emulator("escpos")
    assert emu2.feed(job) == b"" and emu2.realtime_hits == 0
    assert len(emu2.printed) == 1


def test_z64_round_trips_and_checks_its_crc() -> None:
    data = bytes(range(256)) * 10
    packed = z64(data)
    assert unz64(packed) == data
    with pytest.raises(ValueError, match="CRC"):
        unz64(packed[:-1] + (b"0" if packed[-1:] != b"0" else b"1"))
