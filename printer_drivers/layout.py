"""Templates are data; a layout is a template filled with one masked label.

A template (TOML in templates/) places items in millimetres inside the zones
of GB/T 41833-2022. `layout()` turns it into a flat list of elements in
printer dots, which every encoder and the PNG preview draw the same way.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from printer_drivers.label import LabelError, MaskedLabel

TEMPLATE_DIR = Path(__file__).with_name("templates")
REQUIRED_ZONES = ("code", "destination", "receiver", "sender", "contents", "signature")
BASE_FONT_DOTS = 24  # the printers' built-in GB18030 font is 24x24 dots
DOTS_PER_MM = {203: 8, 300: 12}  # how label printers round their resolution


@dataclass(frozen=True)
class Text:
    x: int
    y: int
    text: str
    scale: int = 1  # multiples of the 24-dot CJK font


@dataclass(frozen=True)
class Code128:
    x: int
    y: int
    data: str
    height: int
    module: int = 2  # narrow bar width in dots


@dataclass(frozen=True)
class QRCode:
    x: int
    y: int
    data: str
    cell: int = 4  # module size in dots
    ecc: str = "M"


@dataclass(frozen=True)
class Rule:
    """A filled rectangle: lines and box edges."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Bitmap:
    """1-bit image, rows of packed bytes, MSB first, 1 = black."""

    x: int
    y: int
    width_bytes: int
    height: int
    data: bytes


Element = Text | Code128 | QRCode | Rule | Bitmap


@dataclass(frozen=True)
class Template:
    name: str
    width_mm: float
    height_mm: float
    dpi: int
    gap_mm: float
    zones: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dots_per_mm(self) -> int:
        return DOTS_PER_MM[self.dpi]

    def dots(self, mm: float) -> int:
        return round(mm * self.dots_per_mm)

    @property
    def width(self) -> int:
        return self.dots(self.width_mm)

    @property
    def height(self) -> int:
        return self.dots(self.height_mm)


@dataclass(frozen=True)
class Layout:
    template: Template
    elements: list[Element]

    @property
    def width(self) -> int:
        return self.template.width

    @property
    def height(self) -> int:
        return self.template.height


def available_templates() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.toml"))


def load_template(name_or_path: str | Path, dpi: int | None = None) -> Template:
    path = Path(name_or_path)
    if not path.suffix:
        path = TEMPLATE_DIR / (str(name_or_path) + ".toml")
    if not path.is_file():
        raise LabelError("no template %r (have: %s)" % (str(name_or_path), ", ".join(available_templates())))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise LabelError("template %s is not valid TOML: %s" % (path.name, exc)) from exc
    chosen_dpi = int(dpi or data.get("dpi", 203))
    if chosen_dpi not in (203, 300):
        raise LabelError("dpi must be 203 or 300, not %d" % chosen_dpi)
    zones = data.get("zones", [])
    names = [z.get("name") for z in zones]
    missing = [z for z in REQUIRED_ZONES if z not in names]
    if missing:
        raise LabelError("template %s lacks GB/T 41833 zones: %s" % (path.name, ", ".join(missing)))
    return Template(
        name=str(data.get("name", path.stem)),
        width_mm=float(data["width_mm"]),
        height_mm=float(data["height_mm"]),
        dpi=chosen_dpi,
        gap_mm=float(data.get("gap_mm", 2)),
        zones=zones,
    )


def layout(template: Template, label: MaskedLabel) -> Layout:
    """Place every item of every zone; separators between zones."""
    d = template.dots
    elements: list[Element] = []
    line = max(2, d(0.3))
    for zone in template.zones:
        top = float(zone["top_mm"])
        if zone.get("rule_below", True) and top + float(zone["height_mm"]) < template.height_mm:
            elements.append(Rule(0, d(top + float(zone["height_mm"])), template.width, line))
        for item in zone.get("items", []):
            elements.extend(_place(template, label, item, top))
    return Layout(template, elements)


def _place(t: Template, label: MaskedLabel, item: dict[str, Any], top: float) -> list[Element]:
    d = t.dots
    x, y = d(float(item.get("x_mm", 0))), d(top + float(item.get("y_mm", 0)))
    kind = item["kind"]
    value = str(item.get("text", ""))
    if "field" in item:
        value = str(item.get("prefix", "")) + label.field(item["field"])
    if kind == "text":
        scale = int(item.get("scale", 1))
        limit = item.get("max_chars")
        if limit:
            return [
                Text(x, y + i * BASE_FONT_DOTS * scale, chunk, scale)
                for i, chunk in enumerate(_wrap(value, int(limit), int(item.get("max_lines", 2))))
            ]
        return [Text(x, y, value, scale)]
    if kind == "code128":
        module = max(1, round(float(item.get("module_mm", 0.25)) * t.dots_per_mm))
        return [Code128(x, y, value, d(float(item["height_mm"])), module)]
    if kind == "qr":
        cell = max(2, round(float(item.get("cell_mm", 0.5)) * t.dots_per_mm))
        return [QRCode(x, y, value, cell, str(item.get("ecc", "M")))]
    if kind == "rule":
        return [Rule(x, y, d(float(item["width_mm"])), d(float(item.get("height_mm", 0.3))))]
    raise LabelError("template item kind %r is not one of text, code128, qr, rule" % kind)


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """Split into display columns (a CJK character counts two)."""
    out: list[str] = []
    cur, cols = "", 0
    for ch in text:
        w = 2 if ord(ch) > 0x2E7F else 1
        if cols + w > width:
            out.append(cur)
            cur, cols = "", 0
        cur += ch
        cols += w
    if cur:
        out.append(cur)
    return out[:lines] or [""]
