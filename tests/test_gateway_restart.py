"""`veilpost gateway run` starts, stops and starts again, any number of
times, on the embedded broker and on Mosquitto, after a clean stop and after
kill -9 of the gateway process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.broker_access import Grant
from gateway.broker_accounts import ACCOUNTS_FILE, ENDPOINT_FILE, Accounts, locked, read_file, write_file
from gateway.home import init
from tests.fault.gateway_process import GatewayProcess, configure
from tests.fixtures.gateway import own_embedded_port
from tools.testbed.brokers import HOST, MqttProbe

REPO = Path(__file__).resolve().parents[1]
WATCHER = ("status-watcher", "watcher-password-for-tests-only")


class _Endpoint:
    """Where a probe connects: the embedded broker inside the gateway process."""

    tls_port = None
    ca_file = None

    def __init__(self, port: int) -> None:
        self.host, self.port = HOST, port


def _embedded_home(tmp_path: Path) -> tuple[Path, int]:
    folder = tmp_path / "vp"
    init(folder).close()
    port = own_embedded_port(folder)
    assert config_mod.load(folder).mqtt.embedded_port == port
    # A client that may read the gateway's status topic, waiting in the
    # accounts file for the broker the gateway starts.
    accounts_file = folder / ACCOUNTS_FILE
    with locked(accounts_file):
        accounts = read_file(accounts_file) if accounts_file.exists() else Accounts()
        accounts.add(*WATCHER, (Grant("subscribe", "vp/v1/gw/#"),))
        write_file(accounts_file, accounts)
    return folder, port


def _start_embedded(folder: Path, port: int, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    log = open(folder / "gateway.log", "ab")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen([sys.executable, "-m", "tools", "--home", str(folder), "gateway", "run"],
                               cwd=REPO, stdout=log, stderr=log,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            probe = MqttProbe(_Endpoint(port), *WATCHER, timeout=0.5)  # type: ignore[arg-type]
        except OSError:  # not listening yet
            time.sleep(0.1)
            continue
        if probe.connected:
            try:
                probe.subscribe("vp/v1/gw/gw-1/status")
                message = probe.next_message(timeout=2.0)  # the retained status
                if message is not None and message.payload == b"online":
                    return process
            finally:
                probe.close()
        time.sleep(0.1)
    process.kill()
    process.wait()
    tail = (folder / "gateway.log").read_text(errors="replace").splitlines()[-15:]
    raise AssertionError("gateway did not come online:\n" + "\n".join(tail))


def _stop(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
    process.send_signal(how)
    return process.wait(20)


@pytest.mark.slow
def test_embedded_gateway_starts_again_after_clean_stops_and_kill_9(tmp_path: Path) -> None:
    folder, port = _embedded_home(tmp_path)
    for how in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGKILL, signal.SIGINT):
        process = _start_embedded(folder, port)
        code = _stop(process, how)
        assert code == (-signal.SIGKILL if how == signal.SIGKILL else 0), (folder / "gateway.log").read_text()
    process = _start_embedded(folder, port)
    _stop(process, signal.SIGINT)
    log = (folder / "gateway.log").read_text(errors="replace")
    assert "exists already" not in log and "Traceback" not in log, log
    # The gateway's own account is one entry, however often it started.
    assert sorted(read_file(folder / ACCOUNTS_FILE).by_name) == sorted(["vp-gateway", WATCHER[0]])
    assert not (folder / ENDPOINT_FILE).exists()  # a clean stop says no broker runs here


@pytest.mark.slow
@pytest.mark.mosquitto
def test_mosquitto_gateway_starts_again_after_clean_stops_and_kill_9(tmp_path: Path,
                                                                     mosquitto_broker: object) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    configure(folder, mosquitto_broker, "gw-restart")
    gateway = GatewayProcess(folder, mosquitto_broker, "gw-restart")
    for how in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGKILL, signal.SIGINT):
        gateway.start()
        assert gateway.alive()
        if how == signal.SIGKILL:
            gateway.kill()
            assert gateway.process is not None and gateway.process.returncode == -signal.SIGKILL
        else:
            assert gateway.process is not None
            assert _stop(gateway.process, how) == 0, gateway.log_tail()
        # Whoever watches the status topic sees the gateway gone, whichever way it went.
        assert _retained_status(mosquitto_broker, "gw-restart") == b"offline", gateway.log_tail()
        _clear_status(mosquitto_broker, "gw-restart")  # the next "online" can only be the next gateway
    gateway.start()
    gateway.stop()
    assert "Traceback" not in (folder / "gateway.log").read_text(errors="replace")


def _retained_status(broker: object, gateway_id: str) -> bytes | None:
    probe = MqttProbe(broker, *broker.admin_credentials)  # type: ignore[arg-type, attr-defined]
    try:
        probe.subscribe("vp/v1/gw/%s/status" % gateway_id)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # kill -9: the broker fires the will after keepalive or at once
            message = probe.next_message(timeout=0.5)
            if message is not None and message.payload == b"offline":
                return bytes(message.payload)
        return None
    finally:
        probe.close()


def _clear_status(broker: object, gateway_id: str) -> None:
    probe = MqttProbe(broker, *broker.admin_credentials)  # type: ignore[arg-type, attr-defined]
    try:
        probe.publish("vp/v1/gw/%s/status" % gateway_id, b"", retain=True)
    finally:
        probe.close()


def test_embedded_broker_listens_on_a_fixed_documented_port_by_default(tmp_path: Path) -> None:
    cfg = config_mod.load(tmp_path)
    assert cfg.mqtt.embedded_port == config_mod.EMBEDDED_PORT == 18830
    assert "embedded_port = 18830" in config_mod.DEFAULT_TOML


def test_embedded_port_in_use_is_one_clear_error_and_leaves_nothing_running(tmp_path: Path) -> None:
    import socket
    import threading

    from gateway.home import open_home
    from gateway.service import GatewayService, GatewayStartError

    folder = tmp_path / "vp"
    init(folder).close()
    port = own_embedded_port(folder)
    with socket.socket() as squatter:
        squatter.bind((HOST, port))
        squatter.listen()
        home = open_home(folder)
        try:
            with pytest.raises(GatewayStartError, match="cannot listen on 127.0.0.1:%d" % port):
                GatewayService(home).start()
        finally:
            home.close()
    assert not [t for t in threading.enumerate() if t.name == "embedded-mqtt"]
