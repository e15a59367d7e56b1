"""Named printers, from `printers.toml` in the veilpost home:

[printers.depot-1]
url = "/dev/ttyUSB0"      # or socket://10.0.0.7:9100, loop://, file:labels.prn
language = "tspl"         # tspl | zpl | escpos | cpcl
baud = 9600               # serial only
flow = "rtscts"           # rtscts | dsrdtr | none; never xonxoff (binary data)
template = "100x150"      # a file in printer_drivers/templates, or a path
dpi = 203                 # 203 | 300
zpl_font = "E:SIMSUN.FNT" # ZPL only: the CJK font on the printer
timeout = 1.0             # seconds to wait for a status reply
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from printer_drivers.dialects import dialect
from printer_drivers.transport import FLOWS, Printer
from printer_drivers.zpl import DEFAULT_FONT

FILE_NAME = "printers.toml"


@dataclass(frozen=True)
class PrinterConfig:
    name: str
    url: str
    language: str
    baud: int = 9600
    flow: str = "rtscts"
    template: str = "100x150"
    dpi: int = 203
    zpl_font: str = DEFAULT_FONT
    timeout: float = 1.0

    def open(self) -> Printer:
        return Printer(self.url, dialect(self.language, self.zpl_font), self.baud, self.flow, self.timeout)


def load_printers(home: Path) -> dict[str, PrinterConfig]:
    path = Path(home) / FILE_NAME
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError("%s is not valid TOML: %s" % (path, exc)) from exc
    out = {}
    for name, raw in (data.get("printers") or {}).items():
        out[name] = _one(name, raw, path)
    return out


def _one(name: str, raw: dict[str, Any], path: Path) -> PrinterConfig:
    unknown = set(raw) - set(PrinterConfig.__dataclass_fields__)
    if unknown:
        raise ValueError("%s: printer %s has unknown keys %s" % (path, name, ", ".join(sorted(unknown))))
    if "url" not in raw or "language" not in raw:
        raise ValueError("%s: printer %s needs url and language" % (path, name))
    cfg = PrinterConfig(name=name, **raw)
    dialect(cfg.language)  # fails with the list of languages
    if cfg.flow not in FLOWS:
        raise ValueError("%s: printer %s flow must be one of %s" % (path, name, ", ".join(FLOWS)))
    if cfg.dpi not in (203, 300):
        raise ValueError("%s: printer %s dpi must be 203 or 300" % (path, name))
    return cfg
