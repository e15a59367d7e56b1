"""`veilpost device provision` with the gateway stopped (issue 14, item 2):
on the embedded broker through the accounts file the broker reads when it
starts, on Mosquitto through dynamic security. Bundles name the broker
address handhelds use from [mqtt] device_host / device_port / device_tls,
never a running broker's port; a CSV is provisioned all or nothing, with a
report per row; bundles are owner-only."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import types
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from gateway import config as config_mod
from gateway import registry
from gateway.broker_accounts import ACCOUNTS_FILE, ENDPOINT_FILE, read_file
from gateway.home import init
from tests.fixtures.brokers import MosquittoBroker
from tests.fixtures.gateway import GatewayRun, it_env, own_embedded_port
from tools.cli import main
from tools.testbed.wire import Handheld


def run(folder: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(folder), *args], input=input, env=it_env(folder))
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


def bundle(folder: Path, device_id: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads((folder / "bundles" / device_id / "provision.json").read_text())
    return doc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    init(tmp_path / "vp").close()
    return tmp_path / "vp"


def test_provisioned_with_the_gateway_stopped_the_handheld_logs_in_once_it_runs(folder: Path) -> None:
    port = own_embedded_port(folder)
    assert run(folder, "courier", "add", "C-112", "--depot", "D-1", "--shift", "00:00-23:59",
               input="2468\n2468\n")[0] == 0
    code, out = run(folder, "device", "provision", "HH-0001")
    assert code == 0, out
    doc = bundle(folder, "HH-0001")
    mqtt_cfg = doc["mqtt"]
    assert isinstance(mqtt_cfg, dict)
    assert (mqtt_cfg["host"], mqtt_cfg["port"]) == ("127.0.0.1", port) and "tls" not in mqtt_cfg
    with GatewayRun(folder):
        hh = Handheld(types.SimpleNamespace(host=mqtt_cfg["host"], port=mqtt_cfg["port"]), "HH-0001",
                      bytes.fromhex(str(doc["master_secret"])),
                      credentials=(str(mqtt_cfg["username"]), str(mqtt_cfg["password"])))
        try:
            assert hh.login("C-112", "2468")["ok"] is True
        finally:
            hh.close()
        code, out = run(folder, "device", "provision", "HH-0002")  # and with the gateway running
        assert code == 0 and "127.0.0.1:%d" % port in out, out
    assert registry.device_state(init(folder).store, "HH-0001") == "active"


def test_a_stale_endpoint_of_a_killed_broker_is_not_what_bundles_name(folder: Path) -> None:
    (folder / ENDPOINT_FILE).write_text(json.dumps({"host": "127.0.0.1", "port": 1}) + "\n")
    code, out = run(folder, "device", "provision", "HH-0001")
    assert code == 0, out
    mqtt_cfg = bundle(folder, "HH-0001")["mqtt"]
    assert isinstance(mqtt_cfg, dict) and mqtt_cfg["port"] == config_mod.EMBEDDED_PORT


def test_bundles_take_the_handheld_address_from_the_config(folder: Path) -> None:
    config_mod.set_values(folder, {"mqtt.device_host": "broker.depot-7.example", "mqtt.device_port": 18883})
    assert run(folder, "device", "provision", "HH-0001")[0] == 0
    mqtt_cfg = bundle(folder, "HH-0001")["mqtt"]
    assert isinstance(mqtt_cfg, dict)
    assert (mqtt_cfg["host"], mqtt_cfg["port"]) == ("broker.depot-7.example", 18883)
    code, out = run(folder, "device", "--device-broker", "10.0.7.2:8883", "provision", "HH-0002")
    assert code == 0, out
    mqtt_cfg = bundle(folder, "HH-0002")["mqtt"]
    assert isinstance(mqtt_cfg, dict) and (mqtt_cfg["host"], mqtt_cfg["port"]) == ("10.0.7.2", 8883)


def test_embedded_port_0_cannot_be_written_into_a_bundle(folder: Path) -> None:
    config_mod.set_values(folder, {"mqtt.embedded_port": 0})
    code, out = run(folder, "device", "provision", "HH-0001")
    assert code == 3 and "embedded_port = 0" in out
    assert registry.device_state(init(folder).store, "HH-0001") is None


def _tls_client(host: str, port: int, username: str, password: str, cafile: Path) -> bool:
    import threading

    ok = threading.Event()
    result: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hh-" + username, protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    client.tls_set(ca_certs=str(cafile), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.on_connect = lambda _c, _u, _f, reason, _p: (result.append(not reason.is_failure), ok.set())
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        ok.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return result == [True]


@pytest.mark.mosquitto
def test_mosquitto_bundles_carry_the_depot_ca_and_the_configured_tls_listener(
        folder: Path, mosquitto_broker: MosquittoBroker) -> None:
    broker = mosquitto_broker
    assert broker.tls_port and broker.ca_file
    secrets = folder / "broker"
    secrets.mkdir(exist_ok=True)
    user, password = broker.admin_credentials
    (secrets / "admin.secret").write_text("%s\n%s\n" % (user, password))
    shutil.copy(broker.ca_file, secrets / "ca.crt")
    config_mod.set_values(folder, {"mqtt.broker": broker.host, "mqtt.port": broker.port,
                                   "mqtt.device_host": "localhost", "mqtt.device_port": broker.tls_port})
    code, out = run(folder, "device", "provision", "HH-0001")  # no gateway runs
    assert code == 0, out
    assert "broker localhost:%d (TLS)" % broker.tls_port in out
    doc = bundle(folder, "HH-0001")
    mqtt_cfg = doc["mqtt"]
    assert isinstance(mqtt_cfg, dict)
    assert (mqtt_cfg["host"], mqtt_cfg["port"], mqtt_cfg["tls"]) == (
        "localhost", broker.tls_port, {"cafile": "/vp/ca.crt"})
    ca = folder / "bundles" / "HH-0001" / "ca.crt"
    assert ca.read_bytes() == Path(broker.ca_file).read_bytes()
    assert _tls_client("localhost", int(mqtt_cfg["port"]), "HH-0001", str(mqtt_cfg["password"]), ca)
    config_mod.set_values(folder, {"mqtt.device_tls": "off", "mqtt.device_port": 0})
    assert run(folder, "device", "provision", "HH-0002")[0] == 0
    mqtt_cfg = bundle(folder, "HH-0002")["mqtt"]
    assert isinstance(mqtt_cfg, dict) and "tls" not in mqtt_cfg and mqtt_cfg["port"] == broker.port
    assert not (folder / "bundles" / "HH-0002" / "ca.crt").exists()


def test_csv_with_bad_rows_provisions_nothing_and_reports_each_row(folder: Path, tmp_path: Path) -> None:
    assert run(folder, "device", "provision", "HH-0001")[0] == 0
    rows = tmp_path / "handhelds.csv"
    rows.write_text("device_id,model\nHH-0002,TS-1\nHH 3,TS-1\nHH-0001,TS-1\nHH-0002,TS-2\n,TS-1\n"
                    "HH-0006,TS-1\n", encoding="utf-8")
    code, out = run(folder, "device", "provision", "--csv", str(rows))
    assert code == 3, out
    report = [line for line in out.splitlines() if line.startswith("line ")]
    assert report == [
        "line 2  HH-0002  ok, not provisioned",
        "line 3  HH 3  device id 'HH 3' is not 1 to 32 characters of A-Z a-z 0-9 _ -",
        "line 4  HH-0001  HH-0001 is registered already (provisioned)",
        "line 5  HH-0002  HH-0002 is on line 2 already",
        "line 6  (no device_id)  no device_id",
        "line 7  HH-0006  ok, not provisioned",
    ]
    home = init(folder)
    assert [r[0] for r in home.store.all("SELECT device_id FROM devices")] == ["HH-0001"]
    assert "HH-0002" not in read_file(folder / ACCOUNTS_FILE).by_name
    assert sorted(os.listdir(folder / "bundles")) == ["HH-0001"]


def test_csv_that_fails_midway_takes_back_the_rows_before_it(folder: Path, tmp_path: Path) -> None:
    (folder / "bundles").mkdir(mode=0o755)
    (folder / "bundles" / "HH-0013").write_text("not a folder\n")  # its bundle cannot be written
    rows = tmp_path / "handhelds.csv"
    rows.write_text("device_id\nHH-0011\nHH-0012\nHH-0013\nHH-0014\n", encoding="utf-8")
    code, out = run(folder, "device", "provision", "--csv", str(rows))
    assert code == 3, out
    assert "line 4: HH-0013: its bundle cannot be written" in out
    assert "the 2 handhelds before it were taken back" in out
    home = init(folder)
    assert home.store.all("SELECT device_id FROM devices") == []
    accounts = read_file(folder / ACCOUNTS_FILE).by_name
    assert not any(name.startswith("HH-") for name in accounts)
    assert sorted(os.listdir(folder / "bundles")) == ["HH-0013"]
    undone = [r[0] for r in home.store.all("SELECT device FROM audit WHERE action = 'device-provision-undone'"
                                           " ORDER BY seq")]
    assert undone == ["HH-0013", "HH-0012", "HH-0011"]


def test_bundles_are_owner_only_even_in_a_folder_left_open(folder: Path) -> None:
    out = folder / "bundles"
    out.mkdir(mode=0o755)
    os.chmod(out, 0o755)
    old = os.umask(0)
    try:
        assert run(folder, "device", "provision", "HH-0001")[0] == 0
    finally:
        os.umask(old)
    for path in (out, out / "HH-0001"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((out / "HH-0001" / "provision.json").stat().st_mode) == 0o600
