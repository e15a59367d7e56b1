"""How `veilpost` ends on an error it expects: one line on stderr saying
what to do, no traceback, and the exit code of the error's branch
(README "Exit codes", `veilpost --help`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.audit import AuditUnavailable
from gateway.broker_access import BrokerAdminError
from gateway.config import ConfigError
from gateway.home import Home, init
from gateway.manifest import ManifestError
from gateway.registry import InvalidDeviceId, RegistryError
from printer_drivers.label import LabelError
from printer_drivers.transport import PrinterOffline
from protocol import errors
from tests.fixtures.gateway import it_env
from tools.cli import main
from tools.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_UNAVAILABLE, exit_code


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], env=it_env(home))


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veilpost: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(("error", "code"), [
    (ConfigError("bad key"), EXIT_CONFIG),
    (ManifestError("row 2"), EXIT_CONFIG),
    (AuditUnavailable("disk full"), EXIT_UNAVAILABLE),
    (BrokerAdminError("no answer"), EXIT_UNAVAILABLE),
    (PrinterOffline("did not answer"), EXIT_UNAVAILABLE),
    (RegistryError("no courier C-1"), EXIT_FAILED),
    (InvalidDeviceId("bad id"), EXIT_FAILED),
    (LabelError("refusing plaintext"), EXIT_FAILED),
    (errors.RemoteProtocolError("forged", -1, errors.BAD_KEY), EXIT_FAILED),
])
def test_each_branch_of_the_error_tree_has_its_exit_code(error: errors.VeilpostError, code: int) -> None:
    assert isinstance(error, errors.VeilpostError)
    assert exit_code(error) == code


def test_the_exit_codes_are_in_the_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes: 0 done; 1 refused" in " ".join(result.output.split())


def test_a_home_without_keys_says_run_init_and_exits_3(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere", "audit", "verify")
    assert result.exit_code == EXIT_CONFIG
    assert "veilpost init" in one_line_error(result)


def test_a_refusal_by_the_registry_is_one_line_and_exits_1(gateway_home: Home) -> None:
    home = gateway_home.config.home
    assert run(home, "courier", "add", "C-900", "--pin", "2468", "--depot", "D-1").exit_code == 0
    again = run(home, "courier", "add", "C-900", "--pin", "2468", "--depot", "D-1")
    assert again.exit_code == EXIT_FAILED
    assert "courier C-900 already exists" in one_line_error(again)


def test_a_bad_manifest_is_a_file_to_fix_and_exits_3(gateway_home: Home, tmp_path: Path) -> None:
    bad = tmp_path / "routes.csv"
    bad.write_text("tracking_no\nVP1\n", encoding="utf-8")
    result = run(gateway_home.config.home, "route", "import", str(bad))
    assert result.exit_code == EXIT_CONFIG
    assert "routes.csv: nothing imported" in one_line_error(result)


def test_an_unreachable_broker_exits_4(tmp_path: Path) -> None:
    home = init(tmp_path / "vp")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = (home.config.home / "veilpost.toml").read_text(encoding="utf-8")
    text = text.replace('broker = "embedded"', 'broker = "127.0.0.1"').replace(
        "port = 1883\n", "port = %d\n" % port)
    (home.config.home / "veilpost.toml").write_text(text, encoding="utf-8")
    (home.config.home / "broker").mkdir(exist_ok=True)
    (home.config.home / "broker" / "admin.secret").write_text("vp-admin\nnot-a-real-password\n")
    home.close()
    result = run(home.config.home, "device", "list")
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    one_line_error(result)
