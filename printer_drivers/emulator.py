"""An emulated label printer: parses TSPL, ZPL II, ESC/POS or CPCL, answers
status and label-counter queries, and keeps what it printed as elements that
can be rendered to PNG. Paper, head and pause are switches a test flips.

It behaves like a printer set to reprint after an error: a label that arrives
while paper is out or the head is open waits in the buffer and prints once the
fault clears. A format cut off by a dropped link never prints: the next
format's opening command discards it.

`feed(bytes) -> reply bytes` is all the I/O; `printer_drivers.emulated_link`
puts it on a pty or a TCP port. The parsers live in `_emulate_text` and
`_emulate_escpos`.
"""

from __future__ import annotations

from printer_drivers._emulate_escpos import EscPosLanguage
from printer_drivers._emulate_text import TextLanguages
from printer_drivers._emulator_base import PrintedLabel

__all__ = ["Emulator", "PrintedLabel"]


class Emulator(TextLanguages, EscPosLanguage):
    def __init__(self, language: str, paper: int | None = None) -> None:
        if language not in ("tspl", "zpl", "escpos", "cpcl"):
            raise ValueError("emulator speaks tspl, zpl, escpos or cpcl, not %r" % language)
        self.language = language
        self.paper_left = paper  # labels until the roll ends; None = endless
        self.paper_out = paper == 0
        self.head_open = False
        self.paused = False
        self.printed: list[PrintedLabel] = []
        self.held: list[PrintedLabel] = []
        self.received = 0  # labels whose print command arrived
        self.errors: list[str] = []
        self.realtime_hits = 0  # ESC/POS real-time sequences seen in the stream
        self._buf = b""
        self._rt_tail = b""
        self._parse = {"tspl": self._tspl, "zpl": self._zpl, "escpos": self._escpos, "cpcl": self._cpcl}[
            language
        ]
        self._reset_escpos()
        self._cur: PrintedLabel | None = None

    # -- the switches ------------------------------------------------------
    def run_out_of_paper(self) -> None:
        self.paper_out, self.paper_left = True, 0

    def load_paper(self, labels: int | None = None) -> None:
        self.paper_out, self.paper_left = False, labels
        self._flush_held()

    def open_head(self) -> None:
        self.head_open = True

    def close_head(self) -> None:
        self.head_open = False
        self._flush_held()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._flush_held()

    @property
    def can_print(self) -> bool:
        return not (self.paper_out or self.head_open or self.paused)

    # -- input ----------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the host; return what the printer sends back."""
        reply = bytearray()
        if self.language == "escpos":
            reply += self._escpos_realtime(data)
        self._buf += data
        reply += self._parse()
        return bytes(reply)

    def jam_on_label(self, n: int, fault: str = "paper out") -> None:
        """Paper runs out (or the head is opened) while label n prints; n
        counts labels arrived, from 1."""
        if fault not in ("paper out", "head open"):
            raise ValueError("fault is 'paper out' or 'head open'")
        self._jam_at, self._jam_fault = n, fault

    def _complete(self, label: PrintedLabel) -> None:
        self.received += 1
        if self.received == getattr(self, "_jam_at", 0):
            if self._jam_fault == "paper out":
                self.run_out_of_paper()
            else:
                self.open_head()
        if self.can_print and not self.held:
            self._print(label)
        else:
            self.held.append(label)

    def _print(self, label: PrintedLabel) -> None:
        self.printed.append(label)
        if self.paper_left is not None:
            self.paper_left -= 1
            if self.paper_left <= 0:
                self.paper_out = True

    def _flush_held(self) -> None:
        while self.held and self.can_print:
            self._print(self.held.pop(0))

    # -- status replies ----------------------------------------------------
    def status_reply(self) -> bytes:
        busy = len(self.held)
        if self.language == "tspl":
            b = (
                (0x01 if self.head_open else 0)
                | (0x04 if self.paper_out else 0)
                | (0x10 if self.paused else 0)
            )
            return bytes([b | (0x20 if busy else 0)])
        if self.language == "cpcl":
            return bytes([(1 if busy else 0) | (2 if self.paper_out else 0) | (4 if self.head_open else 0)])
        if self.language == "zpl":
            one = b"030,%d,%d,%04d,%03d,0,0,0,000,0,0,0" % (self.paper_out, self.paused, 1200, busy)
            two = b"001,0,%d,0,0,2,6,0,%08d,1,000" % (self.head_open, 0)
            return b"\x02" + one + b"\x03\r\n\x02" + two + b"\x03\r\n\x02" + b"1234,0" + b"\x03\r\n"
        raise AssertionError(self.language)

    def sgd(self, name: bytes) -> bytes:
        if name == b"odometer.total_label_count":
            return b'"%d"' % len(self.printed)
        return b'"?"'
