"""Text that fits its box: wrap, then shrink, then truncate with an ellipsis.

Every printer language we speak draws text in the printer's own 24-dot GB
font on a fixed grid: an ASCII character is half a cell (12 dots), every
other character (two bytes in GB18030) a whole cell (24 dots), and a scale
multiplies both ways (TSPL x/y-multiplication, ZPL ^A@ height and width,
ESC/POS GS !, CPCL SETMAG). So the width of a line is known before it is
printed, and a box in dots decides how a value is laid out:

1. at the template's scale, wrap (at spaces when a line has one, else
   between characters) into as many lines as the box is tall;
2. if it still does not fit, try the next smaller scale, down to 1;
3. at scale 1, keep what fits and end the last line with "…".

Characters are only ever moved to the next line or dropped, never changed:
a masked value stays masked (a cut can only hide more of it).
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_FONT_DOTS = 24  # the printers' built-in GB18030 font is 24x24 dots
ELLIPSIS = "…"  # GB18030 A1AD: a whole cell on the printers


def cells(ch: str) -> int:
    """Half-cells a character takes: 1 for ASCII, 2 for anything else."""
    return 1 if ord(ch) < 0x80 else 2


def text_width(text: str, scale: int) -> int:
    """Dots a line of text takes on the printer at `scale`."""
    return sum(cells(c) for c in text) * (BASE_FONT_DOTS // 2) * scale


def line_height(scale: int) -> int:
    return BASE_FONT_DOTS * scale


@dataclass(frozen=True)
class Fitted:
    lines: list[str]
    scale: int
    truncated: bool


def wrap(text: str, width: int, scale: int) -> list[str]:
    """Lines of at most `width` dots; a break falls at the last space of the
    line when there is one, else between characters. Leading spaces of a
    continued line are dropped."""
    limit = width // ((BASE_FONT_DOTS // 2) * scale)  # half-cells per line
    if limit <= 0:
        return [text] if text else [""]
    lines: list[str] = []
    line, used = "", 0
    for ch in text:
        w = cells(ch)
        if used + w > limit:
            space = line.rfind(" ")
            if space > 0 and ch != " ":
                lines.append(line[:space])
                line = line[space + 1:]
            else:
                lines.append(line.rstrip(" "))
                line = ""
            line = line.lstrip(" ")
            used = sum(cells(c) for c in line)
        if ch == " " and not line:
            continue
        line += ch
        used += w
    lines.append(line)
    return [ln for ln in lines if ln] or [""]


def _cut(line: str, width: int, scale: int, mark: bool) -> str:
    """The longest start of `line` that still fits, with an ellipsis after it
    when `mark` (nothing at all when not even the ellipsis fits)."""
    end = ELLIPSIS if mark else ""
    if text_width(end, scale) > width:
        return ""
    while line and text_width(line + end, scale) > width:
        line = line[:-1]
    return line.rstrip(" ") + end


def fit(text: str, width: int, height: int, scale: int, max_lines: int | None = None) -> Fitted:
    """Lay `text` out in a box of `width` x `height` dots, starting at `scale`."""
    for s in range(max(1, scale), 0, -1):
        rows = max(1, height // line_height(s))
        if max_lines:
            rows = min(rows, max_lines)
        lines = wrap(text, width, s)
        if len(lines) <= rows and all(text_width(ln, s) <= width for ln in lines):
            return Fitted(lines, s, False)
    rows = max(1, height // line_height(1))
    if max_lines:
        rows = min(rows, max_lines)
    lines = wrap(text, width, 1)[:rows]
    last = len(lines) - 1
    lines = [_cut(ln, width, 1, i == last) for i, ln in enumerate(lines)]
    return Fitted([ln for ln in lines if ln], 1, True)
