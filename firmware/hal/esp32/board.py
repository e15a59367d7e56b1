# The ESP32 HAL: UART barcode/QR scanner, 4x4 matrix keypad, typed lines
# from a keyboard on the USB serial console, a text-console
# display (or an SPI panel through framebuf), keys in NVS, RTC clock,
# randomness from os.urandom once Wi-Fi runs (the ESP32's RNG is only a true
# RNG with the radio on). AES is cryptolib's, picked by protocol/aes.py.

import gc
import os
import time

import esp32
import machine
import network

from firmware import mqtt
from firmware.hal.esp32 import pins as pinmap

NVS_NAMESPACE = "veilpost"
KEYS = ("master", "next")
DATA_DIR = "/vp"
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0
KEYPAD_LAYOUT = "123A456B789C*0#D"
LINE_MAX = 520       # a label's QR text is at most protocol.labels.MAX_QR_TEXT (512) characters


class VfsFlash:
    """Files in DATA_DIR on the board's filesystem; write is atomic by rename."""

    def __init__(self, path=DATA_DIR):
        self.path = path
        try:
            os.mkdir(path)
        except OSError:
            pass

    def _file(self, name):
        return self.path + "/" + name

    def read(self, name):
        try:
            with open(self._file(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        tmp = self._file(name) + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.rename(tmp, self._file(name))
        except OSError:
            # FAT cannot rename over a file; LittleFS can.
            os.remove(self._file(name))
            os.rename(tmp, self._file(name))

    def remove(self, name):
        try:
            os.remove(self._file(name))
        except OSError:
            pass

    def names(self):
        return sorted(n for n in os.listdir(self.path) if not n.endswith(".tmp"))


class NVSKeystore:
    """Device keys in the NVS partition, apart from the filesystem."""

    def __init__(self):
        self.nvs = esp32.NVS(NVS_NAMESPACE)

    def get(self, name):
        buf = bytearray(64)
        try:
            n = self.nvs.get_blob(name, buf)
        except OSError:
            return None
        return bytes(buf[:n])

    def put(self, name, data):
        self.nvs.set_blob(name, data)
        self.nvs.commit()

    def erase(self):
        for name in KEYS:
            try:
                self.nvs.set_blob(name, bytes(32))   # overwrite, then drop
                self.nvs.erase_key(name)
            except OSError:
                pass
        self.nvs.commit()


def masked(buf):
    """A revealed field as the console shows it: one "*" per character
    (UTF-8 lead bytes counted in place, up to the zeroized end), no copy."""
    n = 0
    for b in buf:
        if not b:
            break
        if b & 0xC0 != 0x80:
            n += 1
    return "*" * n


class ConsoleDisplay:
    """The screen as a text console on the USB serial port. Anyone with a
    cable can read that port, so a revealed field is shown masked here; the
    plaintext only ever goes to the panel."""

    def show(self, lines):
        out = "\x1b[2J\x1b[H"
        for line in lines:
            out += (masked(line) if isinstance(line, (bytes, bytearray)) else line) + "\n"
        print(out, end="")


class PanelDisplay:
    """An SPI monochrome panel (SSD1306-class, 128x64) through framebuf. Its
    built-in font is ASCII: use lang "en" with this panel. A revealed field
    is drawn character by character from its bytearray through a table of
    one-character strings made at start, so no str of it is ever made."""

    def __init__(self, pins, spi_id=1, width=128, height=64):
        import framebuf
        self.spi = machine.SPI(spi_id, baudrate=8000000, sck=machine.Pin(pins["panel_sck"]),
                               mosi=machine.Pin(pins["panel_mosi"]))
        self.dc = machine.Pin(pins["panel_dc"], machine.Pin.OUT)
        self.cs = machine.Pin(pins["panel_cs"], machine.Pin.OUT)
        self.rst = machine.Pin(pins["panel_rst"], machine.Pin.OUT)
        self.glyphs = tuple(chr(c) for c in range(32, 127))
        self.width = width
        self.height = height
        self.buf = bytearray(width * height // 8)
        self.fb = framebuf.FrameBuffer(self.buf, width, height, framebuf.MONO_VLSB)
        self.rst(0)
        time.sleep_ms(10)
        self.rst(1)
        for c in (0xAE, 0x20, 0x00, 0xA1, 0xC8, 0x8D, 0x14, 0xAF):
            self._cmd(c)

    def _text_from(self, buf, y):
        x = 0
        for b in buf:
            if not b or x >= self.width:
                break
            if b & 0xC0 == 0x80:
                continue                      # the font is ASCII: one "?" per other character
            self.fb.text(self.glyphs[b - 32] if 32 <= b < 127 else "?", x, y, 1)
            x += 8

    def _cmd(self, c):
        self.cs(1)
        self.dc(0)
        self.cs(0)
        self.spi.write(bytes((c,)))
        self.cs(1)

    def show(self, lines):
        self.fb.fill(0)
        y = 0
        for line in lines:
            if isinstance(line, (bytes, bytearray)):
                self._text_from(line, y)
            else:
                self.fb.text(line[:16], 0, y, 1)
            y += 8
        for c in (0x21, 0, self.width - 1, 0x22, 0, self.height // 8 - 1):
            self._cmd(c)
        self.cs(1)
        self.dc(1)
        self.cs(0)
        self.spi.write(self.buf)
        self.cs(1)
        self.fb.fill(0)   # the frame may have held a revealed field


class Scanner:
    """A UART scanner module (1D barcodes and QR codes) sending one code per line."""

    def __init__(self, pins, uart_id=2, baudrate=9600):
        self.uart = machine.UART(uart_id, baudrate=baudrate, tx=pins["scanner_tx"], rx=pins["scanner_rx"])
        self.buf = b""

    def codes(self):
        out = []
        if self.uart.any():
            self.buf += self.uart.read() or b""
        while True:
            cut = -1
            for i in range(len(self.buf)):
                if self.buf[i] in (10, 13):
                    cut = i
                    break
            if cut < 0:
                break
            line = self.buf[:cut].strip()
            self.buf = self.buf[cut + 1:]
            if line:
                out.append(line.decode())
        if len(self.buf) > LINE_MAX:
            self.buf = b""   # a line that never ends is noise
        return out


class ConsoleKeyboard:
    """Tracking numbers (or a badge) typed on a keyboard at the USB serial
    console, one per line: the "typed" input, which never proves a parcel
    is in hand."""

    def __init__(self):
        import select
        import sys
        self.stdin = sys.stdin
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)
        self.buf = ""

    def lines(self):
        out = []
        while self.poller.poll(0):
            c = self.stdin.read(1)
            if not c:
                break
            if c == "\n" or c == "\r":
                line = self.buf.strip()
                self.buf = ""
                if line:
                    out.append(line)
            elif len(self.buf) < 64:
                self.buf += c
            else:
                self.buf = ""   # a line that never ends is noise
        return out


class Keypad:
    """A 4x4 matrix keypad: rows driven low one at a time, columns pulled up."""

    def __init__(self, pins):
        self.rows = [machine.Pin(pins["key_row_" + str(i)], machine.Pin.OUT, value=1) for i in (1, 2, 3, 4)]
        self.cols = [machine.Pin(pins["key_col_" + str(i)], machine.Pin.IN, machine.Pin.PULL_UP)
                     for i in (1, 2, 3, 4)]
        self.down = None

    def keys(self):
        pressed = None
        for r in range(4):
            self.rows[r].value(0)
            for c in range(4):
                if not self.cols[c].value():
                    pressed = KEYPAD_LAYOUT[r * 4 + c]
            self.rows[r].value(1)
        out = []
        if pressed is not None and pressed != self.down:
            out.append(pressed)
        self.down = pressed
        return out


class ESP32HAL:
    def __init__(self, config):
        self.config = config
        self.flash = VfsFlash()
        self.keystore = NVSKeystore()
        hw = config.get("hardware", {})
        self.pins = pinmap.resolve(hw)        # ValueError naming each clash: no half-wired board
        self.display = PanelDisplay(self.pins) if hw.get("display") == "panel" else ConsoleDisplay()
        scanner = hw.get("scanner") or {}
        self.scanner = Scanner(self.pins, scanner.get("uart_id", 2), scanner.get("baudrate", 9600))
        self.keypad = Keypad(self.pins)
        self.keyboard = ConsoleKeyboard() if hw.get("keyboard", True) else None
        self.wlan = network.WLAN(network.STA_IF)
        self.rtc = machine.RTC()

    def start_wifi(self, timeout_s=20):
        wifi = self.config.get("wifi", {})
        self.wlan.active(True)
        if not self.wlan.isconnected():
            self.wlan.connect(wifi.get("ssid", ""), wifi.get("password", ""))
            for _ in range(timeout_s * 10):
                if self.wlan.isconnected():
                    break
                time.sleep_ms(100)
        if self.wlan.isconnected():
            try:
                import ntptime
                ntptime.settime()   # sets the RTC
            except (OSError, ImportError):
                pass
        return self.wlan.isconnected()

    def random(self, n):
        if not self.wlan.active():
            raise OSError(1, "randomness asked for before Wi-Fi started")
        return os.urandom(n)

    def aead(self):
        return None

    def open_socket(self, host, port, tls=None):
        if not self.wlan.isconnected():
            raise OSError(101, "Wi-Fi is not connected")
        return mqtt.open_socket(host, port, tls)

    def inputs(self):
        out = []
        for code in self.scanner.codes():
            out.append(("scan", code))
        if self.keyboard is not None:
            for line in self.keyboard.lines():
                out.append(("typed", line))
        for key in self.keypad.keys():
            out.append(("key", key))
        return out

    def now(self):
        return time.time() + EPOCH_OFFSET

    def collect(self):
        gc.collect()

    def restart(self):
        machine.reset()

    def watchdog(self, timeout_ms):
        """The hardware watchdog: once started it cannot be stopped, and the
        board resets unless the loop feeds it within timeout_ms."""
        return machine.WDT(timeout=timeout_ms)
