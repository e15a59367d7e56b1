# Every GPIO the handheld uses on an ESP32 (WROOM-32, no PSRAM), in one
# table: the scanner's UART, the SPI panel and the 4x4 keypad. check() refuses
# a map that uses a pin twice, an input on a strapping pin (its level at reset
# picks the boot mode: a key held at power-on would change it), a pin of the
# flash chip or of the USB console, or an output on an input-only pin. A board
# wired differently sets "hardware": {"pins": {name: gpio}}; the same check
# runs on the result. Pure data: imported on CPython by its test.

PINS = {
    "scanner_tx": 17, "scanner_rx": 16,                      # UART2
    "panel_sck": 18, "panel_mosi": 23, "panel_dc": 22, "panel_cs": 21, "panel_rst": 4,
    "key_row_1": 32, "key_row_2": 33, "key_row_3": 25, "key_row_4": 26,
    "key_col_1": 27, "key_col_2": 14, "key_col_3": 13, "key_col_4": 19,
}
INPUTS = ("scanner_rx", "key_col_1", "key_col_2", "key_col_3", "key_col_4")
STRAPPING = (0, 2, 5, 12, 15)
RESERVED = (1, 3, 6, 7, 8, 9, 10, 11)     # UART0 (USB console) and the SPI flash
INPUT_ONLY = (34, 35, 36, 37, 38, 39)     # and without pull-ups: not for keypad columns
VALID = tuple(range(0, 34)) + INPUT_ONLY


def check(pins):
    """The problems of a pin map, as lines (empty when it is sound)."""
    out = []
    used = {}
    for name in sorted(pins):
        gpio = pins[name]
        if name not in PINS:
            out.append("unknown pin name " + name)
            continue
        if not isinstance(gpio, int) or isinstance(gpio, bool) or gpio not in VALID:
            out.append(name + ": GPIO" + str(gpio) + " does not exist on an ESP32")
            continue
        if gpio in used:
            out.append(name + ": GPIO" + str(gpio) + " is already " + used[gpio])
        used[gpio] = name
        if gpio in RESERVED:
            out.append(name + ": GPIO" + str(gpio) + " belongs to the flash chip or the USB console")
        if name in INPUTS and gpio in STRAPPING:
            out.append(name + ": GPIO" + str(gpio) + " is a strapping pin, not for an input")
        if name in INPUTS and name.startswith("key_col") and gpio in INPUT_ONLY:
            out.append(name + ": GPIO" + str(gpio) + " has no pull-up for a keypad column")
        if name not in INPUTS and gpio in INPUT_ONLY:
            out.append(name + ": GPIO" + str(gpio) + " is input-only")
    return out


def resolve(hardware):
    """The pin map for a device config's "hardware" section; ValueError
    naming every problem when it is not sound."""
    pins = dict(PINS)
    scanner = hardware.get("scanner") or {}
    for key in ("tx", "rx"):
        if key in scanner:
            pins["scanner_" + key] = scanner[key]
    extra = hardware.get("pins") or {}
    for name in extra:
        pins[name] = extra[name]
    problems = check(pins)
    if problems:
        raise ValueError("hardware pin map: " + "; ".join(problems))
    return pins
