"""CPCL (Zebra mobile printers and Chinese portable printers)."""

from __future__ import annotations

from printer_drivers.dialect import Dialect, gb
from printer_drivers.layout import Bitmap, Code128, Layout, QRCode, Rule, Text
from printer_drivers.status import SGD_LABEL_COUNT, PrinterStatus, parse_sgd_int

CJK_FONT = 24  # 24x24 GB font on Chinese CPCL firmware


class Cpcl(Dialect):
    name = "cpcl"
    status_query = b"\x1bh"
    counter_query = SGD_LABEL_COUNT

    def _open(self, layout: Layout) -> list[bytes]:
        res = layout.template.dpi if layout.template.dpi == 300 else 200
        return [b"", b"! 0 %d %d %d 1" % (res, res, layout.height), b"PAGE-WIDTH %d" % layout.width]

    def encode(self, layout: Layout) -> bytes:
        lines = self._open(layout)
        mag = 1
        for el in layout.elements:
            if isinstance(el, Text):
                if el.scale != mag:
                    mag = el.scale
                    lines.append(b"SETMAG %d %d" % (mag, mag) if mag > 1 else b"SETMAG 0 0")
                lines.append(b"TEXT %d 0 %d %d " % (CJK_FONT, el.x, el.y) + gb(el.text))
            elif isinstance(el, Code128):
                lines.append(
                    b"BARCODE 128 %d 1 %d %d %d %s" % (el.module, el.height, el.x, el.y, el.data.encode())
                )
            elif isinstance(el, QRCode):
                lines += [
                    b"BARCODE QR %d %d M 2 U %d" % (el.x, el.y, el.cell),
                    b"%sA,%s" % (el.ecc.encode(), el.data.encode()),
                    b"ENDQR",
                ]
            elif isinstance(el, Rule):
                mid = el.y
                lines.append(b"LINE %d %d %d %d %d" % (el.x, mid, el.x + el.width, mid, el.height))
            elif isinstance(el, Bitmap):
                lines.append(_graphic(el))
        if mag != 1:
            lines.append(b"SETMAG 0 0")
        lines += [b"FORM", b"PRINT"]
        return b"\r\n".join(lines) + b"\r\n"

    def encode_raster(self, layout: Layout, image: Bitmap) -> bytes:
        return b"\r\n".join(self._open(layout) + [_graphic(image), b"FORM", b"PRINT"]) + b"\r\n"

    def parse_status(self, data: bytes) -> tuple[PrinterStatus, int] | None:
        # ESC h answers one byte: bit0 busy, 1 paper out, 2 latch (head) open, 3 battery low
        if not data:
            return None
        b = data[0]
        return PrinterStatus(
            busy=bool(b & 1), paper_out=bool(b & 2), head_open=bool(b & 4), raw="%02X" % b
        ), 1

    def parse_counter(self, data: bytes) -> tuple[int, int] | None:
        return parse_sgd_int(data)


def _graphic(el: Bitmap) -> bytes:
    # CG: compressed (binary) graphics, width in bytes, height in dots
    return b"CG %d %d %d %d " % (el.width_bytes, el.height, el.x, el.y) + el.data
