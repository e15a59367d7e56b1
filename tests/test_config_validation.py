"""A bad veilpost.toml is refused with one line naming the key and what it
should be: types (from the dataclass annotations), ranges, unknown keys and
tables, the time zone. Never a traceback, never a gateway that runs on it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.config import DEFAULT_TOML, ConfigError


def _load(tmp_path: Path, text: str) -> config_mod.Config:
    (tmp_path / config_mod.CONFIG_NAME).write_text(text, encoding="utf-8")
    (tmp_path / config_mod.CONFIG_NAME).chmod(0o600)
    return config_mod.load(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ('[sentinel]\nper_minute = "six"\n', '[sentinel] per_minute = "six": must be an integer'),
    ("[sentinel]\nper_minute = 6.5\n", "[sentinel] per_minute = 6.5: must be an integer"),
    ("[sentinel]\nper_minute = true\n", "[sentinel] per_minute = True: must be an integer"),
    ("[sentinel]\nper_minute = 0\n", "[sentinel] per_minute = 0: must be 1 or more"),
    ("[sentinel]\nstrikes = -1\n", "[sentinel] strikes = -1: must be 0 or more"),
    ("[mqtt]\nport = 70000\n", "[mqtt] port = 70000: must be 1 to 65535"),
    ('[mqtt]\nshared = "yes"\n', '[mqtt] shared = "yes": must be true or false'),
    ('[mqtt]\nversion = "4"\n', '[mqtt] version = "4": must be one of "auto", "5", "3.1.1"'),
    ('[reveal]\nreason_codes = [1, "2"]\n', "[reveal] reason_codes = [1, '2']: must be a list of integers"),
    ("[reveal]\nreason_codes = [1, 99]\n", "[reveal] reason_codes = [1, 99]: must be a non-empty list"),
    ('[reveal]\ndefault_shift = "7-21"\n', '[reveal] default_shift = "7-21": must be "HH:MM-HH:MM"'),
    ('[sentinel]\nwebhook_url = "ftp://x"\n', "must be empty or an http(s) URL"),
    ('timezone = "Mars/Olympus_Mons"\n', 'timezone = "Mars/Olympus_Mons": is not an IANA time zone'),
    ('timezone = "../../etc/passwd"\n', "is not an IANA time zone"),
    ('durability = "sometimes"\n', 'durability = "sometimes": must be one of "full", "normal"'),
    ('gateway_id = "gw/1"\n', 'gateway_id = "gw/1": must be 1-64 of'),
    ('store = "mysql://db"\n', 'must be empty (SQLite) or a "postgresql://..." URL'),
    ("gatway_id = \"gw-2\"\n", "unknown key gatway_id (did you mean gateway_id?)"),
    ("[sentinel]\nper_minuet = 6\n",
     "unknown key [sentinel] per_minuet (did you mean [sentinel] per_minute?)"),
    ("[sentinels]\nper_minute = 6\n", "unknown table [sentinels] (did you mean [sentinel]?)"),
    ("[printer]\nport = 1\n", "unknown table [printer]"),
    ("[sentinel.extra]\nx = 1\n", "unknown table [sentinel.extra]"),
    ("mqtt = 5\n", "mqtt = 5: must be a table [mqtt]"),
    ("[sentinel\nper_minute = 6\n", "veilpost.toml is not valid TOML"),
])
def test_a_bad_value_is_refused_with_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    line = str(caught.value)
    assert message in line
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("veilpost.toml")


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, 'timezone = "Nowhere/Land"\n[sentinel]\nper_minute = "six"\nper_shift = -4\n')
    assert len(caught.value.problems) == 3


def test_the_shipped_defaults_load_and_validate(tmp_path: Path) -> None:
    cfg = _load(tmp_path, DEFAULT_TOML)
    assert config_mod.validate(cfg) == []
    assert cfg == config_mod.Config(home=tmp_path)  # DEFAULT_TOML says what the dataclasses say


def test_default_toml_documents_every_key_with_its_dataclass_default() -> None:
    import tomllib

    data = tomllib.loads(DEFAULT_TOML)
    defaults = config_mod.Config(home=Path("."))
    for f in fields(config_mod.Config):
        if f.name == "home":
            continue
        if f.name in config_mod._SECTIONS:
            section = getattr(defaults, f.name)
            assert {sf.name for sf in fields(section)} == set(data[f.name]), f.name
            for sf in fields(section):
                assert data[f.name][sf.name] == getattr(section, sf.name), (f.name, sf.name)
        else:
            assert data[f.name] == getattr(defaults, f.name), f.name


def test_a_key_added_to_a_section_is_validated_by_its_type_without_more_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass
    class Reveal(config_mod.RevealConfig):
        gate_cooldown_seconds: int = 30
        gate_label: str = "x"

    monkeypatch.setitem(config_mod._SECTIONS, "reveal", Reveal)
    monkeypatch.setattr(config_mod.Config, "__init__", _with_section(config_mod.Config.__init__, Reveal))
    with pytest.raises(ConfigError, match=r'\[reveal\] gate_cooldown_seconds = "soon": must be an integer'):
        _load(tmp_path, '[reveal]\ngate_cooldown_seconds = "soon"\n')
    with pytest.raises(ConfigError, match=r"\[reveal\] gate_cooldown_seconds = -3: must be 0 or more"):
        _load(tmp_path, "[reveal]\ngate_cooldown_seconds = -3\n")
    loaded = _load(tmp_path, "[reveal]\ngate_cooldown_seconds = 45\n")
    assert loaded.reveal.gate_cooldown_seconds == 45  # type: ignore[attr-defined]


def _with_section(init, reveal_cls):  # type: ignore[no-untyped-def]
    def patched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("reveal", reveal_cls())
        init(self, *args, **kwargs)
    return patched


def test_validate_catches_a_config_built_in_code(tmp_path: Path) -> None:
    cfg = config_mod.Config(home=tmp_path)
    cfg.sentinel.per_minute = "six"  # type: ignore[assignment]
    cfg.timezone = "Not/AZone"
    problems = config_mod.validate(cfg)
    assert any("per_minute" in p for p in problems) and any("timezone" in p for p in problems)
