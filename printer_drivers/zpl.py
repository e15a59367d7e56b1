"""ZPL II (Zebra and compatibles). Text is UTF-8 (^CI28) in a configurable
scalable font; bitmaps go as ^GF with Z64 (zlib + base64) compression."""

from __future__ import annotations

import base64
import binascii
import zlib

from printer_drivers.dialect import Dialect
from printer_drivers.layout import BASE_FONT_DOTS, Bitmap, Code128, Layout, QRCode, Rule, Text
from printer_drivers.status import SGD_LABEL_COUNT, PrinterStatus, StatusError, parse_sgd_int

DEFAULT_FONT = "E:SIMSUN.FNT"


def field_data(text: str) -> bytes:
    raw = text.encode("utf-8")
    if b"^" in raw or b"~" in raw:
        # ^FH: underscore then two hex digits stand for a byte
        return b"^FH^FD" + b"".join(b"_%02X" % c if c in b"^~_" else bytes([c]) for c in raw)
    return b"^FD" + raw


def z64(data: bytes) -> bytes:
    """Zebra's Z64: base64 of zlib-deflated data, then a CRC-16 (CCITT) of the base64 text."""
    b64 = base64.b64encode(zlib.compress(data, 9))
    return b":Z64:" + b64 + b":%04X" % binascii.crc_hqx(b64, 0)


def unz64(text: bytes) -> bytes:
    if not text.startswith(b":Z64:"):
        raise ValueError("not Z64 data")
    body, _, crc = text[5:].rpartition(b":")
    if b"%04X" % binascii.crc_hqx(body, 0) != crc.upper():
        raise ValueError("Z64 CRC mismatch")
    return zlib.decompress(base64.b64decode(body))


def graphic_field(el: Bitmap) -> bytes:
    total = el.width_bytes * el.height
    return b"^FO%d,%d^GFA,%d,%d,%d," % (el.x, el.y, total, total, el.width_bytes) + z64(el.data) + b"^FS"


class Zpl(Dialect):
    name = "zpl"
    status_query = b"~HS"
    counter_query = SGD_LABEL_COUNT
    setup = b"^XA^JZY^XZ"  # reprint a label that an error interrupted

    def __init__(self, font: str = DEFAULT_FONT) -> None:
        self.font = font.encode()

    def _open(self, layout: Layout) -> bytes:
        return b"^XA^CI28^PW%d^LL%d^LH0,0" % (layout.width, layout.height)

    def encode(self, layout: Layout) -> bytes:
        out = [self._open(layout)]
        for el in layout.elements:
            if isinstance(el, Text):
                size = BASE_FONT_DOTS * el.scale
                out.append(
                    b"^FO%d,%d^A@N,%d,%d,%s" % (el.x, el.y, size, size, self.font)
                    + field_data(el.text)
                    + b"^FS"
                )
            elif isinstance(el, Code128):
                out.append(
                    b"^FO%d,%d^BY%d^BCN,%d,N,N,N" % (el.x, el.y, el.module, el.height)
                    + field_data(el.data)
                    + b"^FS"
                )
            elif isinstance(el, QRCode):
                out.append(
                    b"^FO%d,%d^BQN,2,%d" % (el.x, el.y, el.cell)
                    + field_data(el.ecc + "A," + el.data)
                    + b"^FS"
                )
            elif isinstance(el, Rule):
                out.append(
                    b"^FO%d,%d^GB%d,%d,%d^FS" % (el.x, el.y, el.width, el.height, min(el.width, el.height))
                )
            elif isinstance(el, Bitmap):
                out.append(graphic_field(el))
        out.append(b"^XZ")
        return b"".join(out)

    def encode_raster(self, layout: Layout, image: Bitmap) -> bytes:
        return self._open(layout) + graphic_field(image) + b"^XZ"

    def parse_status(self, data: bytes) -> tuple[PrinterStatus, int] | None:
        # ~HS answers three <STX>...<ETX><CR><LF> strings
        frames: list[list[bytes]] = []
        pos = 0
        for _ in range(3):
            start = data.find(b"\x02", pos)
            end = data.find(b"\x03", start + 1)
            if start < 0 or end < 0:
                return None
            frames.append(data[start + 1 : end].split(b","))
            pos = end + 1
        while pos < len(data) and data[pos] in b"\r\n":
            pos += 1
        one, two = frames[0], frames[1]
        if len(one) < 8 or len(two) < 9:
            raise StatusError("~HS reply has %d and %d fields, want 12 and 11" % (len(one), len(two)))
        try:
            formats = int(one[4])
            remaining = int(two[8])
        except ValueError as exc:
            raise StatusError("~HS reply has non-numeric counts") from exc
        return PrinterStatus(
            paper_out=one[1] == b"1",
            paused=one[2] == b"1",
            head_open=two[2] == b"1",
            ribbon_out=two[3] == b"1",
            busy=formats > 0 or remaining > 0 or one[7] == b"1",
            raw=b"|".join(b",".join(f) for f in frames).decode("ascii", "replace"),
        ), pos

    def parse_counter(self, data: bytes) -> tuple[int, int] | None:
        return parse_sgd_int(data)
