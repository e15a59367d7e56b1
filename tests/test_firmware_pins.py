"""The ESP32 pin map (firmware/hal/esp32/pins.py): one table, no pin used
twice, no strapping pin as an input, and the board code takes every pin
from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from firmware.hal.esp32 import pins

BOARD = Path(__file__).resolve().parents[1] / "firmware" / "hal" / "esp32" / "board.py"


def test_the_default_map_is_sound() -> None:
    assert pins.check(pins.PINS) == []
    gpios = list(pins.PINS.values())
    assert len(gpios) == len(set(gpios))
    assert not {pins.PINS[n] for n in pins.INPUTS} & set(pins.STRAPPING)
    assert not set(gpios) & set(pins.RESERVED)


def test_the_board_takes_every_pin_from_the_table() -> None:
    src = BOARD.read_text()
    assert not re.search(r"Pin\(\s*\d", src), "a pin number written in board.py"
    named = set(re.findall(r'pins\["(\w+)"\]', src))
    for prefix in re.findall(r'pins\["(key_\w+_)" \+ str\(i\)\]', src):   # the keypad's rows and columns
        named |= {prefix + str(i) for i in (1, 2, 3, 4)}
    assert named == set(pins.PINS)


@pytest.mark.parametrize("override, problem", [
    ({"key_col_3": 12}, "key_col_3: GPIO12 is a strapping pin, not for an input"),
    ({"panel_rst": 16}, "GPIO16 is already"),
    ({"panel_cs": 6}, "panel_cs: GPIO6 belongs to the flash chip"),
    ({"key_col_4": 36}, "key_col_4: GPIO36 has no pull-up"),
    ({"panel_dc": 39}, "panel_dc: GPIO39 is input-only"),
    ({"panel_sck": 40}, "panel_sck: GPIO40 does not exist"),
    ({"buzzer": 2}, "unknown pin name buzzer"),
])
def test_a_map_with_a_clash_is_refused_naming_it(override: dict[str, int], problem: str) -> None:
    with pytest.raises(ValueError) as e:
        pins.resolve({"pins": override})
    assert problem in str(e.value)


def test_the_documented_scanner_keys_still_move_its_pins() -> None:
    got = pins.resolve({"scanner": {"uart_id": 1, "tx": 26, "rx": 25},
                        "pins": {"key_row_3": 15, "key_row_4": 2}})
    assert (got["scanner_tx"], got["scanner_rx"]) == (26, 25)
    with pytest.raises(ValueError, match="scanner_rx: GPIO0 is a strapping pin"):
        pins.resolve({"scanner": {"rx": 0}})
