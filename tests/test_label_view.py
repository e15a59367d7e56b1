"""The printing code takes a masked view and refuses anything else."""

from __future__ import annotations

import pytest

from printer_drivers import LabelError, MaskedLabel, layout, load_template, render_label
from printer_drivers.layout import QRCode, Text
from tests.fixtures.printers import MASKED, PLAINTEXT, masked_view


def test_masked_view_with_nested_people_is_accepted() -> None:
    label = MaskedLabel.from_mapping(masked_view())
    assert label.receiver_phone == "170******34"
    assert label.sender_name == "T**** M*********"


@pytest.mark.parametrize(
    "side, key",
    [
        ("receiver", "name"),
        ("receiver", "phone"),
        ("receiver", "address"),
        ("sender", "name"),
        ("sender", "phone"),
    ],
)
def test_plaintext_personal_field_is_refused(side: str, key: str) -> None:
    view = masked_view()
    view[side][key] = PLAINTEXT[side][key]  # type: ignore[index]
    with pytest.raises(LabelError, match="refusing"):
        MaskedLabel.from_mapping(view)


def test_phone_with_only_four_digits_hidden_is_refused() -> None:
    view = masked_view()
    view["receiver"]["phone"] = "170****1234"  # type: ignore[index]
    with pytest.raises(LabelError, match="phone"):
        MaskedLabel.from_mapping(view)


def test_phone_number_smuggled_into_contents_is_refused() -> None:
    view = masked_view()
    view["contents"] = "call 17000001234"
    with pytest.raises(LabelError, match="7\\+ digits"):
        MaskedLabel.from_mapping(view)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tracking_no", "VP 12", "tracking number"),
        ("tracking_no", "X" * 40, "tracking number"),
        ("sort_code", "", "sort code"),
        ("qr_payload", "not base64url!", "QR payload"),
        ("contents", "文" * 200, "characters"),
        ("contents", 12, "must be text"),
    ],
)
def test_malformed_view_gets_a_clear_error(field: str, value: object, message: str) -> None:
    view = masked_view()
    view[field] = value
    with pytest.raises(LabelError, match=message):
        MaskedLabel.from_mapping(view)


def test_unknown_template_names_the_ones_available() -> None:
    with pytest.raises(LabelError, match="100x150"):
        load_template("90x90")


@pytest.mark.parametrize("template", ["76x130", "100x150"])
@pytest.mark.parametrize("dpi", [203, 300])
def test_templates_fit_the_label_and_carry_the_signed_reference(template: str, dpi: int) -> None:
    t = load_template(template, dpi)
    lay = layout(t, MaskedLabel.from_mapping(masked_view()))
    for el in lay.elements:
        assert 0 <= el.x < t.width and 0 <= el.y < t.height, el
    assert [e.data for e in lay.elements if isinstance(e, QRCode)] == [masked_view()["qr_payload"]]
    assert any(e.text == "170******34" for e in lay.elements if isinstance(e, Text))


def test_render_label_is_the_one_entry_point() -> None:
    data = render_label(masked_view(), "tspl", "76x130")
    assert data.rstrip().endswith(b"PRINT 1,1")
    with pytest.raises(LabelError):
        render_label({**masked_view(), "receiver": PLAINTEXT["receiver"]}, "tspl")


def test_fixture_views_are_what_the_masking_rules_produce() -> None:
    from protocol.masking import mask_parcel

    for side in ("receiver", "sender"):
        assert mask_parcel(PLAINTEXT[side]) == MASKED[side]
