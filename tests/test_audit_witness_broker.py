"""The witness on a real broker (Mosquitto with dynamic security, and the
embedded amqtt broker): the running gateway publishes a signed checkpoint
every [audit] checkpoint_interval and at shutdown, retained on
vp/v1/audit/checkpoint and POSTed to its witness URLs; a witness under the
read-only account vp-witness keeps them; `veilpost audit verify --witness`
passes, then fails naming the checkpoint once the log is cut."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.broker_access import new_password
from gateway.witness import BrokerSource, Witness, WitnessLog
from tests.fixtures.brokers import MqttProbe
from tests.fixtures.gateway import start_gateway
from tools.cli import main


def _wait(condition, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _append(home, n):
    with home.store.transaction() as tx:
        for i in range(n):
            home.audit.append(tx, time.time(), home.audit.person("courier", "C-112"), "HH-1", "reveal",
                              "VP%010d" % i, "granted", {"fields": [2]})


def _witness(broker, home, folder, password, listen=None):
    source = BrokerSource(broker.host, broker.port, "vp-witness", password)
    w = Witness(WitnessLog(folder, home.keys.public_key()), listen=listen, broker=source)
    w.start()
    return w


def _cli(home, *args):
    result = CliRunner().invoke(main, ["--home", str(home.config.home), *args])
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


@pytest.fixture(params=["sqlite", "postgresql"])
def any_home(request):
    """The test's home on SQLite, then on PostgreSQL."""
    return request.getfixturevalue("gateway_home" if request.param == "sqlite" else "pg_home")


def test_the_gateway_sends_checkpoints_that_a_witness_on_the_broker_keeps(any_home, mqtt_broker,
                                                                          tmp_path: Path):
    home, broker = any_home, mqtt_broker
    password = new_password()
    broker.admin.add_witness("vp-witness", password)
    # The witness account reads the checkpoints and nothing else.
    probe = MqttProbe(broker, "vp-witness", password)
    assert probe.connected
    assert probe.subscribe("vp/v1/audit/checkpoint") == 1
    assert probe.subscribe("vp/v1/d/+/up") == 0x80 and probe.subscribe("#") == 0x80
    probe.close()
    http = _witness(broker, home, tmp_path / "w-http", password, listen=("127.0.0.1", 0))
    home.config.audit.checkpoint_interval = 1
    home.config.audit.witness_urls = ["http://127.0.0.1:%d/checkpoint" % http.port]
    _append(home, 5)
    service = start_gateway(home, broker)
    try:
        _wait(lambda: 5 in http.log.held, "the first periodic checkpoint")
        _append(home, 3)
        _wait(lambda: 8 in http.log.held, "the next checkpoint")
        # A witness that starts later still gets the newest, retained.
        late = _witness(broker, home, tmp_path / "w-late", password)
        _wait(lambda: 8 in late.log.held, "the retained checkpoint")
        _append(home, 2)
    finally:
        service.stop()
    _wait(lambda: 10 in late.log.held, "the checkpoint made at shutdown")
    assert 10 in http.log.held  # POSTed before stop() returned
    late.stop()
    http.stop()
    code, out = _cli(home, "audit", "verify", "--witness", str(tmp_path / "w-late"))
    assert code == 0 and "10 entries" in out and "witnessed checkpoints matched" in out, out
    with home.store.transaction() as tx:
        tx.run("DELETE FROM audit WHERE seq > 7")
        tx.run("DELETE FROM checkpoints WHERE seq > 7")
    assert _cli(home, "audit", "verify")[0] == 0  # the database alone cannot tell
    code, out = _cli(home, "audit", "verify", "--witness", str(tmp_path / "w-late"))
    assert code == 1 and "witnessed checkpoint at entry 8" in out and "missing" in out, out


def test_veilpost_audit_witness_runs_as_a_process_on_both_paths(gateway_home, mqtt_broker, tmp_path: Path):
    import re
    import subprocess
    import sys

    home, broker = gateway_home, mqtt_broker
    password = new_password()
    broker.admin.add_witness("vp-witness", password)
    (tmp_path / "witness.secret").write_text(password + "\n")
    code, key = _cli(home, "audit", "key")
    assert code == 0
    (tmp_path / "gateway.pub").write_text(key)
    repo = Path(__file__).resolve().parents[1]
    store = tmp_path / "witness-store"
    witness = subprocess.Popen(
        [sys.executable, "-m", "tools", "audit", "witness", "--store", str(store), "--key",
         "@" + str(tmp_path / "gateway.pub"), "--listen", "127.0.0.1:0", "--broker",
         "%s:%d" % (broker.host, broker.port), "--password-file", str(tmp_path / "witness.secret"),
         "--for", "60"], cwd=repo, stderr=subprocess.PIPE, text=True)
    try:
        assert witness.stderr is not None
        first = witness.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/checkpoint", first)
        assert found and "0 checkpoints" in first, first
        home.config.audit.checkpoint_interval = 1
        home.config.audit.witness_urls = ["http://127.0.0.1:%s/checkpoint" % found.group(1)]
        _append(home, 4)
        service = start_gateway(home, broker)
        try:
            _wait(lambda: (store / "checkpoints.jsonl").exists(), "the witness's first checkpoint")
        finally:
            service.stop()
        code, out = _cli(home, "audit", "verify", "--witness", "http://127.0.0.1:%s" % found.group(1))
        assert code == 0 and "1 witnessed checkpoints matched" in out, out
    finally:
        witness.terminate()
        witness.wait(10)
    assert witness.returncode == 0
