"""The deterministic CBOR codec: byte-identical to cbor2's canonical mode,
round trips, and strict bounded decoding with byte offsets."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import cbor
from protocol.errors import MALFORMED, OVERSIZE, ProtocolError

INT64 = st.integers(min_value=-(2**64), max_value=2**64 - 1)
EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
         -1, -24, -25, -256, -257, -65536, -65537, -(2**32), -(2**32) - 1, -(2**63), -(2**64)]
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["測試甲", "歐陽測試", "測試市測試區樣例路1號 3棟502室", "Testy McTestface", ""]
)
SCALARS = INT64 | st.binary(max_size=40) | TEXT | st.booleans() | st.none() | st.sampled_from(EDGES)
KEYS = INT64 | TEXT


def values(max_leaves: int = 25) -> st.SearchStrategy[object]:
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=6) | st.dictionaries(KEYS, inner, max_size=6),
        max_leaves=max_leaves,
    )


@settings(max_examples=400)
@given(values())
def test_encoding_is_byte_identical_to_cbor2_canonical(x: object) -> None:
    assert cbor.dumps(x) == cbor2.dumps(x, canonical=True)


@settings(max_examples=400)
@given(values())
def test_decode_inverts_encode(x: object) -> None:
    assert cbor.loads(cbor.dumps(x)) == x


@pytest.mark.parametrize("n", EDGES)
def test_integer_edges_match_cbor2(n: int) -> None:
    assert cbor.dumps(n) == cbor2.dumps(n, canonical=True)
    assert cbor.loads(cbor.dumps(n)) == n


def test_integers_beyond_64_bits_are_refused() -> None:
    with pytest.raises(ValueError):
        cbor.dumps(2**64)
    with pytest.raises(ValueError):
        cbor.dumps(-(2**64) - 1)


def test_map_keys_sort_length_first_then_bytewise() -> None:
    m = {"aa": 1, "b": 2, 100: 3, -1: 4, 0: 5}
    assert list(cbor.loads(cbor.dumps(m))) == [0, -1, 100, "b", "aa"]


def test_tag_round_trips_and_matches_cbor2() -> None:
    t = cbor.Tag(16, [b"\xa1\x01\x0a", {4: b"hh-1"}, b"ct"])
    assert cbor.dumps(t) == cbor2.dumps(cbor2.CBORTag(16, t.value), canonical=True)
    assert cbor.loads(cbor.dumps(t)) == t


def test_unencodable_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        cbor.dumps(1.5)


def _err(data: bytes, **limits: int) -> ProtocolError:
    with pytest.raises(ProtocolError) as e:
        cbor.loads(data, **limits)
    return e.value


@pytest.mark.parametrize(
    "data, offset",
    [
        (b"", 0),
        (b"\x19\x01", 1),  # uint16 missing a byte
        (b"\x43ab", 1),  # bytes(3) with two
        (b"\x82\x01", 0),  # array(2) with one item: refused at its head
        (b"\xa1\x01", 0),  # map with a key and no value
        (b"\x82\x01\x19\x01", 3),  # second item truncated
    ],
)
def test_truncated_input_names_the_offset(data: bytes, offset: int) -> None:
    e = _err(data)
    assert e.code == MALFORMED
    assert e.offset == offset
    assert "at byte" in str(e)


def test_indefinite_length_is_refused_at_its_offset() -> None:
    e = _err(b"\x82\x01\x9f\x01\xff")
    assert e.code == MALFORMED and e.offset == 2 and "indefinite" in e.message


def test_trailing_bytes_are_refused() -> None:
    e = _err(b"\x01\x02")
    assert e.code == MALFORMED and e.offset == 1 and "trailing" in e.message


def test_nesting_deeper_than_the_limit_is_oversize() -> None:
    e = _err(b"\x81" * 20 + b"\x00", max_depth=16)
    assert e.code == OVERSIZE and "deep" in e.message
    assert cbor.loads(b"\x81" * 16 + b"\x00") is not None


def test_too_many_items_is_oversize() -> None:
    data = cbor.dumps(list(range(100)))
    assert _err(data, max_items=50).code == OVERSIZE
    assert cbor.loads(data, max_items=101) == list(range(100))


def test_input_larger_than_the_limit_is_oversize() -> None:
    e = _err(cbor.dumps(b"x" * 200), max_size=100)
    assert e.code == OVERSIZE and "exceeds" in e.message


def test_invalid_utf8_names_the_string_offset() -> None:
    e = _err(b"\x82\x01\x62\xff\xfe")
    assert e.code == MALFORMED and e.offset == 3 and "UTF-8" in e.message


def test_duplicate_map_keys_are_refused() -> None:
    e = _err(b"\xa2\x01\x02\x01\x03")
    assert e.code == MALFORMED and e.offset == 3 and "duplicate" in e.message


@pytest.mark.parametrize("data", [b"\xf9\x3c\x00", b"\xfa\x3f\x80\x00\x00", b"\xfb" + b"\x00" * 8, b"\xf7"])
def test_floats_and_other_simple_values_are_refused(data: bytes) -> None:
    e = _err(data)
    assert e.code == MALFORMED and e.offset == 0


def test_array_and_map_keys_are_refused() -> None:
    assert "map key" in _err(b"\xa1\x80\x01").message


def test_huge_declared_length_fails_fast_without_allocating() -> None:
    e = _err(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff")
    assert e.code == MALFORMED


def test_non_bytes_input_is_refused() -> None:
    assert _err("a1").code == MALFORMED  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"\x63\xed\xa0\x80", b"\x62\xc0\x80", b"\x64\xf4\x90\x80\x80"])
def test_surrogates_overlong_forms_and_code_points_above_unicode_are_refused(data: bytes) -> None:
    e = _err(data)
    assert e.code == MALFORMED and e.offset == 1 and "UTF-8" in e.message


def test_the_portable_utf8_check_agrees_with_cpythons_decoder() -> None:
    # MicroPython relies on cbor._utf8_strict; CPython's strict decoder is the reference.
    two = [bytes([a, b]) for a in range(0xC0, 0x100) for b in (0x80, 0xBF, 0x41)]
    longer = [bytes([a, b, 0x80, 0x80]) for a in (0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5)
              for b in (0x80, 0x8F, 0x90, 0x9F, 0xA0)]
    for data in two + longer:
        try:
            data.decode("utf-8")
            strict = True
        except UnicodeError:
            strict = False
        assert cbor._utf8_strict(data) == strict, data.hex()


@pytest.mark.parametrize("data", [b"\x18\x05", b"\x19\x00\xff", b"\x1a\x00\x00\xff\xff",
                                  b"\x1b\x00\x00\x00\x00\xff\xff\xff\xff", b"\x58\x01\xff", b"\xd8\x10\x01"])
def test_an_argument_in_a_longer_form_than_it_needs_is_refused(data: bytes) -> None:
    e = _err(data)
    assert e.code == MALFORMED and e.offset == 0 and "shortest" in e.message
