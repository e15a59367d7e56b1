"""Bad bytes from the wire and bad views from callers: clear errors, no crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printer_drivers import LANGUAGES, LabelError, MaskedLabel, dialect, layout, load_template
from printer_drivers.emulator import Emulator
from printer_drivers.status import PrinterStatus, StatusError
from tests.fixtures.printers import masked_view

chunks = st.lists(st.binary(max_size=64), max_size=12)


@pytest.mark.parametrize("language", LANGUAGES)
@settings(max_examples=150, deadline=None)
@given(data=chunks)
def test_emulator_survives_any_bytes(language: str, data: list[bytes]) -> None:
    emu = Emulator(language)
    for chunk in data:
        assert isinstance(emu.feed(chunk), bytes)


@pytest.mark.parametrize("language", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(reply=st.binary(max_size=120))
def test_status_parser_answers_or_says_why(language: str, reply: bytes) -> None:
    try:
        parsed = dialect(language).parse_status(reply)
    except StatusError:
        return
    assert parsed is None or (isinstance(parsed[0], PrinterStatus) and 0 < parsed[1] <= len(reply))


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(sorted(MaskedLabel.__dataclass_fields__)), value=st.text(max_size=120))
def test_any_field_value_is_accepted_or_refused_with_a_reason(field: str, value: str) -> None:
    view: dict[str, Any] = masked_view()
    view[field] = value
    try:
        label = MaskedLabel.from_mapping(view)
    except LabelError as exc:
        assert str(exc)
        return
    lay = layout(load_template("100x150"), label)
    for language in LANGUAGES:  # whatever passed the check cannot inject commands
        emu = Emulator(language)
        emu.feed(dialect(language).encode(lay))
        assert emu.errors == [] and len(emu.printed) == 1
        assert emu.printed[0].tracking_no == label.tracking_no


def test_control_characters_cannot_inject_printer_commands() -> None:
    view: dict[str, Any] = masked_view()
    view["contents"] = "文件\r\nPRINT 1,1\r\n"
    with pytest.raises(LabelError, match="control character"):
        MaskedLabel.from_mapping(view)
