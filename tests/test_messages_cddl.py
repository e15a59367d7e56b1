"""protocol/messages.cddl and protocol/messages.py describe the same
catalogue. A small parser reads the CDDL subset the file uses (maps with
integer keys, optional `?` entries, uint/int/tstr/bstr/bool/any, `[* T]`,
`{* any => any}`, an integer range `a..b`, a `message = a / b` choice); encoded messages are then
validated against the CDDL rules themselves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cbor2
import pytest

from protocol import messages
from tools.bench.message_sizes import NOW, samples

Specs = dict[str, tuple[Any, ...]]
CATALOGUE: dict[str, tuple[int, Specs]] = messages.CATALOGUE  # type: ignore[assignment]
RECORDS: dict[str, Specs] = messages.RECORDS  # type: ignore[assignment]
CDDL = Path(messages.__file__).with_name("messages.cddl")
PRIMS = {"uint": "uint", "int": "int", "tstr": "text", "bstr": "bytes", "bool": "bool", "any": "any",
         "field_id": "field"}
ENTRY = re.compile(r"^(\?\s*)?(-?\d+)\s*:\s*(.+?)$")
LIST = re.compile(r"^\[\s*\*\s*(\w+)\s*\]$")
ANYMAP = re.compile(r"^\{\s*\*\s*any\s*=>\s*any\s*\}$")

Entry = tuple[str, bool, Any]  # kind, required, item (kind, record name, literal or None)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split(";", 1)[0] for line in text.splitlines())


def _type(t: str) -> tuple[str, Any]:
    t = t.strip()
    if t in PRIMS:
        return PRIMS[t], None
    if t.isdigit():
        return "literal", int(t)
    if ANYMAP.match(t):
        return "map", None
    m = LIST.match(t)
    if m:
        inner = m.group(1)
        return "list", PRIMS.get(inner, inner)
    raise ValueError("CDDL type outside the supported subset: " + t)


def _split_entries(body: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for c in body:
        depth += c in "{["
        depth -= c in "}]"
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return [e.strip() for e in out if e.strip()]


def parse_cddl(text: str) -> tuple[list[str], dict[str, dict[int, Entry]], dict[str, range]]:
    """(names in the `message` choice, {rule: {key: (kind, required, item)}},
    {rule: range} for integer range rules)."""
    text = _strip_comments(text)
    starts = list(re.finditer(r"^([a-z_][a-z0-9_]*)\s*=", text, re.M))
    choice: list[str] = []
    rules: dict[str, dict[int, Entry]] = {}
    ranges: dict[str, range] = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        rhs = text[m.end():end].strip()
        if rhs.startswith("{"):
            assert rhs.endswith("}"), m.group(1)
            entries: dict[int, Entry] = {}
            for e in _split_entries(rhs[1:-1]):
                em = ENTRY.match(e)
                assert em, "unparsed CDDL entry in " + m.group(1) + ": " + e
                key = int(em.group(2))
                assert key not in entries, "duplicate key %d in %s" % (key, m.group(1))
                kind, item = _type(em.group(3))
                entries[key] = (kind, not em.group(1), item)
            rules[m.group(1)] = entries
        elif re.fullmatch(r"\d+\.\.\d+", rhs):
            lo, hi = rhs.split("..")
            ranges[m.group(1)] = range(int(lo), int(hi) + 1)
        else:
            assert m.group(1) == "message", "unexpected rule " + m.group(1)
            choice = [n.strip() for n in rhs.split("/")]
    return choice, rules, ranges


CHOICE, RULES, RANGES = parse_cddl(CDDL.read_text(encoding="utf-8"))


def _from_catalogue(specs: dict[str, tuple]) -> dict[int, Entry]:
    out: dict[int, Entry] = {}
    for spec in specs.values():
        out[spec[0]] = (spec[1], spec[2], spec[3] if len(spec) > 3 else None)
    return out


def test_every_catalogue_message_is_in_the_cddl_choice() -> None:
    assert sorted(CHOICE) == sorted(CATALOGUE)


def test_cddl_has_no_rule_the_catalogue_lacks() -> None:
    assert set(RULES) == set(CATALOGUE) | set(RECORDS)
    assert set(RANGES) == {"field_id"}


def test_cddl_field_ids_are_the_catalogue_field_ids() -> None:
    assert list(RANGES["field_id"]) == sorted(messages.FIELD_NAMES)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_cddl_message_agrees_with_the_catalogue(name: str) -> None:
    tid, specs = CATALOGUE[name]
    rule = dict(RULES[name])
    assert rule.pop(0) == ("literal", True, tid)
    assert rule.pop(1) == ("uint", True, None)
    assert rule == _from_catalogue(specs)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_cddl_record_agrees_with_the_catalogue(name: str) -> None:
    assert RULES[name] == _from_catalogue(RECORDS[name])


def _valid(kind: str, item: Any, v: Any) -> bool:
    if kind == "literal":
        return v == item and not isinstance(v, bool)
    if kind in ("uint", "int"):
        return isinstance(v, int) and not isinstance(v, bool) and (kind == "int" or v >= 0)
    if kind == "text":
        return isinstance(v, str)
    if kind == "bytes":
        return isinstance(v, bytes)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "map":
        return isinstance(v, dict)
    if kind == "field":
        return isinstance(v, int) and not isinstance(v, bool) and v in RANGES["field_id"]
    if kind == "list":
        if not isinstance(v, list):
            return False
        if item in RULES:
            return all(_matches(RULES[item], x) for x in v)
        return all(_valid(item, None, x) for x in v)
    return kind == "any"


def _matches(rule: dict[int, Entry], m: Any) -> bool:
    if not isinstance(m, dict) or not set(m) <= set(rule):
        return False
    for key, (kind, required, item) in rule.items():
        if key not in m:
            if required:
                return False
        elif not _valid(kind, item, m[key]):
            return False
    return True


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_encoded_message_validates_against_its_cddl_rule(name: str) -> None:
    m = cbor2.loads(messages.encode(name, samples()[name], t=NOW))
    assert _matches(RULES[name], m)
    others = [n for n in CHOICE if n != name and _matches(RULES[n], m)]
    assert others == []


def test_validator_rejects_a_message_the_cddl_forbids() -> None:
    m = cbor2.loads(messages.encode("scan", samples()["scan"], t=NOW))
    m[3] = "session as text"
    assert not _matches(RULES["scan"], m)
    g = cbor2.loads(messages.encode("reveal_grant", samples()["reveal_grant"], t=NOW))
    g[6] = [4]
    assert not _matches(RULES["reveal_grant"], g)
