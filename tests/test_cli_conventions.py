"""The CLI's conventions, over the whole click tree: help on every command
and option, --json on every list and status command, --version, the global
options after the subcommand too, list commands that show masked data only,
and third-party loggers quiet by default."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway import registry, retention
from gateway.home import Home, init
from gateway.manifest import import_manifest
from tools.cli import main
from tools.testbed.depot import leaks, manifest_csv

REPO = Path(__file__).resolve().parents[1]
LISTS_AND_STATUS = ("list", "status", "check", "watch", "events")


def walk(command: click.Command,
         path: tuple[str, ...] = ("veilpost",)) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for name, command in walk(main):
        if not (command.help or command.short_help):
            missing.append(name)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append("%s %s" % (name, "/".join(param.opts)))
    assert missing == []


def test_every_list_and_status_command_takes_json() -> None:
    wanting = [name for name, command in walk(main)
               if name.split()[-1] in LISTS_AND_STATUS and not isinstance(command, click.Group)]
    assert len(wanting) >= 12, wanting  # device, courier, officer, case, route, parcel, incidents, alarms...
    lacking = [name for name, command in walk(main) if name in wanting
               and not any("--json" in p.opts for p in command.params)]
    assert lacking == []


def test_version_is_the_installed_one() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == "veilpost " + metadata.version("veilpost")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = init(tmp_path / "vp")
    registry.add_courier(h.store, "C-112", "2468", "D-1")
    registry.add_officer(h.store, "Officer Test", "135790")
    import_manifest(h.store, h.vault, h.audit,
                    manifest_csv([("VP2653464097", "R-07", "C-112", 0), ("VP2630246633", "R-07", "C-112", 1),
                                  ("VP2611111111", "R-09", "C-112", 2)]), h.zone, 0.0,
                    "it:test")
    retention.open_case(h.store, h.audit, "CASE-1", "VP2653464097", "complaint 42", "Desk Test", 0.0,
                        for_account="agent:Desk")
    yield h
    h.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.output


def test_home_is_accepted_after_the_subcommand_too(home: Home, tmp_path: Path) -> None:
    where = str(home.config.home)
    for args in (["--home", where, "route", "list"], ["route", "list", "--home", where],
                 ["route", "--home", where, "list"]):
        code, out = run(*args)
        assert code == 0 and "R-07" in out and "R-09" in out, (args, out)
    code, out = run("--home", str(tmp_path / "elsewhere"), "route", "list", "--home", where)
    assert code == 0 and "R-07" in out  # the last one named wins


@pytest.mark.parametrize("listing", [["courier", "list"], ["officer", "list"], ["case", "list"],
                                     ["route", "list"], ["parcel", "list"], ["incidents", "list"],
                                     ["alarms", "list"], ["alarms", "events"], ["device", "list"]])
def test_list_commands_give_the_same_json_before_or_after_and_no_plaintext(home: Home,
                                                                            listing: list[str]) -> None:
    where = str(home.config.home)
    code, before = run("--home", where, "--json", *listing)
    assert code == 0, before
    code, after = run(*listing, "--json", "--home", where)
    assert code == 0, after
    assert json.loads(before) == json.loads(after)
    assert isinstance(json.loads(before), list)
    code, text = run("--home", where, *listing)
    assert code == 0 and text.strip()
    assert leaks((before + text).encode("utf-8")) == []


def test_list_commands_show_what_the_home_holds(home: Home) -> None:
    where = str(home.config.home)
    couriers = json.loads(run("--home", where, "--json", "courier", "list")[1])
    assert [(c["courier"], c["depot"], c["state"]) for c in couriers] == [("C-112", "D-1", "active")]
    assert [o["officer"] for o in json.loads(run("--home", where, "--json", "officer", "list")[1])] == [
        "Officer Test"]
    [case] = json.loads(run("--home", where, "--json", "case", "list")[1])
    assert (case["case"], case["tracking_no"], case["for"], case["state"]) == (
        "CASE-1", "VP2653464097", "agent:Desk", "pending")
    routes = json.loads(run("--home", where, "--json", "route", "list")[1])
    assert [(r["route"], r["parcels"], r["out_for_delivery"]) for r in routes] == [("R-07", 2, False),
                                                                                  ("R-09", 1, False)]
    parcels = json.loads(run("--home", where, "--json", "parcel", "list", "--route", "R-07")[1])
    assert [p["tracking_no"] for p in parcels] == ["VP2630246633", "VP2653464097"]
    assert parcels[1]["receiver"] == {"name": "測**", "phone": "170******34",
                                      "address": "測試市測試區樣例路1號 *棟***室"}


def test_cli_keeps_third_party_loggers_at_warning_unless_debug(home: Home) -> None:
    run("--home", str(home.config.home), "route", "list")
    for name in ("amqtt", "transitions", "paho"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    run("--home", str(home.config.home), "--log-level", "debug", "route", "list")
    assert logging.getLogger("transitions").getEffectiveLevel() == logging.DEBUG
    run("--home", str(home.config.home), "route", "list")
    assert logging.getLogger("transitions").getEffectiveLevel() == logging.WARNING


def test_python_m_tools_version_runs_outside_click_runner() -> None:
    done = subprocess.run([sys.executable, "-m", "tools", "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("veilpost "), done.stderr
