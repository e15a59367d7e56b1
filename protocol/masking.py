# The one masking rule set: what a label, a route manifest, a log line or a
# handheld screen shows of a receiver's name, phone and address. The default
# profile follows GB/T 41833-2022 (express electronic waybills): at least one
# character of the name hidden, at least six digits of the phone hidden, and
# the unit/room part of the address hidden. Profiles are data (dicts, or JSON
# via load_profile); a profile may be stricter than the standard, never looser.
#
# Latin-script names keep each word's initial ("Testy McTestface" ->
# "T**** M*********"): like a CJK surname, an initial lets the courier greet
# the right person at the door, while every other letter is hidden.

import json

from . import messages

MASK = "*"

# Two-character surnames, in traditional and simplified forms. Data: extend
# it rather than special-casing names in code.
COMPOUND_SURNAMES = (
    "歐陽", "欧阳", "司馬", "司马", "諸葛", "诸葛", "上官", "東方", "东方", "皇甫",
    "尉遲", "尉迟", "公孫", "公孙", "慕容", "長孫", "长孙", "宇文", "司徒", "司空",
    "夏侯", "軒轅", "轩辕", "令狐", "端木", "澹臺", "澹台", "獨孤", "独孤", "南宮",
    "南宫", "万俟", "聞人", "闻人", "西門", "西门", "申屠", "太史", "鍾離", "钟离",
    "呼延", "納蘭", "纳兰", "拓跋", "公冶", "赫連", "赫连", "濮陽", "濮阳", "淳于",
    "單于", "单于", "百里", "東郭", "东郭", "左丘", "宗政", "巫馬", "巫马", "公羊",
)

PROFILES = {
    "default": {
        "mask": MASK,
        # keep: "surname" (compound surnames kept whole) or "first" character.
        # fixed_stars: 0 = one mask per hidden character; n = always n masks.
        "name": {"keep": "surname", "latin_keep": "initials", "fixed_stars": 0, "min_hidden": 1},
        "phone": {"mobile_head": 3, "mobile_tail": 2, "landline_tail": 2, "keep_area_code": True,
                  "min_hidden": 6},
        # hide_all_numbers: also the street number, not only the unit/room part.
        "address": {"hide_all_numbers": False},
    },
    "strict": {
        "mask": MASK,
        "name": {"keep": "first", "latin_keep": "first", "fixed_stars": 2, "min_hidden": 1},
        "phone": {"mobile_head": 0, "mobile_tail": 4, "landline_tail": 0, "keep_area_code": True,
                  "min_hidden": 7},
        "address": {"hide_all_numbers": True},
    },
}

# The floor every profile must respect (GB/T 41833-2022).
_FLOOR = {"name": 1, "phone": 6}

# Address unit markers that follow their number (3棟, 2单元, 12樓, 502室).
UNIT_SUFFIXES = (
    "單元", "单元", "號樓", "号楼", "號房", "号房", "棟", "栋", "幢", "座", "樓", "楼",
    "層", "层", "室", "戶", "户", "房",
)
# Latin words that precede a unit number (Flat 5, Room 1203, Apt 4B).
UNIT_WORDS = (
    "flat", "room", "rm", "unit", "apt", "apartment", "suite", "ste", "floor", "fl",
    "level", "lvl", "block", "blk", "building", "bldg", "tower",
)
_ORDINALS = ("st", "nd", "rd", "th")
_CN_NUMERALS = "零〇一二三四五六七八九十百两"
_NAME_SEPARATORS = " ·・-'.\u3000"


def load_profile(text):
    """A profile from JSON text, checked by make_profile."""
    return make_profile(json.loads(text))


def make_profile(overrides):
    """The default profile with `overrides` ({"name": {...}, ...}) applied.
    Raises ValueError for unknown keys, wrong types or a looser-than-standard
    setting."""
    base = PROFILES["default"]
    out = {"mask": base["mask"]}
    for part in ("name", "phone", "address"):
        out[part] = dict(base[part])
    for part in overrides:
        if part == "mask":
            m = overrides["mask"]
            if not isinstance(m, str) or len(m) != 1 or ("0" <= m <= "9"):
                raise ValueError("profile mask must be one non-digit character")
            out["mask"] = m
            continue
        if part not in out or not isinstance(overrides[part], dict):
            raise ValueError("unknown profile section " + repr(part))
        for key in overrides[part]:
            if key not in out[part]:
                raise ValueError("unknown profile setting " + part + "." + str(key))
            v = overrides[part][key]
            if type(v) is not type(out[part][key]) or (isinstance(v, int) and v < 0):
                raise ValueError("profile setting " + part + "." + key + " has a wrong value")
            out[part][key] = v
    if out["name"]["keep"] not in ("surname", "first"):
        raise ValueError("name.keep must be 'surname' or 'first'")
    if out["name"]["latin_keep"] not in ("initials", "first"):
        raise ValueError("name.latin_keep must be 'initials' or 'first'")
    for part in _FLOOR:
        if out[part]["min_hidden"] < _FLOOR[part]:
            raise ValueError(part + ".min_hidden below GB/T 41833-2022 (" + str(_FLOOR[part]) + ")")
    return out


def _profile(profile):
    if profile is None:
        return PROFILES["default"]
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError("no masking profile named " + repr(profile))
        return PROFILES[profile]
    return profile


def _is_cjk(c):
    o = ord(c)
    return (0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF
            or 0xAC00 <= o <= 0xD7AF or 0x3040 <= o <= 0x30FF)


def _ascii_digit(c):
    return "0" <= c <= "9"


def _digit(c):
    return "0" <= c <= "9" or "０" <= c <= "９"


def _ascii_letter(c):
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


# --- names ---------------------------------------------------------------

def mask_name(s, profile=None):
    """"測試甲" -> "測**", "歐陽測試" -> "歐陽**", "Testy McTestface" ->
    "T**** M*********". At least `min_hidden` characters are always hidden."""
    p = _profile(profile)
    mask = p["mask"]
    rule = p["name"]
    cs = list(s.strip())
    if not cs:
        return ""
    letters = [i for i in range(len(cs)) if cs[i] not in _NAME_SEPARATORS]
    keep = {}
    cjk = False
    for c in cs:
        if _is_cjk(c):
            cjk = True
            break
    if cjk:
        n = 1
        if rule["keep"] == "surname":
            head = "".join(cs[:2])
            if head in COMPOUND_SURNAMES:
                n = 2
        for i in letters[:n]:
            keep[i] = True
    else:
        start = True
        for i in range(len(cs)):
            if cs[i] in _NAME_SEPARATORS:
                start = True
            elif start:
                if rule["latin_keep"] == "initials" or not keep:
                    keep[i] = True
                start = False
    # Too short to hide enough: give up kept characters from the end.
    kept = [i for i in letters if i in keep]
    while kept and len(letters) - len(kept) < rule["min_hidden"]:
        del keep[kept.pop()]
    if rule["fixed_stars"]:
        return "".join([cs[i] for i in letters if i in keep]) + mask * rule["fixed_stars"]
    out = []
    for i in range(len(cs)):
        c = cs[i]
        out.append(c if (i in keep or c in _NAME_SEPARATORS) else mask)
    return "".join(out)


# --- phones --------------------------------------------------------------

def _national_start(ds, s):
    # Digits of a +86 / 0086 / 86 prefix to keep visible as they are.
    if s.lstrip().startswith("+"):
        return 2 if ds.startswith("86") else 0
    if ds.startswith("0086"):
        return 4
    if len(ds) == 13 and ds.startswith("861"):
        return 2
    return 0


def mask_phone(s, profile=None):
    """"17000001234" -> "170******34", "010-12345678" -> "010-******78",
    "+86 170 0000 1234" -> "+86 170 **** **34". Separators are kept."""
    p = _profile(profile)
    rule = p["phone"]
    cs = []
    for c in s.strip():
        if "０" <= c <= "９":
            c = chr(ord(c) - 0xFF10 + 0x30)
        elif c == "＋":
            c = "+"
        cs.append(c)
    pos = [i for i in range(len(cs)) if _ascii_digit(cs[i])]
    ds = "".join([cs[i] for i in pos])
    start = _national_start(ds, "".join(cs))
    nat = ds[start:]
    if len(nat) == 11 and nat[0] == "1":
        first, head, tail = start, rule["mobile_head"], rule["mobile_tail"]
    elif len(nat) >= 10 and nat[0] == "0":
        area = 3 if nat[1] in "12" else 4
        if rule["keep_area_code"]:
            first, head, tail = start + area, 0, rule["landline_tail"]
        else:
            first, head, tail = start, 0, rule["landline_tail"]
    else:
        first, head, tail = start, 0, rule["mobile_tail"]
    n = len(ds) - first
    need = rule["min_hidden"]
    while n - head - tail < need and (head or tail):
        if head:
            head -= 1
        else:
            tail -= 1
    hidden = list(range(first + head, len(ds) - tail))
    # Fewer digits than the rule hides: take the area code / prefix too.
    j = first - 1
    while len(hidden) < need and j >= 0:
        hidden.append(j)
        j -= 1
    for k in hidden:
        cs[pos[k]] = p["mask"]
    return "".join(cs)


# --- addresses -----------------------------------------------------------

def _run_char(c, mask):
    return _digit(c) or _ascii_letter(c) or c == mask or c == "-" or c in _CN_NUMERALS


def _ends_with_marker(cs, b):
    # True if the text just before index b (spaces skipped) is a unit marker.
    while b > 0 and cs[b - 1] == " ":
        b -= 1
    for m in UNIT_SUFFIXES:
        if b >= len(m) and "".join(cs[b - len(m):b]) == m:
            return True
    return False


def _starts_with_marker(cs, b):
    for m in UNIT_SUFFIXES:
        if "".join(cs[b:b + len(m)]) == m:
            return True
    return False


def _word_before(cs, a):
    # The Latin word before index a, skipping " .#:" and a "No.".
    for _ in range(2):
        while a > 0 and cs[a - 1] in " .#:":
            a -= 1
        e = a
        while a > 0 and _ascii_letter(cs[a - 1]):
            a -= 1
        w = "".join(cs[a:e]).lower()
        if w != "no":
            return w
    return ""


def _runs(cs, mask):
    out = []
    i = 0
    while i < len(cs):
        if _run_char(cs[i], mask) and cs[i] != "-":
            a = i
            while i < len(cs) and _run_char(cs[i], mask):
                i += 1
            b = i
            while b > a and cs[b - 1] == "-":
                b -= 1
            out.append((a, b))
        else:
            i += 1
    return out


def _unit_positions(cs, mask):
    # Positions of unit/room characters (3棟502室, Flat 5, 12/F, #12-34, 3-502),
    # and of every run that holds a number, for the fallback.
    units = []
    numbered = []
    for a, b in _runs(cs, mask):
        run = cs[a:b]
        body = [i for i in range(a, b) if cs[i] != "-"]
        has_digit = False
        for c in run:
            if _digit(c) or c == mask:
                has_digit = True
        if not has_digit:
            # 三單元, A座, Room A; never a plain word or a place name (三里屯).
            if _starts_with_marker(cs, b) or (len(run) <= 2 and _ascii_letter(run[0])
                                              and _word_before(cs, a) in UNIT_WORDS):
                units.append(body)
            continue
        numbered.append(body)
        low = "".join(run).lower()
        follow = "".join(cs[b:b + 8]).lower().lstrip()
        latin = _ascii_letter(run[0]) or _digit(run[0]) or run[0] == mask
        if _starts_with_marker(cs, b) or _ends_with_marker(cs, a):
            units.append(body)
        elif b < len(cs) and cs[b] == "/" and "".join(cs[b + 1:b + 2]) in ("F", "f"):
            units.append(body)
        elif len(low) > 1 and low[-1] == "f" and (_digit(run[-2]) or run[-2] == mask):
            units.append(body[:-1])
        elif len(low) > 2 and low[-2:] in _ORDINALS and (follow.startswith("floor")
                                                         or follow.startswith("fl")):
            units.append(body[:-2])
        elif latin and (a > 0 and cs[a - 1] == "#" or _word_before(cs, a) in UNIT_WORDS):
            units.append(body)
        elif "-" in run:
            units.append(body)
    return units, numbered


def mask_address(s, profile=None):
    """Hides the unit/room part: "測試市測試區樣例路1號 3棟502室" ->
    "測試市測試區樣例路1號 *棟***室", "1 Test Road, Flat 5" -> "1 Test Road, Flat *".
    An address with no unit part has its last number (the door) hidden."""
    p = _profile(profile)
    mask = p["mask"]
    cs = list(s)
    units, numbered = _unit_positions(cs, mask)
    hide = []
    for u in units:
        hide.extend(u)
    if p["address"]["hide_all_numbers"]:
        for u in numbered:
            hide.extend(u)
    elif not units and numbered:
        hide.extend(numbered[-1])
    for i in hide:
        cs[i] = mask
    return "".join(cs)


# --- fields and compliance ----------------------------------------------

_MASKERS = {"name": mask_name, "phone": mask_phone, "address": mask_address}


def _field_name(field):
    if field in messages.FIELD_NAMES:
        return messages.FIELD_NAMES[field]
    if field in _MASKERS:
        return field
    raise ValueError("no personal field " + repr(field))


def mask_field(field, value, profile=None):
    """Mask one personal field, by id (1 name, 2 phone, 3 address) or name."""
    return _MASKERS[_field_name(field)](value, profile)


def mask_parcel(parcel, profile=None):
    """A copy of `parcel` with its "name", "phone" and "address" masked."""
    out = dict(parcel)
    for f in _MASKERS:
        if f in out and isinstance(out[f], str):
            out[f] = _MASKERS[f](out[f], profile)
    return out


def check_compliant(field, masked, profile=None):
    """True if `masked` hides what the profile demands: a name with a hidden
    character, a phone with at least min_hidden digits hidden ("138****5678"
    is not compliant), an address with no unit/room number visible."""
    p = _profile(profile)
    mask = p["mask"]
    f = _field_name(field)
    hidden = masked.count(mask)
    if f == "name":
        return hidden >= p["name"]["min_hidden"]
    if f == "phone":
        # A number shorter than min_hidden digits complies only fully hidden.
        visible = 0
        for c in masked:
            if _digit(c):
                visible += 1
        return hidden >= p["phone"]["min_hidden"] or (hidden > 0 and visible == 0)
    cs = list(masked)
    units, numbered = _unit_positions(cs, mask)
    for u in units:
        for i in u:
            if cs[i] != mask:
                return False
    if p["address"]["hide_all_numbers"]:
        for c in cs:
            if _digit(c):
                return False
    return hidden > 0 or not numbered
