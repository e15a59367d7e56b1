"""`veilpost broker add-gateway` and `veilpost gateway units` (issue 14,
items 3 and 12): the gateway's Mosquitto account from the CLI, kept on a
re-run, and the systemd units rendered with this machine's paths."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import config as config_mod
from gateway.broker_admin import GATEWAY_USERNAME, PASSWORD_FILE
from gateway.deploy import depot
from gateway.home import init
from tests.conftest import require
from tests.fixtures.brokers import MosquittoBroker
from tools.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


@pytest.mark.mosquitto
def test_add_gateway_makes_the_account_once_and_config_check_logs_in(tmp_path: Path) -> None:
    require(shutil.which("mosquitto") is not None, "the mosquitto binary is not installed")
    require(shutil.which("mosquitto_ctrl") is not None, "mosquitto_ctrl is not installed")
    folder = tmp_path / "depot"
    depot.make_depot(folder, "depot-t", ["127.0.0.1"], owner=None)
    broker = MosquittoBroker(folder, folder, admin=depot.read_admin_secret(folder / "admin.secret"))
    broker.start()
    try:
        home = tmp_path / "vp"
        init(home).close()
        depot.copy_to_home(folder, home)
        code, out = run("--home", str(home), "broker", "add-gateway", "--host", broker.host,
                        "--port", str(broker.port))
        assert code == 0, out
        assert "gateway account %s on %s:%d created" % (GATEWAY_USERNAME, broker.host, broker.port) in out
        assert stat.S_IMODE((home / PASSWORD_FILE).stat().st_mode) == 0o600
        cfg = config_mod.load(home)
        assert (cfg.mqtt.broker, cfg.mqtt.port, cfg.mqtt.username, cfg.mqtt.password_file) == (
            broker.host, broker.port, GATEWAY_USERNAME, PASSWORD_FILE)
        code, out = run("broker", "add-gateway", "--home", str(home))  # host and port from the config now
        assert code == 0 and "kept" in out, out
        code, out = run("--home", str(home), "config", "check")
        assert "ok   broker   %s:%d: logged in as %s" % (broker.host, broker.port, GATEWAY_USERNAME) in out
    finally:
        broker.stop()


def test_add_gateway_without_the_admin_secret_is_one_line_exit_3(tmp_path: Path) -> None:
    init(tmp_path / "vp").close()
    code, out = run("--home", str(tmp_path / "vp"), "broker", "add-gateway", "--port", "1883")
    assert code == 3 and out.startswith("veilpost: no broker admin secret in ") and out.count("\n") == 1


def test_gateway_units_are_written_with_the_paths_given(tmp_path: Path) -> None:
    veilpost = Path(sys.executable).with_name("veilpost-for-test")
    code, out = run("gateway", "units", "--out", str(tmp_path / "units"), "--veilpost", str(veilpost),
                    "--mosquitto", "/usr/sbin/mosquitto",
                    "--depot-config", "/etc/mosquitto/depot-7/mosquitto.conf")
    assert code == 0, out
    gateway = (tmp_path / "units" / "veilpost-gateway.service").read_text()
    mosquitto = (tmp_path / "units" / "veilpost-mosquitto.service").read_text()
    assert "ExecStart=%s gateway run" % veilpost in gateway
    assert "/usr/sbin/mosquitto -c /etc/mosquitto/depot-7/mosquitto.conf" in mosquitto
    assert "systemctl daemon-reload" in out
    code, out = run("gateway", "units", "--out", str(tmp_path / "x"), "--veilpost", "bin/veilpost",
                    "--mosquitto", "/usr/sbin/mosquitto")
    assert code == 3 and "must be an absolute path" in out and out.count("\n") == 1
