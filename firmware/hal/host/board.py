# The host HAL: runs the firmware on CPython for the simulator and tests.
# Flash is a folder, NVS is another folder, input is scripted, the clock is
# whatever the caller passes in (or time.time when none is given).

import gc
import os
import select
import sys
import time

from firmware import mqtt
from firmware.hal.host.memory import ScreenLog


class FolderFlash:
    """A folder standing in for the device's flash filesystem."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)

    def _file(self, name):
        if "/" in name or name.startswith("."):
            raise ValueError("bad flash file name " + repr(name))
        return os.path.join(self.path, name)

    def read(self, name):
        try:
            with open(self._file(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, name, data):
        tmp = self._file(name) + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._file(name))

    def remove(self, name):
        try:
            os.remove(self._file(name))
        except FileNotFoundError:
            pass

    def names(self):
        return sorted(n for n in os.listdir(self.path) if not n.endswith(".tmp"))


class FolderKeystore:
    """NVS stand-in: one file per key in its own folder, apart from flash."""

    def __init__(self, path):
        self.flash = FolderFlash(path)

    def get(self, name):
        return self.flash.read(name)

    def put(self, name, data):
        self.flash.write(name, bytes(data))

    def erase(self):
        for n in self.flash.names():
            # Overwrite before unlinking, as the NVS erase would.
            size = len(self.flash.read(n) or b"")
            self.flash.write(n, bytes(size))
            self.flash.remove(n)


class HostHAL:
    def __init__(self, flash_dir, nvs_dir, rng=None, aead=None, clock=None):
        self.flash = FolderFlash(flash_dir)
        self.keystore = FolderKeystore(nvs_dir)
        self.display = ScreenLog()
        self._rng = rng or os.urandom
        self._aead = aead  # e.g. gateway.aead.CryptographyAEAD(), given by the simulator
        self._clock = clock or time.time
        self._inputs = []
        self.online = True   # the simulator's cable: False refuses connections
        self.terminal = None  # a TerminalInput for interactive use

    def random(self, n):
        return self._rng(n)

    def aead(self):
        # The board's AES engine; None is protocol/'s pure AEAD, as on an ESP32.
        return self._aead

    def open_socket(self, host, port, tls=None):
        if not self.online:
            raise OSError(101, "network is unreachable (simulated)")
        return mqtt.open_socket(host, port, tls)

    def collect(self):
        gc.collect()

    def restart(self):
        """A board reset: on the host the process ends (nothing is left in RAM)."""
        raise SystemExit("handheld restarted after repeated faults")

    def watchdog(self, timeout_ms):
        return None

    def feed(self, kind, value):
        self._inputs.append((kind, value))

    def inputs(self):
        got = self._inputs
        self._inputs = []
        if self.terminal is not None:
            got += self.terminal.events()
        return got

    def now(self):
        return self._clock()


class TerminalInput:
    """Courier input typed on a terminal: a line "s CODE" is a scanner read
    (a label's QR text or a barcode), "t CODE" a tracking number typed on the
    keyboard, any other line keypad keys, one character each (0-9 * # A B)."""

    def __init__(self, stream=None):
        self.fd = (stream or sys.stdin).fileno()
        self.pending = b""

    def events(self):
        # Unbuffered reads: a buffered readline would hide typed lines from select.
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                break
            self.pending += chunk
        out = []
        while b"\n" in self.pending:
            raw, self.pending = self.pending.split(b"\n", 1)
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("s "):
                out.append(("scan", line[2:].strip()))
            elif line.startswith("t "):
                out.append(("typed", line[2:].strip()))
            else:
                out += [("key", k) for k in line if not k.isspace()]
        return out
