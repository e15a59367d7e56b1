"""The handheld's screens and its state table, on CPython: every denial and
error code has a text in every language, no screen mixes English into
zh-Hans or zh-Hant, the field picker names its choices, and the table in
firmware/states.py names only states and App methods that exist (the only
place App.state changes; batch.py, commands.py and screen.py write none of
App's fields)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from firmware import i18n, states
from firmware.app import App
from firmware.hal.host.memory import MemoryHAL
from protocol import errors, labels, messages, session, topics

REPO = Path(__file__).resolve().parents[1]
MASTER = bytes(range(32))
DEVICE = "hh-screen-1"
T0 = 1_800_000_000
ENGLISH = re.compile("[A-Za-z]{3,}")   # tracking numbers, routes and keys have at most two letters in a row
PARCELS = [{"tracking_no": "VP0001", "name": "測*", "phone": "170******34",
            "address": "測試市測試區樣例路1號 *棟***室", "sort_code": "A-07"},
           {"tracking_no": "VP0002", "name": "測**", "phone": "170******78",
            "address": "測試市測試區樣例路2號 *棟***室", "sort_code": "B-01"}]


def qr(tracking_no: str) -> str:
    return labels.to_text(labels.assemble(b"label-k1", tracking_no, 1, T0, bytes(8)))


def test_every_denial_code_has_a_text_in_every_language() -> None:
    for lang in i18n.LANGS:
        assert set(i18n.catalog(lang).DENIALS) == set(messages.DENIALS), lang
    for code, english in messages.DENIALS.items():
        assert i18n.denial("en", code) == english
        for lang in ("zh-Hans", "zh-Hant"):
            text = i18n.denial(lang, code)
            assert text and not ENGLISH.search(text), (lang, code, text)
    assert i18n.denial("zh-Hans", 99) == "代码 99"      # a code newer than the firmware still says something


def test_every_error_code_has_a_text_in_every_language() -> None:
    for lang in i18n.LANGS:
        assert set(i18n.catalog(lang).ERRORS) == set(errors.ERROR_NAMES), lang
    for code in errors.ERROR_NAMES:
        for lang in i18n.LANGS:
            assert i18n.error(lang, code)
        assert not ENGLISH.search(i18n.error("zh-Hans", code) + i18n.error("zh-Hant", code))


@pytest.mark.parametrize("lang", ["zh-Hans", "zh-Hant"])
def test_no_screen_text_has_english_in_chinese(lang: str) -> None:
    for key in i18n.catalog(lang).TEXT:
        text = i18n.text(lang, key, "VP0001", 3)
        assert not ENGLISH.search(text), (key, text)


class Drive:
    """An app logged in with a two-parcel route, talking to a gateway-side channel."""

    def __init__(self, lang: str) -> None:
        self.hal = MemoryHAL()
        self.hal.keystore.put("master", MASTER)
        self.app = App(self.hal, {"device_id": DEVICE, "lang": lang})
        self.gw = session.Channel(MASTER, DEVICE, "gateway")
        self.screens: list[tuple[str, str]] = []
        self.app.boot(T0)
        self.look()

    def look(self) -> None:
        self.screens.append((self.app.state, self.hal.display.text()))

    def send(self, name: str, fields: dict[str, Any], now: float = T0) -> None:
        self.app.on_message(topics.down(DEVICE), self.gw.wrap(name, fields, int(now)), now)
        self.look()

    def keys(self, keys: str, now: float = T0) -> None:
        for k in keys:
            self.app.on_key(k, now)
            self.look()

    def scan(self, text: str, kind: str = "scan", now: float = T0) -> None:
        (self.app.on_typed if kind == "typed" else self.app.on_scan)(text, now)
        self.look()

    def last_req(self) -> int:
        return self.app.req


@pytest.mark.parametrize("lang", ["zh-Hans", "zh-Hant"])
def test_no_screen_mixes_english_into_chinese_whatever_the_gateway_says(lang: str) -> None:
    d = Drive(lang)
    d.app.on_link(True, T0)
    d.scan("C-112")
    d.keys("1234#")
    d.send("login_result", {"ok": False, "code": messages.DENY_LOCKED_OUT,
                            "reason": "too many wrong PINs: try again in 15 minutes"})
    d.scan("C-112")
    d.keys("12#")
    d.app.tick(T0 + 60)                 # no answer
    d.look()
    d.scan("C-112")
    d.keys("2468#")
    d.send("login_result", {"ok": True, "session": b"s1", "courier": "C-112"})
    d.app.tick(T0 + 90)                 # the route is asked for again
    d.look()
    d.send("route", {"route": "R-07", "parcels": PARCELS})
    d.scan(qr("VP0001"))
    d.keys("A13")
    d.keys("#")
    d.keys("1")
    d.send("reveal_denied", {"req": d.last_req(), "tracking_no": "VP0001", "code": messages.DENY_BUDGET,
                             "reason": "reveal denied: courier C-112 has used up the reveal budget"})
    d.send("error", {"code": 9, "deny": messages.DENY_LABEL, "detail": "scan refused: label #1 was replaced"})
    d.send("error", {"code": 1, "detail": "batch item 0: malformed"})
    d.send("error", {"code": errors.UNAVAILABLE, "detail": "gateway unavailable: audit log full"})
    d.scan("VP0002", kind="typed")
    d.keys("A2#")
    d.keys("1")
    d.keys("A2#6")
    d.app.tick(T0 + 200)                # no answer to the reveal
    d.look()
    d.keys("B12#")                      # a code too short
    d.keys("3456#")
    d.send("batch_ack", {"ids": [0, 1], "outcomes": [0, 9]})
    d.scan(qr("VP0404"))
    d.app.on_link(False, T0 + 300)
    d.look()
    d.scan(qr("VP0001"), now=T0 + 301)
    d.keys("A2#1", now=T0 + 301)
    d.scan("VP0001", now=T0 + 302)
    d.keys("A2#6", now=T0 + 302)
    d.app.on_link(True, T0 + 303)
    d.send("error", {"code": 9, "deny": messages.DENY_SUSPENDED, "detail": "courier C-112 is suspended"})
    d.app.on_refused(5, T0 + 304)
    d.look()
    d.send("command", {"id": 1, "cmd": messages.CMD_LOCK})
    visited = {s for s, _ in d.screens}
    assert visited >= {"badge", "pin", "login_wait", "route_wait", "ready", "parcel", "fields", "reason",
                       "reveal_wait", "pod", "suspended", "locked"}, visited
    for state, screen in d.screens:
        assert not ENGLISH.search(screen), (state, screen)


def test_the_field_picker_names_its_choices_and_shows_what_is_picked() -> None:
    d = Drive("en")
    d.app.on_link(True, T0)
    d.scan("C-112")
    d.keys("2468#")
    d.send("login_result", {"ok": True, "session": b"s1"})
    d.send("route", {"route": "R-07", "parcels": PARCELS})
    d.scan(qr("VP0001"))
    d.keys("A2")
    screen = d.hal.display.text().splitlines()
    assert screen[-5:] == ["Pick what to see (press again to drop)", "1 [ ] Name", "2 [x] Phone",
                           "3 [ ] Address", "# OK  * back"]
    d.keys("#")
    assert d.hal.display.text().splitlines()[-7:] == [
        "Pick a reason", "1 Recipient not reachable", "2 Address unclear", "3 Call before delivery",
        "4 Access code", "5 Recipient asked for a call", "# OK  * back"]


def test_the_state_table_names_only_states_and_app_methods() -> None:
    known = {v for k, v in vars(states).items() if k.isupper() and isinstance(v, str)}
    for (state, event), (new, actions) in states.TRANSITIONS.items():
        assert state in known and event in known and (new is None or new in known), (state, event)
        for name in actions:
            assert callable(getattr(App, name, None)), name
    assert messages.REASONS[states.REASON_DAMAGED] == "label-damaged"
    assert sorted(states.REASONS_IN_HAND + (states.REASON_DAMAGED,)) == sorted(messages.REASONS)


def test_only_the_app_writes_its_own_fields() -> None:
    for name in ("batch.py", "commands.py", "screen.py"):
        tree = ast.parse((REPO / "firmware" / name).read_text())
        writes = [n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AugAssign))
                  for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                  if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "app"]
        assert writes == [], name
    movers = set()
    for name in ("app.py", "engine.py"):
        tree = ast.parse((REPO / "firmware" / name).read_text())
        movers |= {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                   for n in ast.walk(f) if isinstance(n, ast.Assign)
                   for t in n.targets if isinstance(t, ast.Attribute) and t.attr == "state"}
    assert movers == {"__init__", "fire"}        # only Engine.fire() moves the state machine
