"""The masking rules: GB/T 41833-2022 by default, a stricter profile, profiles
as data, and a compliance check that catches 138****5678-style masking."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import masking
from protocol.masking import check_compliant, mask_address, mask_field, mask_name, mask_parcel, mask_phone

PROFILES = ["default", "strict"]


@pytest.mark.parametrize("name, masked", [
    ("測試甲", "測**"),
    ("測試", "測*"),
    ("測", "*"),
    ("歐陽測試", "歐陽**"),
    ("欧阳测试", "欧阳**"),
    ("司馬甲", "司馬*"),
    ("諸葛測試乙", "諸葛***"),
    ("諸葛", "諸*"),  # a compound surname alone still hides a character
    ("測試 收件人", "測* ***"),
    ("Testy McTestface", "T**** M*********"),
    ("A B", "A *"),
    ("O'Test", "O'T***"),
])
def test_default_name_masking(name: str, masked: str) -> None:
    assert mask_name(name) == masked
    assert check_compliant("name", masked)


@pytest.mark.parametrize("name, masked", [
    ("測試甲", "測**"),
    ("歐陽測試", "歐**"),
    ("測", "**"),
    ("Testy McTestface", "T**"),
])
def test_strict_name_masking_hides_length_and_compound_surnames(name: str, masked: str) -> None:
    assert mask_name(name, "strict") == masked


def test_compound_surnames_are_data() -> None:
    assert "諸葛" in masking.COMPOUND_SURNAMES and "司马" in masking.COMPOUND_SURNAMES


@pytest.mark.parametrize("phone, masked", [
    ("17000001234", "170******34"),
    ("170-0000-1234", "170-****-**34"),
    ("+86 170 0000 1234", "+86 170 **** **34"),
    ("+8617000001234", "+86170******34"),
    ("008617000001234", "0086170******34"),
    ("010-12345678", "010-******78"),
    ("0755-1234567", "0755-******7"),
    ("(0755)12345678", "(0755)******78"),
    ("12345678", "******78"),
    ("12345", "*****"),
    ("０１０－１２３４５６７８", "010－******78"),
])
def test_default_phone_masking_hides_at_least_six_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
    assert check_compliant("phone", masked)


def test_strict_phone_keeps_only_the_last_four_digits() -> None:
    assert mask_phone("17000001234", "strict") == "*******1234"
    assert mask_phone("0755-1234567", "strict") == "0755-*******"


@pytest.mark.parametrize("masked", ["138****5678", "170****1234", "17000001234", "170*****234", ""])
def test_four_hidden_digits_are_not_compliant(masked: str) -> None:
    assert not check_compliant("phone", masked)
    assert not check_compliant(2, masked)


@pytest.mark.parametrize("address, masked", [
    ("測試市測試區樣例路1號 3棟502室", "測試市測試區樣例路1號 *棟***室"),
    ("測試市測試區樣例路1號3棟2单元501", "測試市測試區樣例路1號*棟*单元***"),
    ("測試市樣例路88號12樓", "測試市樣例路88號**樓"),
    ("测试市样例路1号3-502", "测试市样例路1号*-***"),
    ("測試市樣例路1號A座1203室", "測試市樣例路1號*座****室"),
    ("測試路1號 十二樓 三單元", "測試路1號 **樓 *單元"),
    ("測試村18號", "測試村**號"),  # no unit part: the door number is hidden
    ("Flat 5, 1 Test Road, Testville", "Flat *, 1 Test Road, Testville"),
    ("Room 1203, Test Tower", "Room ****, Test Tower"),
    ("Flat A, 12/F, Test Building", "Flat *, **/F, Test Building"),
    ("3rd Floor, 1 Test St", "*rd Floor, 1 Test St"),
    ("#12-34 Test Ave", "#**-** Test Ave"),
    ("Apt 4B, 10 Test St", "Apt **, 10 Test St"),
])
def test_default_address_masking_hides_the_unit_and_room(address: str, masked: str) -> None:
    assert mask_address(address) == masked
    assert check_compliant("address", masked)
    assert not check_compliant("address", address)


def test_place_names_with_numerals_are_left_alone() -> None:
    assert mask_address("測試市三里屯路") == "測試市三里屯路"
    assert check_compliant(3, "測試市三里屯路")


def test_strict_address_hides_every_number() -> None:
    assert mask_address("測試市測試區樣例路1號 3棟502室", "strict") == "測試市測試區樣例路*號 *棟***室"
    assert not check_compliant(3, "測試市測試區樣例路1號 *棟***室", "strict")


def test_mask_field_dispatches_by_id_or_name() -> None:
    assert mask_field(1, "測試甲") == mask_field("name", "測試甲") == "測**"
    assert mask_field(2, "17000001234") == "170******34"
    assert mask_field(3, "樣例路1號 3棟502室") == "樣例路1號 *棟***室"
    with pytest.raises(ValueError):
        mask_field(4, "x")


def test_mask_parcel_masks_personal_fields_and_keeps_the_rest() -> None:
    parcel = {"tracking_no": "VP1", "name": "測試甲", "phone": "17000001234",
              "address": "測試市測試區樣例路1號 3棟502室", "sort_code": "A-07"}
    out = mask_parcel(parcel)
    assert out == {"tracking_no": "VP1", "name": "測**", "phone": "170******34",
                   "address": "測試市測試區樣例路1號 *棟***室", "sort_code": "A-07"}
    assert parcel["phone"] == "17000001234"  # the input is not changed


def test_profiles_load_from_json_and_apply() -> None:
    p = masking.load_profile(json.dumps({"mask": "#", "phone": {"mobile_tail": 4, "mobile_head": 0}}))
    assert mask_phone("17000001234", p) == "#######1234"
    assert check_compliant("phone", "#######1234", p)
    assert mask_name("測試甲", p) == "測##"


@pytest.mark.parametrize("overrides", [
    {"phone": {"min_hidden": 4}},  # looser than the standard
    {"name": {"min_hidden": 0}},
    {"phone": {"colour": 1}},
    {"telepathy": {}},
    {"name": {"keep": "everything"}},
    {"name": {"fixed_stars": -1}},
    {"mask": "7"},
    {"phone": {"mobile_head": "3"}},
])
def test_bad_or_looser_than_standard_profiles_are_refused(overrides: dict) -> None:
    with pytest.raises(ValueError):
        masking.make_profile(overrides)


def test_unknown_profile_name_is_refused() -> None:
    with pytest.raises(ValueError):
        mask_name("測試甲", "lenient")


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=99_999_999), st.sampled_from(["", "+86 ", "0086", "86"]),
       st.sampled_from(PROFILES))
def test_every_masked_170_phone_is_compliant(n: int, prefix: str, profile: str) -> None:
    phone = prefix + "170" + "%08d" % n
    masked = mask_phone(phone, profile)
    assert check_compliant("phone", masked, profile)
    assert len(masked) == len(phone)
    assert masked.count("*") >= 6


@settings(max_examples=300)
@given(st.text(alphabet="測試甲乙丙丁歐陽司馬諸葛 ·", min_size=1, max_size=8)
       | st.text(alphabet="TestyMcfaceAB '-", min_size=1, max_size=20),
       st.sampled_from(PROFILES))
def test_every_masked_name_hides_a_character(name: str, profile: str) -> None:
    masked = mask_name(name, profile)
    if any(c not in " ·'-." for c in name.strip()):
        assert check_compliant("name", masked, profile)
        assert masked != name.strip()


@settings(max_examples=300)
@given(st.integers(1, 999), st.integers(1, 30), st.integers(1, 9), st.integers(1, 40), st.integers(1, 20),
       st.sampled_from(["棟", "栋", "座", "號樓"]), st.sampled_from(["室", "房", ""]),
       st.sampled_from(PROFILES))
def test_every_masked_cjk_address_is_compliant(road: int, bld: int, unit: int, floor: int, room: int,
                                                 bmark: str, rmark: str, profile: str) -> None:
    address = "測試市測試區樣例路%d號 %d%s%d单元%d%02d%s" % (road, bld, bmark, unit, floor, room, rmark)
    masked = mask_address(address, profile)
    assert check_compliant("address", masked, profile)
    assert not check_compliant("address", address, profile)
    assert "樣例路" in masked and "单元" in masked


@settings(max_examples=500)
@given(st.text(max_size=40), st.sampled_from(PROFILES))
def test_any_text_masks_without_error_and_never_grows_a_phone(s: str, profile: str) -> None:
    for field in (1, 2, 3):
        masked = mask_field(field, s, profile)
        assert isinstance(masked, str)
        check_compliant(field, masked, profile)
    assert len(mask_phone(s, profile)) == len(s.strip())


@settings(max_examples=300)
@given(st.text(alphabet="0123456789 -+()", min_size=1, max_size=20), st.sampled_from(PROFILES))
def test_every_masked_digit_string_is_compliant(s: str, profile: str) -> None:
    masked = mask_phone(s, profile)
    if any(c.isdigit() for c in s):
        assert check_compliant("phone", masked, profile)
