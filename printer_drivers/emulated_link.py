"""Put an Emulator on a pty (what a USB-serial printer looks like) or on
127.0.0.1:9100-style TCP. The pty is reached through a stable symlink, so
`unplug()` / `replug()` behave like pulling and re-inserting the cable: the
open file descriptor dies, the same path works again afterwards."""

from __future__ import annotations

import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from printer_drivers.emulator import Emulator, PrintedLabel

T = TypeVar("T")


class PtyPrinter:
    def __init__(self, emulator: Emulator, path: str | Path) -> None:
        self.emulator = emulator
        self.path = Path(path)
        self._lock = threading.RLock()
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.plugged = False
        self._fault: tuple[int, int] | None = None  # (after label n, allow k more bytes)
        self._fault_budget: int | None = None
        self.wire = bytearray()  # every byte the printer received, for inspection

    def __enter__(self) -> PtyPrinter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.replug()
        self._thread = threading.Thread(target=self._run, name="pty-printer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.unplug()

    def call(self, fn: Callable[[Emulator], T]) -> T:
        """Flip a switch on the emulator without racing the reader thread."""
        with self._lock:
            return fn(self.emulator)

    def replug(self) -> None:
        with self._lock:
            if self.plugged:
                return
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            tmp = self.path.with_suffix(".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(self._slave))
            tmp.replace(self.path)
            self.plugged = True

    def unplug(self) -> None:
        with self._lock:
            if not self.plugged:
                return
            self.plugged = False
            for fd in (self._master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.path.unlink(missing_ok=True)

    def unplug_after_label(self, n: int, extra_bytes: int = 0) -> None:
        """Pull the cable once label n has arrived (and extra_bytes more)."""
        with self._lock:
            self._fault = (n, extra_bytes)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self._master if self.plugged else -1
            if master < 0:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.02)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError:
                self._stop.wait(0.02)
                continue
            with self._lock:
                if not self.plugged or master != self._master:
                    continue
                self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        emu = self.emulator
        self.wire += data
        if self._fault is not None:
            n, extra = self._fault
            for i in range(len(data)):  # byte by byte until the fault fires
                if self._fault_budget is None and emu.received >= n:
                    self._fault_budget = extra
                if self._fault_budget is not None and self._fault_budget <= 0:
                    self._fault = self._fault_budget = None
                    self.unplug()
                    return
                if self._fault_budget is not None:
                    self._fault_budget -= 1
                self._reply(emu.feed(data[i : i + 1]))
            return
        self._reply(emu.feed(data))

    def _reply(self, reply: bytes) -> None:
        if reply and self.plugged:
            try:
                os.write(self._master, reply)
            except OSError:
                pass


class TcpPrinter:
    """The emulator on 127.0.0.1, one client at a time (like port 9100)."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self.emulator = emulator
        self._lock = threading.RLock()
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-printer", daemon=True)

    @property
    def url(self) -> str:
        return "socket://127.0.0.1:%d" % self.port

    def __enter__(self) -> TcpPrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._server.close()

    def call(self, fn: Callable[[Emulator], T]) -> T:
        with self._lock:
            return fn(self.emulator)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.1)
                while not self._stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    with self._lock:
                        reply = self.emulator.feed(data)
                    if reply:
                        conn.sendall(reply)


def serve(
    emulator: Emulator,
    link: Path | None,
    tcp_port: int | None,
    png_dir: Path | None,
    echo: Callable[[str], None],
    stop: threading.Event,
    started: Callable[[PtyPrinter | TcpPrinter], None] | None = None,
) -> None:
    """Run an emulated printer until `stop` is set; write each printed label
    as a PNG into png_dir and say so through echo."""
    server: PtyPrinter | TcpPrinter = (
        PtyPrinter(emulator, link) if link is not None else TcpPrinter(emulator, tcp_port or 9100)
    )
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
    with server:
        if started is not None:
            started(server)
        where = str(link) if isinstance(server, PtyPrinter) else server.url
        echo("emulated %s printer on %s" % (emulator.language, where))
        seen = 0

        def new_labels(emu: Emulator) -> list[PrintedLabel]:
            return list(emu.printed[seen:])

        while not stop.wait(0.1):
            for label in server.call(new_labels):
                seen += 1
                line = "label %d: %s" % (seen, label.tracking_no or "(no barcode)")
                if png_dir is not None:
                    line += " -> %s" % label.render_png(png_dir / ("label-%04d.png" % seen))
                echo(line)
