"""Look up a printer language by name."""

from __future__ import annotations

from printer_drivers.cpcl import Cpcl
from printer_drivers.dialect import Dialect
from printer_drivers.escpos import EscPos
from printer_drivers.tspl import Tspl
from printer_drivers.zpl import DEFAULT_FONT, Zpl

LANGUAGES = ("tspl", "zpl", "escpos", "cpcl")


def dialect(name: str, zpl_font: str = DEFAULT_FONT) -> Dialect:
    key = name.lower().replace("/", "").replace("-", "").replace(" ", "")
    if key in ("zpl", "zplii", "zpl2"):
        return Zpl(zpl_font)
    table: dict[str, Dialect] = {"tspl": Tspl(), "tspl2": Tspl(), "escpos": EscPos(), "cpcl": Cpcl()}
    if key not in table:
        raise ValueError("unknown printer language %r (have: %s)" % (name, ", ".join(LANGUAGES)))
    return table[key]
