"""The message catalogue: every message round-trips by name, and every way a
message can be wrong is a ProtocolError that names the problem."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import cbor, messages
from protocol.errors import MALFORMED, OVERSIZE, UNKNOWN_MESSAGE, ProtocolError
from tools.bench.message_sizes import NOW, samples

Specs = dict[str, tuple[Any, ...]]
CATALOGUE: dict[str, tuple[int, Specs]] = messages.CATALOGUE  # type: ignore[assignment]
RECORDS: dict[str, Specs] = messages.RECORDS  # type: ignore[assignment]
SAMPLES = samples()


def _err(fn: Any, *args: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as e:
        fn(*args)
    return e.value


def test_every_catalogue_message_has_a_sample() -> None:
    assert set(SAMPLES) == set(CATALOGUE)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_message_round_trips_by_name(name: str) -> None:
    data = messages.encode(name, SAMPLES[name], t=NOW)
    got_name, got = messages.decode(data)
    assert got_name == name
    assert got == dict(SAMPLES[name], t=NOW)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_wire_form_is_a_map_with_type_time_and_catalogue_keys(name: str) -> None:
    tid, specs = CATALOGUE[name]
    m = cbor2.loads(messages.encode(name, SAMPLES[name], t=NOW))
    assert m[0] == tid and m[1] == NOW
    keys = {spec[0] for spec in specs.values()}
    assert set(m) - {0, 1} <= keys
    assert all(k >= 2 for k in keys)


def test_type_ids_and_keys_are_unique_and_one_byte() -> None:
    ids = [tid for tid, _ in CATALOGUE.values()]
    assert len(ids) == len(set(ids)) and max(ids) < 24
    for specs in list(RECORDS.values()) + [s for _, s in CATALOGUE.values()]:
        keys = [spec[0] for spec in specs.values()]
        assert len(keys) == len(set(keys)) and max(keys) < 24
        assert all(spec[1] in messages.KINDS for spec in specs.values())


def test_encoding_is_deterministic_cbor() -> None:
    for name, fields in SAMPLES.items():
        data = messages.encode(name, fields, t=NOW)
        assert data == cbor2.dumps(cbor2.loads(data), canonical=True)


def test_time_may_come_in_the_fields() -> None:
    assert messages.encode("seal", {"t": NOW, "tracking_no": "VP1"}) == \
        messages.encode("seal", {"tracking_no": "VP1"}, t=NOW)


def test_optional_fields_may_be_absent_or_none() -> None:
    a = messages.encode("login_result", {"ok": False}, t=NOW)
    b = messages.encode("login_result", {"ok": False, "session": None, "reason": None}, t=NOW)
    assert a == b
    assert messages.decode(a) == ("login_result", {"t": NOW, "ok": False})


def test_parcels_in_a_route_decode_by_name() -> None:
    _, f = messages.decode(messages.encode("route", SAMPLES["route"], t=NOW))
    assert f["parcels"][0]["phone"].startswith("170******")
    assert set(f["parcels"][0]) == set(RECORDS["parcel"]) - {"case_until"}  # only a case's parcel has it


def test_a_parcel_opened_by_a_complaint_case_carries_case_until() -> None:
    route = {"route": "R-07", "parcels": [dict(SAMPLES["route"]["parcels"][0], case_until=NOW + 600)]}
    _, f = messages.decode(messages.encode("route", route, t=NOW))
    assert f["parcels"][0]["case_until"] == NOW + 600


def test_batch_unpacks_its_inner_messages_in_order() -> None:
    a = messages.encode("scan", SAMPLES["scan"], t=1)
    b = messages.encode("seal", {"tracking_no": "VP2"}, t=2)
    _, f = messages.decode(messages.encode("batch", {"items": [a, b]}, t=3))
    assert [n for n, _ in messages.unbatch(f)] == ["scan", "seal"]
    assert messages.unbatch(f)[1][1]["t"] == 2


def test_batch_inside_a_batch_is_refused() -> None:
    inner = messages.encode("batch", {"items": []}, t=1)
    _, f = messages.decode(messages.encode("batch", {"items": [inner]}, t=2))
    assert "itself a batch" in _err(messages.unbatch, f).message


def test_bad_batch_item_is_named() -> None:
    _, f = messages.decode(messages.encode("batch", {"items": [b"\xa1"]}, t=2))
    e = _err(messages.unbatch, f)
    assert e.code == MALFORMED and "batch item 0" in e.message


# --- bad input ---------------------------------------------------------

def test_unknown_type_id_is_unknown_message() -> None:
    e = _err(messages.decode, cbor.dumps({0: 99, 1: NOW}))
    assert e.code == UNKNOWN_MESSAGE and "99" in e.message


def test_unknown_message_name_is_unknown_message() -> None:
    assert _err(messages.encode, "teleport", {}, NOW).code == UNKNOWN_MESSAGE


@pytest.mark.parametrize("data, words", [
    (cbor.dumps([7, NOW]), "CBOR map"),
    (cbor.dumps({1: NOW}), "type"),
    (cbor.dumps({0: "scan", 1: NOW}), "type"),
    (cbor.dumps({0: 12, 2: "VP1"}), "'t'"),
    (cbor.dumps({0: 12, 1: -5, 2: "VP1"}), "seal.t must be uint"),
    (cbor.dumps({0: 12, 1: NOW}), "'tracking_no'"),
    (cbor.dumps({0: 12, 1: NOW, 2: b"VP1"}), "seal.tracking_no must be text"),
    (cbor.dumps({0: 12, 1: NOW, 2: "VP1", 9: 1}), "unknown key 9"),
    (cbor.dumps({0: 12, 1: NOW, 2: "VP1", "x": 1}), "non-integer key"),
    (cbor.dumps({0: 7, 1: NOW, 2: "VP1", 3: "not-bytes"}), "scan.session must be bytes"),
    (cbor.dumps({0: 8, 1: NOW, 2: 1, 3: "VP1", 4: [2, "x"], 5: 1, 6: b"s"}), "fields[1] must be a field id"),
    (cbor.dumps({0: 8, 1: NOW, 2: 1, 3: "VP1", 4: [4], 5: 1, 6: b"s"}), "fields[0] must be a field id"),
    (cbor.dumps({0: 8, 1: NOW, 2: 1, 3: "VP1", 4: [True], 5: 1, 6: b"s"}), "fields[0] must be a field id"),
    (cbor.dumps({0: 8, 1: NOW, 2: 1, 3: "VP1", 4: 2, 5: 1, 6: b"s"}), "fields must be list"),
    (cbor.dumps({0: 3, 1: NOW, 2: 1}), "ok must be bool"),
    (cbor.dumps({0: 6, 1: NOW, 2: "R", 3: [{0: "VP1", 1: "n", 2: "p"}]}), "parcels[0] is missing"),
    (cbor.dumps({0: 6, 1: NOW, 2: "R", 3: ["VP1"]}), "parcels[0] must be a CBOR map"),
    (cbor.dumps({0: 17, 1: NOW, 2: 1, 3: 1, 4: [1]}), "args must be map"),
    (cbor.dumps({0: True, 1: NOW}), "type"),
])
def test_malformed_message_names_the_field(data: bytes, words: str) -> None:
    e = _err(messages.decode, data)
    assert e.code == MALFORMED
    assert words in e.message


def test_bool_is_not_accepted_as_an_integer() -> None:
    e = _err(messages.decode, cbor.dumps({0: 21, 1: NOW, 2: True}))
    assert e.code == MALFORMED and "error.code" in e.message


@pytest.mark.parametrize("name, fields, words", [
    ("scan", {"tracking_no": "VP1"}, "missing required field 'session'"),
    ("scan", {"tracking_no": 5, "session": b"s"}, "scan.tracking_no must be text"),
    ("scan", {"tracking_no": "VP1", "session": b"s", "gps": "x"}, "no field 'gps'"),
    ("reveal_request", {"req": -1, "tracking_no": "VP1", "fields": [2], "reason": 1, "session": b"s"},
     "req must be uint"),
    ("route", {"route": "R", "parcels": [{"tracking_no": "VP1"}]}, "parcels[0] is missing"),
    ("batch", {"items": ["text"]}, "items[0] must be bytes"),
])
def test_encoding_refuses_bad_fields(name: str, fields: dict[str, Any], words: str) -> None:
    e = _err(messages.encode, name, fields, NOW)
    assert e.code == MALFORMED and words in e.message


def test_encoding_without_time_is_refused() -> None:
    assert "'t'" in _err(messages.encode, "seal", {"tracking_no": "VP1"}).message


def test_oversize_message_is_refused() -> None:
    data = messages.encode("error", {"code": 1, "detail": "x" * 20000}, t=NOW)
    assert _err(messages.decode, data).code == OVERSIZE
    assert messages.decode(data, max_size=30000)[0] == "error"


def test_truncated_message_names_the_offset() -> None:
    data = messages.encode("scan", SAMPLES["scan"], t=NOW)
    e = _err(messages.decode, data[:-3])
    assert e.code == MALFORMED and e.offset >= 0


def test_reason_and_denial_codes_are_data() -> None:
    assert messages.REASONS[1] == "recipient-not-reachable"
    assert messages.REASONS[4] == "access-code"
    assert all(isinstance(t, str) and t for t in messages.DENIALS.values())
    assert messages.FIELD_NAMES == {1: "name", 2: "phone", 3: "address"}


_VALUES = st.recursive(
    st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=12) | st.text(max_size=12) | st.booleans()
    | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(-2, 8) | st.text(max_size=3),
                                                               inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.integers(0, 25), st.dictionaries(st.integers(-2, 10), _VALUES, max_size=8))
def test_random_maps_decode_or_raise_protocol_error_only(tid: int, body: dict) -> None:
    body[0] = tid
    try:
        name, fields = messages.decode(cbor.dumps(body))
    except ProtocolError as e:
        assert e.code in (MALFORMED, UNKNOWN_MESSAGE)
        return
    # Whatever decodes re-encodes to exactly the same bytes.
    assert messages.encode(name, fields) == cbor.dumps(body)
