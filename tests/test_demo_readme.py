"""The README keeps its promises: the two commands a fresh machine needs come
first, and the configuration reference lists exactly the keys
gateway/config.py accepts (no invented ones, none missing)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from gateway import config

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_opens_with_the_demo_and_the_test_commands() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    assert block.group(1).splitlines() == ["pip install -e . && veilpost demo",
                                           "pip install -e '.[dev]' && pytest"]
    assert text.index(block.group(0)) < text.index("## ")


def test_readme_configuration_reference_lists_every_config_key_and_no_other() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for m in re.finditer(r"^\| `(?:\[(\w+)\] )?(\w+)` \|", section, re.M):
        documented.add("%s.%s" % (m.group(1), m.group(2)) if m.group(1) else m.group(2))
    sections = {f.name: f.type for f in fields(config.Config) if f.name in config._SECTIONS}
    accepted = {f.name for f in fields(config.Config) if f.name != "home" and f.name not in sections}
    for name, cls in config._SECTIONS.items():
        accepted |= {"%s.%s" % (name, f.name) for f in fields(cls)}
    assert documented == accepted, "README config reference: missing %s, not in gateway/config.py %s" % (
        sorted(accepted - documented), sorted(documented - accepted))


def test_readme_configuration_reference_shows_the_real_defaults() -> None:
    import tomllib

    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    defaults = config.Config(home=README.parent)
    rows = re.findall(r"^\| `(?:\[(\w+)\] )?(\w+)` \| `([^`]*)` \|", section, re.M)
    assert rows
    for table, key, shown in rows:
        value = tomllib.loads("v = " + shown)["v"]
        real = getattr(getattr(defaults, table) if table else defaults, key)
        assert value == real, "README shows %s%s = %s, gateway/config.py has %r" % (
            table + "." if table else "", key, shown, real)
