"""Alarms for people (issue 14, item 10): `veilpost alarms watch` follows
vp/v1/alarm live under the read-only account vp-alarms, one line (or one
JSON object) per alarm; `alarms list --since` and `alarms events` read
what the gateway recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import config as config_mod
from gateway import registry
from gateway.alarm_watch import WATCHER
from gateway.broker_access import WATCHER_GRANTS
from gateway.broker_accounts import ACCOUNTS_FILE, read_file
from gateway.home import init
from tests.fixtures.brokers import MosquittoBroker, MqttProbe
from tests.fixtures.gateway import GatewayRun, it_env, own_embedded_port
from tools.cli import main
from tools.testbed.wire import Handheld

REPO = Path(__file__).resolve().parents[1]


def run(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(folder), *args], env=it_env(folder))
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


class Watch:
    """`veilpost alarms watch ...` as a process, ready once it says so."""

    def __init__(self, folder: Path, *args: str) -> None:
        command = [sys.executable, "-m", "tools", "--home", str(folder), "alarms", "watch", *args]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        assert self.process.stderr is not None
        first = self.process.stderr.readline()
        assert first.startswith("watching vp/v1/alarm on "), first + self.process.stderr.read()

    def output(self, timeout: float = 20) -> list[str]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        assert self.process.returncode == 0, err
        return out.splitlines()


def _lockout(folder: Path, device_id: str) -> None:
    doc = json.loads((folder / "bundles" / device_id / "provision.json").read_text())
    m = doc["mqtt"]
    hh = Handheld(types.SimpleNamespace(host=m["host"], port=m["port"]), device_id,
                  bytes.fromhex(doc["master_secret"]), credentials=(m["username"], m["password"]))
    try:
        for _ in range(5):
            assert hh.login("C-112", "9999")["ok"] is False
    finally:
        hh.close()


def test_watch_prints_each_alarm_live_and_list_and_events_keep_them(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    home = init(folder)
    registry.add_courier(home.store, "C-112", "2468", "D-1", "00:00-23:59")
    home.close()
    own_embedded_port(folder)
    assert run(folder, "device", "provision", "HH-0001")[0] == 0
    with GatewayRun(folder):
        text = Watch(folder, "--count", "1")
        as_json = Watch(folder, "--count", "1", "--json")
        _lockout(folder, "HH-0001")
        [line] = text.output()
        [obj] = as_json.output()
    alarm = json.loads(obj)
    assert alarm["kind"].startswith("5 wrong PINs for a badge") and alarm["devices"] == ["HH-0001"]
    assert line.split()[2] == alarm["alarm"] and "wrong PINs" in line and "devices HH-0001" in line
    assert "C-112" not in line + obj  # couriers appear as pseudonyms
    assert read_file(folder / ACCOUNTS_FILE).by_name[WATCHER].grants == WATCHER_GRANTS
    code, out = run(folder, "--json", "alarms", "list", "--since", "1h")
    assert code == 0
    assert [(a["alarm"], a["device"], a["courier"]) for a in json.loads(out)] == [
        (alarm["alarm"], "HH-0001", "C-112")]
    code, out = run(folder, "alarms", "events", "--since", "1h", "--kind", "pin-lockout")
    assert code == 0 and "pin-lockout" in out and "device HH-0001" in out
    assert "no alarms since" in run(folder, "alarms", "list", "--since", str(time.time() + 60))[1]
    assert run(folder, "alarms", "list", "--since", "yesterday-ish")[0] == 2


def test_watch_stops_after_for_seconds_with_nothing_raised(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    own_embedded_port(folder)
    with GatewayRun(folder):
        assert Watch(folder, "--for", "1").output() == []


def test_watch_without_a_broker_is_one_line_and_exit_4(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    own_embedded_port(folder)
    code, out = run(folder, "alarms", "watch", "--for", "1")
    assert code == 4 and out.startswith("veilpost: the broker at 127.0.0.1:") and out.count("\n") == 1


@pytest.mark.mosquitto
def test_on_mosquitto_the_watcher_may_read_alarms_and_nothing_else(tmp_path: Path,
                                                                   mosquitto_broker: MosquittoBroker) -> None:
    broker = mosquitto_broker
    folder = tmp_path / "vp"
    init(folder).close()
    (folder / "broker").mkdir(exist_ok=True)
    user, password = broker.admin_credentials
    (folder / "broker" / "admin.secret").write_text("%s\n%s\n" % (user, password))
    assert broker.ca_file
    shutil.copy(broker.ca_file, folder / "broker" / "ca.crt")
    config_mod.set_values(folder, {"mqtt.broker": broker.host, "mqtt.port": broker.port})
    watch = Watch(folder, "--count", "1", "--json")
    secret = (folder / "broker" / "alarms.secret").read_text().strip()
    probe = MqttProbe(broker, WATCHER, secret)
    assert probe.connected
    assert probe.subscribe("vp/v1/alarm") == 1
    assert probe.subscribe("vp/v1/d/+/up") == 0x80 and probe.subscribe("#") == 0x80
    probe.close()
    gateway = MqttProbe(broker, *broker.gateway_credentials)  # the one account that may raise alarms
    gateway.publish("vp/v1/alarm", json.dumps({"alarm": "ALM-TEST0001", "kind": "test alarm", "at": 0,
                                               "devices": ["HH-9"], "parcels": 0}).encode())
    gateway.close()
    [line] = watch.output()
    assert json.loads(line)["alarm"] == "ALM-TEST0001"
