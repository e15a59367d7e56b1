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

from printer_drivers.fit import BASE_FONT_DOTS, fit, line_height, text_width
from printer_drivers.label import LabelError, MaskedLabel

__all__ = ["BASE_FONT_DOTS", "Bitmap", "Code128", "Element", "Layout", "QRCode", "Rule", "Template", "Text",
           "available_templates", "element_box", "layout", "load_template"]

TEMPLATE_DIR = Path(__file__).with_name("templates")
REQUIRED_ZONES = ("code", "destination", "receiver", "sender", "contents", "signature")
DOTS_PER_MM = {203: 8, 300: 12}  # how label printers round their resolution
GAP_MM = 1.0  # between a text box and the item to its right
GAP_BELOW_MM = 0.5  # between a text box and the item under it, or its zone's lower edge
MARGIN_MM = 1.5  # between a text box and the label's right edge


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
    """Place every item of every zone; separators between zones. Each text
    gets the box between its position and the next item to its right and
    below it (or its zone's edge), and is fitted into it (printer_drivers/fit.py)."""
    d = template.dots
    elements: list[Element] = []
    line = max(2, d(0.3))
    for zone in template.zones:
        top = float(zone["top_mm"])
        bottom = top + float(zone["height_mm"])
        if zone.get("rule_below", True) and bottom < template.height_mm:
            elements.append(Rule(0, d(bottom), template.width, line))
        placed = [_place(template, label, item, top) for item in zone.get("items", [])]
        boxes = _text_boxes(template, placed, d(bottom))
        for (item, value, first), box in zip(placed, boxes, strict=True):
            if box is None:
                elements.append(first)
                continue
            assert isinstance(first, Text)
            width, height = box
            scale = first.scale
            if "max_chars" in item:  # a template's own cap on a line's length
                width = min(width, text_width("x" * int(item["max_chars"]), scale))
            fitted = fit(value, width, height, scale, int(item["max_lines"]) if "max_lines" in item else None)
            elements += [Text(first.x, first.y + i * line_height(fitted.scale), text, fitted.scale)
                         for i, text in enumerate(fitted.lines)]
    return Layout(template, elements)


Placed = tuple[dict[str, Any], str, Element]  # template item, its text, its element before fitting


def _place(t: Template, label: MaskedLabel, item: dict[str, Any], top: float) -> Placed:
    d = t.dots
    x, y = d(float(item.get("x_mm", 0))), d(top + float(item.get("y_mm", 0)))
    kind = item["kind"]
    value = str(item.get("text", ""))
    if "field" in item:
        value = str(item.get("prefix", "")) + label.field(item["field"])
    if kind == "text":
        return item, value, Text(x, y, value, int(item.get("scale", 1)))
    if kind == "code128":
        module = max(1, round(float(item.get("module_mm", 0.25)) * t.dots_per_mm))
        return item, value, Code128(x, y, value, d(float(item["height_mm"])), module)
    if kind == "qr":
        cell = max(2, round(float(item.get("cell_mm", 0.5)) * t.dots_per_mm))
        return item, value, QRCode(x, y, value, cell, str(item.get("ecc", "M")))
    if kind == "rule":
        return item, value, Rule(x, y, d(float(item["width_mm"])), d(float(item.get("height_mm", 0.3))))
    raise LabelError("template item kind %r is not one of text, code128, qr, rule" % kind)


def _text_boxes(t: Template, placed: list[Placed], zone_bottom: int) -> list[tuple[int, int] | None]:
    """(width, height) in dots for each text item of a zone, None for the rest."""
    d = t.dots
    firsts = [element_box(el) for _item, _value, el in placed]  # a text's first line at its own scale
    rights: list[int] = []
    for i, (item, _value, el) in enumerate(placed):
        x0, y0, x1, y1 = firsts[i]
        if not isinstance(el, Text):
            rights.append(x1)
            continue
        right = t.width - d(MARGIN_MM)
        for j, (bx0, by0, _bx1, by1) in enumerate(firsts):
            if j != i and bx0 > x0 and by0 < y1 and by1 > y0:
                right = min(right, bx0 - d(GAP_MM))
        if "width_mm" in item:
            right = min(right, x0 + d(float(item["width_mm"])))
        rights.append(right)
    boxes: list[tuple[int, int] | None] = []
    for i, (item, _value, el) in enumerate(placed):
        if not isinstance(el, Text):
            boxes.append(None)
            continue
        x0, y0 = el.x, el.y
        bottom = zone_bottom - d(GAP_BELOW_MM)
        for j, (bx0, by0, _bx1, _by1) in enumerate(firsts):
            if j != i and by0 > y0 and bx0 < rights[i] and rights[j] > x0:
                bottom = min(bottom, by0 - d(GAP_BELOW_MM))
        if "height_mm" in item:
            bottom = min(bottom, y0 + d(float(item["height_mm"])))
        boxes.append((max(0, rights[i] - x0), max(0, bottom - y0)))
    return boxes


def element_box(el: Element) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in dots of what an element draws (x1, y1 exclusive)."""
    if isinstance(el, Text):
        return el.x, el.y, el.x + text_width(el.text, el.scale), el.y + line_height(el.scale)
    if isinstance(el, Code128):
        from barcode.codex import Code128 as _Code128

        modules = len("".join(_Code128(el.data).build()))
        return el.x, el.y, el.x + modules * el.module, el.y + el.height
    if isinstance(el, QRCode):
        import segno

        size = int(segno.make_qr(el.data, error=el.ecc.lower(), boost_error=False).symbol_size(border=0)[0])
        return el.x, el.y, el.x + size * el.cell, el.y + size * el.cell
    if isinstance(el, Rule):
        return el.x, el.y, el.x + el.width, el.y + el.height
    return el.x, el.y, el.x + el.width_bytes * 8, el.y + el.height
