"""One manifest row checked cell by cell: what a cell must be, and phone
numbers as people write them ("(021)66667777", "021-6666 7777 ext 12",
"+86 170 0000 1234") turned into one normal form before masking.

Every check returns problems as (column, message) instead of raising, so
a file is reported whole: every bad row, every bad cell."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from protocol import masking

REQUIRED = (
    "tracking_no", "route_id", "courier_id", "receiver_name", "receiver_phone", "receiver_address",
    "sender_name", "sender_phone", "sender_address", "delivery_window_start", "delivery_window_end",
)
OPTIONAL = ("sort_code", "receiver_email")  # the e-mail is only for an incident's notice
TRACKING_NO = re.compile(r"[A-Z0-9]{6,32}\Z")
ROUTE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
SORT_CODE = re.compile(r"[A-Za-z0-9_-]{1,16}\Z")
MAX_TEXT = 200
EMAIL = re.compile(r"[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+\Z")

# "ext 12", "ext. 12", "x12", "#12", "转12", "分机12" at the end of a phone number.
_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x|#|转|分机)\s*(\d{1,6})\s*\Z", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"\+?[0-9 ().-]+\Z")
_FULLWIDTH = str.maketrans("０１２３４５６７８９＋（）－　", "0123456789+()- ")


class PhoneError(ValueError):
    pass


def normalise_phone(text: str) -> str:
    """One written form for a phone number: a mobile as 11 digits, a landline
    as AREA-NUMBER, +86 and 0086 dropped, another country as +CC then its
    digits, an extension as " ext N". PhoneError says what is wrong."""
    raw = text.strip().translate(_FULLWIDTH)
    extension = ""
    m = _EXTENSION.search(raw)
    if m:
        extension, raw = m.group(1), raw[: m.start()].strip()
    if not raw or not _PHONE_CHARS.match(raw):
        raise PhoneError("not a phone number (digits, spaces, hyphens, parentheses, a leading +,"
                         " an extension as 'ext 12')")
    if raw.count("(") != raw.count(")"):
        raise PhoneError("unbalanced parentheses")
    digits = re.sub(r"\D", "", raw)
    international = raw.startswith("+") or digits.startswith("00")
    if international:
        digits = digits[2:] if digits.startswith("00") else digits
        if digits.startswith("86"):
            digits, international = digits[2:], False
            if digits[:1] not in ("0", "1") and len(digits) in (10, 11):
                digits = "0" + digits  # +86 21 6666 7777: the area code is written without its 0
    if international:
        if not 8 <= len(digits) <= 15:
            raise PhoneError("an international number has 8-15 digits, not %d" % len(digits))
        number = "+" + digits
    elif len(digits) == 11 and digits[0] == "1":
        number = digits
    elif digits.startswith("0") and 10 <= len(digits) <= 12:
        area = 3 if digits[1] in "12" else 4
        number = digits[:area] + "-" + digits[area:]
    elif 7 <= len(digits) <= 8 and not digits.startswith("0"):
        number = digits  # a local landline without its area code
    else:
        raise PhoneError("%d digits is neither a mobile (11), a landline with its area code (10-12)"
                         " nor a local number (7-8)" % len(digits))
    number += " ext " + extension if extension else ""
    if not masking.check_compliant("phone", masking.mask_phone(number)):
        raise PhoneError("cannot be masked as GB/T 41833 asks")
    return number


def text_cell(value: str) -> tuple[str, str | None]:
    value = value.strip()
    if not value:
        return value, "empty"
    if len(value) > MAX_TEXT:
        return value, "%d characters, at most %d" % (len(value), MAX_TEXT)
    if not value.isprintable():
        return value, "contains control characters"
    return value, None


def time_cell(text: str, zone: tzinfo) -> tuple[float, str | None]:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return 0.0, "%r is not an ISO 8601 time" % text[:40]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp(), None


def derive_sort_code(route_id: str) -> str:
    return "".join(c for c in route_id if c.isalnum()).upper()[-6:]


@dataclass
class Parcel:
    """A row that passed every check, ready to store."""

    tracking_no: str
    route_id: str
    courier_id: str
    sort_code: str
    window: tuple[float, float]
    values: dict[int, str]  # vault field id -> plaintext


PERSON_COLUMNS = ("receiver_name", "receiver_address", "sender_name", "sender_address")
PHONE_COLUMNS = ("receiver_phone", "sender_phone")


Cells = list[tuple[str, str]]  # (column, what is wrong)


def check_row(record: dict[str, str], zone: tzinfo, field_ids: dict[str, int]) -> tuple[Parcel | None, Cells]:
    """The row's own checks (no database): a Parcel, or what is wrong, by column."""
    problems: Cells = []
    tracking_no = record["tracking_no"].strip()
    if not TRACKING_NO.match(tracking_no):
        problems.append(("tracking_no", "%r is not 6-32 of A-Z 0-9" % tracking_no[:40]))
    route_id = record["route_id"].strip()
    if not ROUTE_ID.match(route_id):
        problems.append(("route_id", "%r is not 1-32 of A-Z a-z 0-9 _ -" % route_id[:40]))
    courier_id = record["courier_id"].strip()
    values: dict[int, str] = {}
    for col in PERSON_COLUMNS:
        value, problem = text_cell(record[col])
        if problem:
            problems.append((col, problem))
        values[field_ids[col]] = value
    for col in PHONE_COLUMNS:
        try:
            values[field_ids[col]] = normalise_phone(record[col])
        except PhoneError as e:
            problems.append((col, str(e)))
    email = (record.get("receiver_email") or "").strip()
    if email:
        if len(email) > 254 or not EMAIL.match(email):
            problems.append(("receiver_email", "not an e-mail address (name@domain)"))
        else:
            values[field_ids["receiver_email"]] = email
    start, bad_start = time_cell(record["delivery_window_start"], zone)
    end, bad_end = time_cell(record["delivery_window_end"], zone)
    if bad_start:
        problems.append(("delivery_window_start", bad_start))
    if bad_end:
        problems.append(("delivery_window_end", bad_end))
    if not (bad_start or bad_end) and end <= start:
        problems.append(("delivery_window_end", "ends before it starts"))
    sort_code = (record.get("sort_code") or "").strip() or derive_sort_code(route_id)
    if not SORT_CODE.match(sort_code):
        problems.append(("sort_code", "%r is not 1-16 of A-Z a-z 0-9 _ -" % sort_code[:40]))
    if problems:
        return None, problems
    return Parcel(tracking_no, route_id, courier_id, sort_code, (start, end), values), []
