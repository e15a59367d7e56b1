"""TSPL/TSPL2 (TSC and most Chinese label printers)."""

from __future__ import annotations

from printer_drivers.dialect import Dialect, gb
from printer_drivers.layout import Bitmap, Code128, Layout, QRCode, Rule, Text
from printer_drivers.status import PrinterStatus

CJK_FONT = "TSS24.BF2"  # built-in 24x24 simplified Chinese font, GB encoded


def quote(text: str) -> bytes:
    # TSPL escapes a double quote inside a string as \["]
    return b'"' + gb(text).replace(b'"', b'\\["]') + b'"'


class Tspl(Dialect):
    name = "tspl"
    status_query = b"\x1b!?"
    setup = b"\r\nSET REPRINT ON\r\n"

    def _header(self, layout: Layout) -> list[bytes]:
        t = layout.template
        return [
            b"",  # leading CRLF ends any half-received line from a dropped link
            b"SIZE %g mm,%g mm" % (t.width_mm, t.height_mm),
            b"GAP %g mm,0 mm" % t.gap_mm,
            b"CLS",
        ]

    def encode(self, layout: Layout) -> bytes:
        lines = self._header(layout)
        for el in layout.elements:
            if isinstance(el, Text):
                lines.append(
                    b'TEXT %d,%d,"%s",0,%d,%d,' % (el.x, el.y, CJK_FONT.encode(), el.scale, el.scale)
                    + quote(el.text)
                )
            elif isinstance(el, Code128):
                lines.append(
                    b'BARCODE %d,%d,"128",%d,0,0,%d,%d,' % (el.x, el.y, el.height, el.module, el.module)
                    + quote(el.data)
                )
            elif isinstance(el, QRCode):
                lines.append(
                    b"QRCODE %d,%d,%s,%d,A,0," % (el.x, el.y, el.ecc.encode(), el.cell) + quote(el.data)
                )
            elif isinstance(el, Rule):
                lines.append(b"BAR %d,%d,%d,%d" % (el.x, el.y, el.width, el.height))
            elif isinstance(el, Bitmap):
                lines.append(_bitmap(el))
        lines.append(b"PRINT 1,1")
        return b"\r\n".join(lines) + b"\r\n"

    def encode_raster(self, layout: Layout, image: Bitmap) -> bytes:
        return b"\r\n".join(self._header(layout) + [_bitmap(image), b"PRINT 1,1"]) + b"\r\n"

    def parse_status(self, data: bytes) -> tuple[PrinterStatus, int] | None:
        # <ESC>!? answers one byte: bit0 head open, 1 paper jam, 2 paper out,
        # 3 ribbon out, 4 pause, 5 printing, 6 cover open, 7 temperature
        if not data:
            return None
        b = data[0]
        return PrinterStatus(
            head_open=bool(b & 0x01 or b & 0x40),
            paper_out=bool(b & 0x04 or b & 0x02),
            ribbon_out=bool(b & 0x08),
            paused=bool(b & 0x10),
            busy=bool(b & 0x20),
            raw="%02X" % b,
        ), 1


def _bitmap(el: Bitmap) -> bytes:
    # TSPL BITMAP: a 0 bit prints, so our 1 = black is inverted
    body = bytes(b ^ 0xFF for b in el.data)
    return b"BITMAP %d,%d,%d,%d,0," % (el.x, el.y, el.width_bytes, el.height) + body
