"""make-depot.sh run again changes nothing that exists (the depot CA, the
broker's key, dynamic security, the admin secret) and says what it kept;
listener ports and hosts are options; the gateway's broker account is one
call away."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.broker_admin import GATEWAY_USERNAME, add_gateway_account
from gateway.config_check import OK, check
from gateway.deploy import depot
from gateway.home import init
from tests.conftest import require
from tests.fixtures.brokers import MosquittoBroker, free_port

DEPLOY = Path(depot.__file__).parent
KEPT = ("ca.crt", "ca.key", "server.crt", "server.key", "admin.secret", "state/dynamic-security.json",
        "mosquitto.conf", "vp/broker/admin.secret", "vp/broker/ca.crt")


def _needs_mosquitto_tools() -> None:
    require(shutil.which("mosquitto_ctrl") is not None, "mosquitto_ctrl is not installed")
    require(depot.find_dynsec_plugin() is not None, "the mosquitto dynamic-security plugin is missing")


def _make(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "make-depot.sh"), str(tmp_path), "--state", str(tmp_path / "state"),
         "--depot", "depot-t", "--host", "127.0.0.1", "--owner", "nobody-here",
         "--veilpost-home", str(tmp_path / "vp"), *extra],
        capture_output=True, text=True, timeout=60, check=False)


def _digests(tmp_path: Path) -> dict[str, str]:
    return {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in KEPT}


def test_a_second_run_keeps_everything_and_says_so(tmp_path: Path) -> None:
    _needs_mosquitto_tools()
    first = _make(tmp_path)
    assert first.returncode == 0, first.stderr
    before = _digests(tmp_path)
    second = _make(tmp_path)
    assert second.returncode == 0, second.stderr
    assert _digests(tmp_path) == before
    for what in ("depot CA", "server certificate", "dynamic security", "admin secret", "mosquitto.conf"):
        assert "kept " + what in second.stdout, second.stdout
    assert "exists already" not in second.stderr


def test_a_second_run_with_other_options_keeps_the_config_and_says_what_would_change(tmp_path: Path) -> None:
    _needs_mosquitto_tools()
    assert _make(tmp_path).returncode == 0
    before = _digests(tmp_path)
    again = _make(tmp_path, "--tls-port", "18883")
    assert again.returncode == 0, again.stderr
    assert _digests(tmp_path) == before
    assert "mosquitto.conf differs from what these options give" in again.stdout


def test_half_a_ca_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    _needs_mosquitto_tools()
    assert _make(tmp_path).returncode == 0
    (tmp_path / "ca.key").unlink()
    again = _make(tmp_path)
    assert again.returncode == 1
    assert "ca.crt exists without ca.key" in again.stderr
    assert not (tmp_path / "ca.key").exists()


def test_listener_ports_and_hosts_are_options(tmp_path: Path) -> None:
    _needs_mosquitto_tools()
    done = _make(tmp_path, "--plain-port", "11883", "--plain-host", "127.0.0.2", "--tls-port", "18883",
                 "--tls-host", "10.0.7.2")
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "mosquitto.conf").read_text().splitlines()
    assert [line for line in lines if line.startswith("listener ")] == ["listener 11883 127.0.0.2",
                                                                         "listener 18883 10.0.7.2"]
    no_plain = tmp_path / "other"
    done = subprocess.run([str(DEPLOY / "make-depot.sh"), str(no_plain), "--owner", "nobody-here",
                           "--plain-port", "0"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = (no_plain / "mosquitto.conf").read_text().splitlines()
    assert [line for line in lines if line.startswith("listener ")] == ["listener 8883"]


@pytest.mark.parametrize("bad", [["--tls-port", "70000"], ["--plain-port", "x"], ["--tls-port", "0"]])
def test_a_bad_port_is_refused_before_anything_is_written(tmp_path: Path, bad: list[str]) -> None:
    done = _make(tmp_path / "d", *bad)
    assert done.returncode != 0
    assert not (tmp_path / "d" / "ca.key").exists()


@pytest.mark.mosquitto
def test_the_gateway_account_is_created_once_and_the_gateway_logs_in_with_it(tmp_path: Path) -> None:
    _needs_mosquitto_tools()
    require(shutil.which("mosquitto") is not None, "the mosquitto binary is not installed")
    folder = tmp_path / "depot"
    depot.make_depot(folder, "depot-t", ["127.0.0.1"], owner=None)
    broker = MosquittoBroker(folder, folder, admin=depot.read_admin_secret(folder / "admin.secret"))
    broker.start()
    try:
        home = tmp_path / "vp"
        init(home).close()
        depot.copy_to_home(folder, home)
        made = add_gateway_account(home, broker.host, broker.port)
        assert made.created and made.username == GATEWAY_USERNAME
        cfg = config_mod.load(home)
        where = (cfg.mqtt.broker, cfg.mqtt.port, cfg.mqtt.username)
        assert where == ("127.0.0.1", broker.port, GATEWAY_USERNAME)
        assert cfg.mqtt.password_file and cfg.mqtt.password  # from a 0600 file, not the TOML
        assert "password = \"\"" in (home / config_mod.CONFIG_NAME).read_text()
        found = {f.topic: f for f in check(cfg)}
        assert found["broker"].level == OK, found["broker"]
        again = add_gateway_account(home, broker.host, broker.port)
        assert not again.created and again.password == made.password
        assert broker.admin.usernames().count(GATEWAY_USERNAME) == 1
    finally:
        broker.stop()


def test_the_gateway_account_needs_the_admin_secret(tmp_path: Path) -> None:
    home = tmp_path / "vp"
    init(home).close()
    with pytest.raises(depot.DepotSetupError, match="no broker admin secret"):
        add_gateway_account(home, "127.0.0.1", free_port())
