"""ESC/POS in page mode, for label-capable POS printers (GB18030 firmware).

Raster data is guarded: a byte run like DLE EOT n inside an image would be
executed as a real-time command the moment the printer receives it, even in
the middle of graphics data. Epson's manual says to disable real-time
commands with GS ( D before graphics that contain DLE DC4; DLE EOT and DLE
ENQ cannot be disabled, so we also rewrite the image: 0x10 has one bit set,
clearing it removes one dot and breaks the sequence.
"""

from __future__ import annotations

from printer_drivers.dialect import Dialect, gb
from printer_drivers.layout import BASE_FONT_DOTS, Bitmap, Code128, Layout, QRCode, Rule, Text
from printer_drivers.status import PrinterStatus, StatusError
from protocol.errors import PrinterError

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
EOT, ENQ, DC4 = 0x04, 0x05, 0x14
# the parameter values each real-time command acts on
REALTIME = {
    EOT: frozenset({1, 2, 3, 4, 7, 8, 18}),
    ENQ: frozenset({0, 1, 2, 3, 4}),
    DC4: frozenset(range(1, 9)),
}
DISABLE_DC4 = bytes([GS, 0x28, 0x44, 5, 0, 20, 1, 0, 2, 0])
ENABLE_DC4 = bytes([GS, 0x28, 0x44, 5, 0, 20, 1, 1, 2, 1])
QR_ECC = {"L": 48, "M": 49, "Q": 50, "H": 51}
BAND_ROWS = 128  # GS v 0 bands: height high byte stays 0


class EncodeError(PrinterError, ValueError):
    pass


def find_realtime(stream: bytes) -> list[int]:
    """Offsets where the printer would see a real-time command."""
    hits = []
    i = stream.find(DLE)
    while 0 <= i < len(stream) - 2:
        params = REALTIME.get(stream[i + 1])
        if params is not None and stream[i + 2] in params:
            hits.append(i)
        i = stream.find(DLE, i + 1)
    return hits


def guard_raster(data: bytes) -> tuple[bytes, int]:
    """Drop one dot wherever image bytes would form DLE EOT/ENQ/DC4; return
    the data and the number of dots dropped."""
    out = bytearray(data)
    dropped = 0
    for i in find_realtime(bytes(out)):
        if out[i] == DLE:  # an earlier fix may already have broken this one
            out[i] = 0x00
            dropped += 1
    return bytes(out), dropped


def _u16(n: int) -> bytes:
    return bytes([n & 0xFF, n >> 8])


def page_graphic(el: Bitmap, bx: int = 1, by: int = 1) -> bytes:
    """GS ( L fn 112: raster graphics into the page buffer, each dot drawn bx by by."""
    data, _ = guard_raster(el.data)
    params = bytes([48, 112, 48, bx, by, 49]) + _u16(el.width_bytes * 8) + _u16(el.height) + data
    return bytes([GS, 0x28, 0x4C]) + _u16(len(params)) + params


class EscPos(Dialect):
    name = "escpos"
    status_query = bytes([DLE, EOT, 1, DLE, EOT, 2, DLE, EOT, 4])

    def encode(self, layout: Layout) -> bytes:
        w, h = layout.width, layout.height
        out = bytearray(b"\x1b@\x1bL\x1bW" + _u16(0) + _u16(0) + _u16(w) + _u16(h) + b"\x1bT\x00\x1c&")
        scale = 0
        for el in layout.elements:
            if isinstance(el, Text):
                if el.scale != scale:
                    scale = el.scale
                    out += bytes([GS, 0x21, (scale - 1) << 4 | (scale - 1)])
                out += _at(el.x, el.y + BASE_FONT_DOTS * el.scale) + gb(el.text)
            elif isinstance(el, Code128):
                data = b"{B" + el.data.encode("ascii").replace(b"{", b"{{")
                out += bytes([GS, 0x68, min(255, el.height), GS, 0x77, el.module, GS, 0x48, 0])
                out += _at(el.x, el.y + el.height) + bytes([GS, 0x6B, 73, len(data)]) + data
            elif isinstance(el, QRCode):
                data = el.data.encode("ascii")
                out += _at(el.x, el.y)
                out += b"\x1d(k\x04\x001A2\x00" + b"\x1d(k\x03\x001C" + bytes([el.cell])
                out += b"\x1d(k\x03\x001E" + bytes([QR_ECC[el.ecc]])
                out += b"\x1d(k" + _u16(len(data) + 3) + b"1P0" + data + b"\x1d(k\x03\x001Q0"
            elif isinstance(el, Rule):
                # a solid line: send half its width and one row, let the printer scale it
                bx, by = (2 if el.width % 2 == 0 else 1), (2 if el.height % 2 == 0 else 1)
                half = Rule(el.x, el.y, el.width // bx, el.height // by)
                out += _at(el.x, el.y + el.height) + page_graphic(_solid(half), bx, by)
            elif isinstance(el, Bitmap):
                out += DISABLE_DC4 + _at(el.x, el.y + el.height) + page_graphic(el) + ENABLE_DC4
        out += b"\x1c.\x0c"  # leave CJK mode, print the page
        return _checked(bytes(out))

    def encode_raster(self, layout: Layout, image: Bitmap) -> bytes:
        out = bytearray(b"\x1b@" + DISABLE_DC4)
        wb = image.width_bytes
        data, _ = guard_raster(image.data)
        for top in range(0, image.height, BAND_ROWS):
            rows = min(BAND_ROWS, image.height - top)
            out += b"\x1dv0\x00" + _u16(wb) + _u16(rows) + data[top * wb : (top + rows) * wb]
        out += ENABLE_DC4 + b"\x0c"
        return _checked(bytes(out))

    def parse_status(self, data: bytes) -> tuple[PrinterStatus, int] | None:
        # DLE EOT 1 (printer), 2 (offline cause), 4 (paper sensor): one byte each
        if len(data) < 3:
            return None
        printer, offline, paper = data[0], data[1], data[2]
        for b in (printer, offline, paper):
            if b & 0x93 != 0x12:
                raise StatusError("DLE EOT reply byte %02X lacks the fixed bits 0xx1xx10" % b)
        return PrinterStatus(
            paused=bool(printer & 0x08) and not (offline & 0x24 or paper & 0x60),
            head_open=bool(offline & 0x04),
            paper_out=bool(offline & 0x20 or paper & 0x60),
            raw="%02X %02X %02X" % (printer, offline, paper),
        ), 3


def _at(x: int, y: int) -> bytes:
    """Absolute page-mode position; y is the baseline (bottom) of what follows."""
    return bytes([ESC, 0x24]) + _u16(x) + bytes([GS, 0x24]) + _u16(y)


def _solid(rule: Rule) -> Bitmap:
    wb = (rule.width + 7) // 8
    row = bytes([0xFF] * (rule.width // 8)) + (
        bytes([(0xFF << (8 - rule.width % 8)) & 0xFF]) if rule.width % 8 else b""
    )
    return Bitmap(rule.x, rule.y, wb, rule.height, row * rule.height)


def _checked(job: bytes) -> bytes:
    hits = find_realtime(job)
    if hits:
        raise EncodeError("ESC/POS job would trigger a real-time command at byte %d" % hits[0])
    return job
