"""Every text field fits its zone on every template, in all four printer
languages and in the PNG preview: long Latin and CJK names and addresses
are wrapped, then shrunk, then cut with an ellipsis, and never drawn over
another field. What the printer draws is read back from the encoded
commands by the emulator, not taken from the layout."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw

from printer_drivers import cpcl, escpos, tspl, zpl
from printer_drivers.emulator import Emulator
from printer_drivers.fit import ELLIPSIS, fit, text_width, wrap
from printer_drivers.label import MaskedLabel
from printer_drivers.layout import (
    Element,
    Rule,
    Text,
    available_templates,
    element_box,
    layout,
    load_template,
)
from protocol import masking
from tests.fixtures.printers import QR_PAYLOAD

DIALECTS = {"tspl": tspl.Tspl(), "zpl": zpl.Zpl(), "escpos": escpos.EscPos(), "cpcl": cpcl.Cpcl()}


def _view(name: str, address: str, sender: str = "Testy McTestface",
          tracking_no: str = "VP2611280007", route: str = "R-07", sort_code: str = "571-W2 07",
          contents: str = "文件 x1", phone: str = "17000001234") -> MaskedLabel:
    return MaskedLabel.from_mapping({
        "tracking_no": tracking_no, "route_id": route, "sort_code": sort_code, "contents": contents,
        "qr_payload": QR_PAYLOAD,
        "receiver": {"name": masking.mask_name(name), "phone": masking.mask_phone(phone),
                     "address": masking.mask_address(address)},
        "sender": {"name": masking.mask_name(sender), "phone": masking.mask_phone("17000005678"),
                   "address": masking.mask_address("樣例市示範區測試街8號 12樓1203室")},
    })


LATIN_ADDRESS = "1234 Example Boulevard West, Testville Industrial Park, Building 7, Flat 9"
CJK_ADDRESS = "測試省測試市測試區樣例路一千二百三十四號測試工業園區七號樓東側 3棟502室"
LABELS = {
    "latin-16": _view("Testy McTestface", "1 Example Road, Testville, Flat 9"),  # the name that overprinted
    "latin-long": _view("Testy Maximilian McTestface-Longname", LATIN_ADDRESS,
                        sender="Testina Bartholomew Examplesworth-Smythe"),
    "cjk-long": _view("測試收件人歐陽長長名字測試甲乙丙", CJK_ADDRESS, sender="測試寄件人司馬長長長名字"),
    "landline-ext": _view("測試甲", CJK_ADDRESS, phone="0755-88889999 ext 123"),
    "everything-long": _view("Testy Maximilian McTestface-Longname", CJK_ADDRESS,
                             tracking_no="VP" + "1234567890" * 3, route="R-" + "NORTHWEST07" * 2,
                             sort_code="571-W2 07/NORTH-EAST-12", contents="文件 x1 測試物品" * 6),
}
TEMPLATES = available_templates()


def _printed(template: str, language: str, label: MaskedLabel) -> tuple[Any, list[Element]]:
    t = load_template(template)
    emulator = Emulator(language)
    emulator.feed(DIALECTS[language].encode(layout(t, label)))
    assert emulator.errors == [] and len(emulator.printed) == 1
    return t, emulator.printed[0].elements


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _sources(label: MaskedLabel, template: Any) -> list[str]:
    """Every string a text on this label may be a piece of."""
    return [str(item.get("prefix", "")) + label.field(item["field"]) if "field" in item else str(item["text"])
            for zone in template.zones for item in zone["items"] if item["kind"] == "text"]


def test_the_16_character_latin_name_no_longer_overprints_the_phone() -> None:
    t, elements = _printed("100x150", "tspl", LABELS["latin-16"])
    zone = next(z for z in t.zones if z["name"] == "receiver")
    top, bottom = t.dots(zone["top_mm"]), t.dots(zone["top_mm"] + zone["height_mm"])
    texts = [e for e in elements if isinstance(e, Text) and top <= e.y < bottom]
    name = [e for e in texts if "T****" in e.text or "M*****" in e.text]
    phone = next(e for e in texts if e.text == masking.mask_phone("17000001234"))
    assert name and all(not _overlap(element_box(n), element_box(phone)) for n in name)
    assert "".join(n.text for n in name).replace(" ", "") == "T****M*********"  # all of it, masked as given


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", sorted(DIALECTS))
@pytest.mark.parametrize("case", sorted(LABELS))
def test_no_two_printed_elements_overlap_and_each_stays_in_its_zone(template: str, language: str,
                                                                    case: str) -> None:
    label = LABELS[case]
    t, elements = _printed(template, language, label)
    drawn = [e for e in elements if not isinstance(e, Rule)]
    rules = sorted(e.y for e in elements if isinstance(e, Rule))
    edges = [0, *rules, t.height]
    for e in drawn:
        box = element_box(e)
        assert 0 <= box[0] and box[2] <= t.width and 0 <= box[1] and box[3] <= t.height, (e, box)
        assert any(lo <= box[1] and box[3] <= hi for lo, hi in zip(edges, edges[1:], strict=False)), (
            "%r crosses a zone's edge" % (e,))
    for a, b in combinations(drawn, 2):
        assert not _overlap(element_box(a), element_box(b)), "%r overlaps %r" % (a, b)
    sources = _sources(label, t)
    for e in drawn:
        if isinstance(e, Text):
            piece = e.text[:-1] if e.text.endswith(ELLIPSIS) else e.text
            assert any(piece in s for s in sources), "%r is not part of any field: unmasked?" % e.text


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_field_too_long_for_its_box_is_cut_with_an_ellipsis_and_keeps_its_mask(template: str) -> None:
    t = load_template(template)
    texts = [e for e in layout(t, LABELS["everything-long"]).elements if isinstance(e, Text)]
    cut = [e for e in texts if e.text.endswith(ELLIPSIS)]
    assert cut, "nothing was long enough to be cut"
    masked_address = masking.mask_address(CJK_ADDRESS)
    address_lines = [e.text for e in texts
                     if e.text.rstrip(ELLIPSIS) and e.text.rstrip(ELLIPSIS) in masked_address]
    joined = "".join(address_lines).rstrip(ELLIPSIS).replace(" ", "")
    assert joined in masked_address.replace(" ", "")  # the address wraps at its space


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("case", sorted(LABELS))
def test_the_png_preview_draws_each_text_inside_its_box_and_nothing_over_anything(template: str,
                                                                                  case: str) -> None:
    from printer_drivers.preview import draw_element

    lay = layout(load_template(template), LABELS[case])
    inks = []
    for el in lay.elements:
        if isinstance(el, Rule):
            continue
        img = Image.new("1", (lay.width, lay.height), 1)
        draw_element(img, ImageDraw.Draw(img), el)
        ink = ImageChops.invert(img.convert("L")).point(lambda v: 255 if v else 0).convert("1")
        bbox = ink.getbbox()
        if bbox is None:
            continue
        x0, y0, x1, y1 = element_box(el)
        assert x0 <= bbox[0] and y0 <= bbox[1] and bbox[2] <= x1 and bbox[3] <= y1, (el, bbox)
        inks.append((el, ink))
    for (a, ink_a), (b, ink_b) in combinations(inks, 2):
        if _overlap(element_box(a), element_box(b)):
            assert ImageChops.logical_and(ink_a, ink_b).getbbox() is None, (a, b)


def test_wrap_breaks_at_spaces_then_between_characters() -> None:
    assert wrap("Testy McTestface", text_width("Testy McTe", 1), 1) == ["Testy", "McTestface"]
    assert wrap("測試收件人歐陽", text_width("測試收", 1), 1) == ["測試收", "件人歐", "陽"]


def test_fit_wraps_before_it_shrinks_and_shrinks_before_it_cuts() -> None:
    width = text_width("x" * 12, 2)  # 12 ASCII cells at scale 2
    assert fit("T**** M*********", width, 48, 2) == fit("T**** M*********", width, 48, 2)
    two_lines = fit("T**** M*********", width, 96, 2)
    assert two_lines.scale == 2 and two_lines.lines == ["T****", "M*********"] and not two_lines.truncated
    shrunk = fit("T**** M*********", width, 48, 2)
    assert shrunk.scale == 1 and shrunk.lines == ["T**** M*********"] and not shrunk.truncated
    cut = fit("測試收件人歐陽長長名字測試甲乙丙" * 2, text_width("測" * 6, 1), 24, 2)
    assert cut.truncated and cut.scale == 1 and len(cut.lines) == 1 and cut.lines[0].endswith(ELLIPSIS)
    assert text_width(cut.lines[0], 1) <= text_width("測" * 6, 1)
