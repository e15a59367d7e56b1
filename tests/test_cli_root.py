"""The `veilpost` command root: help works, and the home folder comes from
--home, else $VEILPOST_HOME, else ./veilpost-data."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tools import cli

REPO = Path(__file__).resolve().parents[1]


def test_python_m_tools_help_lists_the_command() -> None:
    r = subprocess.run([sys.executable, "-m", "tools", "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "veilpost" in r.stdout and "--home" in r.stdout


@pytest.fixture
def where() -> Iterator[click.Command]:
    @click.command("where-home")
    @click.pass_context
    def where_home(ctx: click.Context) -> None:
        click.echo(str(cli.home_of(ctx)))

    cli.main.add_command(where_home)
    yield where_home
    cli.main.commands.pop("where-home")


def test_home_option_wins_over_the_environment(where: click.Command, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli.main, ["--home", str(tmp_path / "opt"), "where-home"],
                           env={"VEILPOST_HOME": str(tmp_path / "env")})
    assert r.exit_code == 0, r.output
    assert r.output.strip() == str(tmp_path / "opt")


def test_environment_is_used_without_the_option(where: click.Command, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli.main, ["where-home"], env={"VEILPOST_HOME": str(tmp_path / "env")})
    assert r.output.strip() == str(tmp_path / "env")


def test_default_home_is_veilpost_data_in_the_current_folder(where: click.Command) -> None:
    r = CliRunner().invoke(cli.main, ["where-home"], env={"VEILPOST_HOME": ""})
    assert r.output.strip() == "veilpost-data"


def test_resolve_home_prefers_option_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILPOST_HOME", "/srv/vp")
    assert cli.resolve_home("here") == Path("here")
    assert cli.resolve_home(None) == Path("/srv/vp")
    monkeypatch.delenv("VEILPOST_HOME")
    assert cli.resolve_home(None) == Path("veilpost-data")
