"""The ESP32 displays (firmware/hal/esp32/board.py) in the MicroPython VM,
with its real framebuf and stand-ins for the chip's modules (machine, esp32,
network record what they are asked): the panel draws a revealed field from
its bytearray without allocating (so without a str copy of it) and pixel
for pixel as the text would be drawn; the console shows it masked."""

from __future__ import annotations

import pytest

from tests.fixtures.handheld import run_vm

pytestmark = pytest.mark.micropython

BOARD = '''
import micropython
class _Pin:
    OUT = 1
    IN = 0
    PULL_UP = 2
    def __init__(self, n, mode=None, pull=None, value=None):
        self.n = n
    def __call__(self, v=None):
        return 0
    def value(self, v=None):
        return 1
class _SPI:
    def __init__(self, *a, **k):
        self.sent = []
    def write(self, b):
        self.sent.append(bytes(b))
class _Chip:
    Pin = _Pin
    SPI = _SPI
    def UART(self, *a, **k):
        return None
    def RTC(self):
        return None
    def reset(self):
        pass
class _Any:
    def __getattr__(self, name):
        return None
sys.modules["machine"] = _Chip()
sys.modules["esp32"] = _Any()
sys.modules["network"] = _Any()
from firmware.hal.esp32 import board, pins
panel = board.PanelDisplay(pins.PINS)
'''


def test_the_panel_draws_a_revealed_field_from_its_bytearray_without_allocating() -> None:
    out = run_vm(BOARD + '''
field = bytearray(PLAIN[2].encode())
panel.fb.fill(0)
micropython.heap_lock()
try:
    panel._text_from(field, 8)
finally:
    micropython.heap_unlock()
drawn = bytes(panel.buf)
panel.fb.fill(0)
panel.fb.text(PLAIN[2], 0, 8, 1)
print(drawn == bytes(panel.buf), any(drawn))
panel.show(["Phone: ", field])
print(len(panel.spi.sent) > 0, any(panel.buf))   # sent, then the frame is cleared
for i in range(len(field)):
    field[i] = 0
panel.fb.fill(0)
panel._text_from(field, 0)
print(any(panel.buf))                            # a zeroized field draws nothing
''')
    assert [line for line in out.splitlines() if not line.startswith("veilpost")][-3:] == \
        ["True True", "True False", "False"]


def test_the_console_shows_a_revealed_field_masked() -> None:
    out = run_vm(BOARD + '''
field = bytearray(PLAIN[1].encode())
board.ConsoleDisplay().show(["Name: ", field, "Phone: 170******34"])
print()
print(board.masked(field), board.masked(bytearray(PLAIN[2].encode())), repr(board.masked(bytearray(8))))
''')
    assert "測試甲" not in out and "17000001234" not in out
    assert "Phone: 170******34" in out
    assert out.strip().splitlines()[-1] == "*** *********** ''"
