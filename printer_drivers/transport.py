"""Links to a printer, all through pyserial URLs.

- a serial device (`/dev/ttyUSB0`, `COM3`) at a chosen baud with RTS/CTS or
  DSR/DTR hardware flow control. XON/XOFF is refused: bitmaps and GB18030
  text contain the bytes 0x11 and 0x13, which software flow control would eat.
- `socket://host:9100` (raw TCP, the printers' JetDirect port), `loop://`,
  and any other pyserial URL handler;
- `file:PATH`: append the bytes to a file (no status read-back).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import serial

from printer_drivers.dialect import Dialect
from printer_drivers.status import PrinterStatus, StatusError
from protocol.errors import PrinterError

FLOWS = ("rtscts", "dsrdtr", "none")

try:  # tcdrain on a vanished tty raises termios.error, which is not an OSError
    from termios import error as _TermiosError
except ImportError:  # pragma: no cover - Windows

    class _TermiosError(Exception):  # type: ignore[no-redef]
        pass


LINK_ERRORS = (OSError, serial.SerialException, _TermiosError)


class PrinterOffline(PrinterError, ConnectionError):
    """The link is down or the printer does not answer."""


class Link(Protocol):
    def write(self, data: bytes) -> int | None: ...
    def flush(self) -> None: ...
    def read(self, size: int = 1) -> bytes: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


class FileLink:
    """Printer-to-file: appends every job; there is nobody to answer."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("ab")

    def write(self, data: bytes) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def read(self, size: int = 1) -> bytes:
        return b""

    def reset_input_buffer(self) -> None:
        pass

    def close(self) -> None:
        self._f.close()


def open_link(url: str, baud: int = 9600, flow: str = "rtscts", timeout: float = 1.0) -> Link:
    if url.startswith("file:"):
        return FileLink(Path(url[5:].removeprefix("//")))
    if flow == "xonxoff":
        raise ValueError(
            "XON/XOFF flow control corrupts binary label data (0x11/0x13 bytes): use rtscts or dsrdtr"
        )
    if flow not in FLOWS:
        raise ValueError("flow must be one of %s, not %r" % (", ".join(FLOWS), flow))
    try:
        return serial.serial_for_url(  # type: ignore[no-any-return]
            url,
            baudrate=baud,
            timeout=timeout,
            write_timeout=max(timeout, 5.0),
            rtscts=flow == "rtscts",
            dsrdtr=flow == "dsrdtr",
            xonxoff=False,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PrinterOffline("cannot open printer link %s: %s" % (url, exc)) from exc


class Printer:
    """One printer: a link plus the language it speaks."""

    def __init__(
        self, url: str, language: Dialect, baud: int = 9600, flow: str = "rtscts", timeout: float = 1.0
    ) -> None:
        self.url, self.dialect, self.baud, self.flow, self.timeout = url, language, baud, flow, timeout
        self._link: Link | None = None

    @property
    def has_status(self) -> bool:
        return not self.url.startswith("file:")

    @property
    def has_counter(self) -> bool:
        return self.has_status and self.dialect.counter_query is not None

    def connect(self) -> None:
        if self._link is None:
            self._link = open_link(self.url, self.baud, self.flow, self.timeout)
            if self.dialect.setup:
                self._write(self.dialect.setup)

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            try:
                link.close()
            except LINK_ERRORS:
                pass

    def send(self, data: bytes) -> None:
        self.connect()
        self._write(data)

    def status(self) -> PrinterStatus:
        if not self.has_status:
            return PrinterStatus(raw="file output: no status")
        return self._ask(self.dialect.status_query, self.dialect.parse_status, "status")

    def label_count(self) -> int | None:
        """Labels the printer has printed, if its language can say."""
        if not self.has_counter:
            return None
        assert self.dialect.counter_query is not None
        return self._ask(self.dialect.counter_query, self.dialect.parse_counter, "label counter")

    def _ask(self, query, parse, what):  # type: ignore[no-untyped-def]
        self.connect()
        assert self._link is not None
        try:
            self._link.reset_input_buffer()
        except LINK_ERRORS as exc:
            self.close()
            raise PrinterOffline("printer %s: link lost (%s)" % (self.url, exc)) from exc
        self._write(query)
        got = b""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                chunk = self._link.read(1)
            except LINK_ERRORS as exc:
                self.close()
                raise PrinterOffline("printer %s: link lost (%s)" % (self.url, exc)) from exc
            if not chunk:
                continue
            got += chunk
            try:
                parsed = parse(got)
            except StatusError as exc:
                raise PrinterOffline(
                    "printer %s sent a %s reply we cannot read: %s" % (self.url, what, exc)
                ) from exc
            if parsed is not None:
                return parsed[0]
        self.close()
        raise PrinterOffline(
            "printer %s did not answer the %s query within %.1f s" % (self.url, what, self.timeout)
        )

    def _write(self, data: bytes) -> None:
        assert self._link is not None
        try:
            self._link.write(data)
            self._link.flush()
        except LINK_ERRORS as exc:
            self.close()
            raise PrinterOffline("printer %s: link lost while sending (%s)" % (self.url, exc)) from exc
