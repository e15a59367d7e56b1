"""Draw a layout with Pillow: the PNG preview, and the 1-bit raster that the
benchmark compares native commands against."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import segno
from barcode.codex import Code128 as _Code128
from PIL import Image, ImageDraw, ImageFont

from printer_drivers.layout import BASE_FONT_DOTS, Bitmap, Code128, Element, Layout, QRCode, Rule, Text
from protocol.errors import ConfigurationError

FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)
# Preferred files first; any of them carries the GB18030 repertoire we print.
FONT_NAMES = (
    "wqy-zenhei.ttc",
    "wqy-microhei.ttc",
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "NotoSansSC-Regular.ttf",
    "SourceHanSansSC-Regular.otf",
    "SourceHanSans-Regular.ttc",
    "DroidSansFallbackFull.ttf",
    "simsun.ttc",
    "msyh.ttc",
    "PingFang.ttc",
    "Hiragino Sans GB.ttc",
)


class FontMissing(ConfigurationError, RuntimeError):
    pass


@lru_cache(maxsize=1)
def find_cjk_font() -> Path:
    """$VEILPOST_CJK_FONT, else the first known CJK font in the usual folders."""
    env = os.environ.get("VEILPOST_CJK_FONT")
    if env:
        if Path(env).is_file():
            return Path(env)
        raise FontMissing("VEILPOST_CJK_FONT=%s does not exist" % env)
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name in FONT_NAMES and name not in found:
                    found[name] = Path(dirpath) / name
    for name in FONT_NAMES:
        if name in found:
            return found[name]
    raise FontMissing(
        "no CJK font found for the label preview: install one (Debian/Ubuntu: apt install fonts-wqy-zenhei "
        "or fonts-noto-cjk) or set VEILPOST_CJK_FONT to a .ttf/.ttc/.otf file"
    )


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(find_cjk_font()), size)


def code128_modules(data: str) -> str:
    """'1' = bar module, '0' = space, including start, check and stop."""
    return "".join(_Code128(data).build())


def qr_matrix(data: str, ecc: str = "M") -> list[list[bool]]:
    qr = segno.make_qr(data, error=ecc.lower(), boost_error=False)
    return [[bool(v) for v in row] for row in qr.matrix]


def render(layout: Layout) -> Image.Image:
    return render_elements(layout.width, layout.height, layout.elements)


def render_elements(width: int, height: int, elements: Iterable[Element]) -> Image.Image:
    img = Image.new("1", (max(1, width), max(1, height)), 1)
    draw = ImageDraw.Draw(img)
    for el in elements:
        draw_element(img, draw, el)
    return img


def draw_element(img: Image.Image, draw: ImageDraw.ImageDraw, el: Element) -> None:
    if isinstance(el, Text):
        draw.text((el.x, el.y), el.text, font=_font(BASE_FONT_DOTS * el.scale), fill=0)
    elif isinstance(el, Code128):
        x = el.x
        for bit in code128_modules(el.data):
            if bit == "1":
                draw.rectangle((x, el.y, x + el.module - 1, el.y + el.height - 1), fill=0)
            x += el.module
    elif isinstance(el, QRCode):
        for r, row in enumerate(qr_matrix(el.data, el.ecc)):
            for c, dark in enumerate(row):
                if dark:
                    x, y = el.x + c * el.cell, el.y + r * el.cell
                    draw.rectangle((x, y, x + el.cell - 1, y + el.cell - 1), fill=0)
    elif isinstance(el, Rule):
        draw.rectangle((el.x, el.y, el.x + el.width - 1, el.y + el.height - 1), fill=0)
    elif isinstance(el, Bitmap):
        img.paste(bitmap_image(el), (el.x, el.y))


def bitmap_image(el: Bitmap) -> Image.Image:
    # Pillow's "1" raw mode packs MSB first with 1 = white; ours is 1 = black
    inverted = bytes(b ^ 0xFF for b in el.data)
    return Image.frombytes("1", (el.width_bytes * 8, el.height), inverted)


def to_bitmap(img: Image.Image, x: int = 0, y: int = 0) -> Bitmap:
    mono = img.convert("1")
    wb = (mono.width + 7) // 8
    if mono.width % 8:
        padded = Image.new("1", (wb * 8, mono.height), 1)
        padded.paste(mono, (0, 0))
        mono = padded
    data = bytes(b ^ 0xFF for b in mono.tobytes())
    return Bitmap(x, y, wb, mono.height, data)


def raster(layout: Layout) -> Bitmap:
    """The whole label as one 1-bit bitmap at the template's dpi."""
    return to_bitmap(render(layout))


def save_png(layout: Layout, path: str | Path) -> Path:
    out = Path(path)
    render(layout).save(out, format="PNG", optimize=True)
    return out
