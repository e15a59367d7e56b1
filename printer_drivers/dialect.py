"""The interface every printer language implements."""

from __future__ import annotations

from printer_drivers.layout import Bitmap, Layout
from printer_drivers.status import PrinterStatus


class Dialect:
    name = ""
    #: bytes that ask the printer for its status
    status_query = b""
    #: bytes that ask for the printed-label counter, None if the language has none
    counter_query: bytes | None = None
    #: sent once after each connect: makes the printer finish a label that an
    #: error (paper out, head open) interrupted, so the host never resends it
    setup = b""

    def encode(self, layout: Layout) -> bytes:
        raise NotImplementedError

    def encode_raster(self, layout: Layout, image: Bitmap) -> bytes:
        """The same label as one full-page bitmap (for comparison only)."""
        raise NotImplementedError

    def parse_status(self, data: bytes) -> tuple[PrinterStatus, int] | None:
        """(status, bytes used) once a whole reply is in `data`, else None."""
        raise NotImplementedError

    def parse_counter(self, data: bytes) -> tuple[int, int] | None:
        return None


def gb(text: str) -> bytes:
    """Printer-native CJK text: GB18030 (a superset of GBK)."""
    return text.encode("gb18030")
