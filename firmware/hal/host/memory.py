# An all-in-RAM HAL: flash and NVS are dicts, the network is a loopback
# object the test feeds bytes into, randomness is a seeded SHA-256 stream.
# Runs in the MicroPython VM (no sockets, no os.urandom there) and on CPython.

import hashlib


class DictFlash:
    """Flash as a dict of name -> bytes."""

    def __init__(self, files=None):
        self.files = files if files is not None else {}

    def read(self, name):
        return self.files.get(name)

    def write(self, name, data):
        self.files[name] = bytes(data)

    def remove(self, name):
        self.files.pop(name, None)

    def names(self):
        return sorted(self.files)


class DictKeystore:
    def __init__(self):
        self.keys = {}

    def get(self, name):
        return self.keys.get(name)

    def put(self, name, data):
        self.keys[name] = bytes(data)

    def erase(self):
        self.keys = {}


class ScreenLog:
    """The current screen. Lines that are bytearrays are kept by reference,
    so a zeroized reveal disappears from here too."""

    def __init__(self):
        self.lines = []
        self.frames = 0

    def show(self, lines):
        self.lines = list(lines)
        self.frames += 1

    def text(self):
        out = []
        for line in self.lines:
            if isinstance(line, (bytes, bytearray)):
                out.append(bytes(line).rstrip(b"\x00").decode("utf-8", "replace"))
            else:
                out.append(line)
        return "\n".join(out)


class Loopback:
    """A socket stand-in: the test puts broker bytes in with feed() and reads
    what the device sent from `sent`. readinto returns None when nothing waits."""

    def __init__(self):
        self.incoming = bytearray()
        self.sent = bytearray()
        self.closed = False

    def feed(self, data):
        self.incoming += data

    def readinto(self, buf):
        """As a MicroPython socket's: bytes copied into buf, 0 once closed,
        None when nothing waits."""
        if self.closed:
            return 0
        if not self.incoming:
            return None
        n = min(len(buf), len(self.incoming))
        buf[:n] = self.incoming[:n]
        self.incoming = self.incoming[n:]
        return n

    def send(self, data):
        if self.closed:
            raise OSError(32, "broken pipe")
        self.sent += data
        return len(data)

    def close(self):
        self.closed = True

    def take_sent(self):
        out = bytes(self.sent)
        self.sent = bytearray()
        return out


class MemoryHAL:
    def __init__(self, seed=b"veilpost-test"):
        self.flash = DictFlash()
        self.keystore = DictKeystore()
        self.display = ScreenLog()
        self._seed = seed
        self._counter = 0
        self._inputs = []
        self.sockets = []
        self.online = True
        self.restarts = 0
        self.collections = 0

    def random(self, n):
        out = b""
        while len(out) < n:
            self._counter += 1
            out += hashlib.sha256(self._seed + self._counter.to_bytes(4, "big")).digest()
        return out[:n]

    def aead(self):
        return None

    def open_socket(self, host, port, tls=None):
        if not self.online:
            raise OSError(101, "network is unreachable (simulated)")
        sock = Loopback()
        self.sockets.append(sock)
        return sock

    def collect(self):
        """Counted, not run: the VM the tests use (MicroPython on WASI) loses
        objects held in C locals when a collection runs deep inside a call,
        so its tests collect between rounds, at the top level."""
        self.collections += 1

    def restart(self):
        """The board's reset, counted: RAM state is the caller's to drop."""
        self.restarts += 1

    def watchdog(self, timeout_ms):
        return None

    def feed(self, kind, value):
        """Queue an input: ("scan", text), ("typed", text) or ("key", key)."""
        self._inputs.append((kind, value))

    def inputs(self):
        got = self._inputs
        self._inputs = []
        return got
