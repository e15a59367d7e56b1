"""The gateway's `veilpost` commands, run through click as a user would."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from gateway import registry, sentinel
from tests.fixtures.gateway import it_env, own_embedded_port
from tools.cli import main

REPO = Path(__file__).resolve().parents[1]


def _cli(home, *args, input=None):
    return CliRunner().invoke(main, ["--home", str(home.config.home), *args], input=input,
                              env=it_env(home.config.home))


def test_init_twice_keeps_the_keys_and_files_are_private(tmp_path):
    runner = CliRunner()
    home = tmp_path / "vp"
    assert runner.invoke(main, ["--home", str(home), "init"]).exit_code == 0
    kek = sorted((home / "keys" / "kek").glob("*.key"))
    assert runner.invoke(main, ["--home", str(home), "init"]).exit_code == 0
    assert sorted((home / "keys" / "kek").glob("*.key")) == kek
    assert stat.S_IMODE(os.stat(home / "veilpost.db").st_mode) == 0o600
    assert "durability" in (home / "veilpost.toml").read_text()


def test_audit_verify_names_the_first_bad_entry_and_exits_non_zero(depot):
    h = depot.home
    depot.scan(depot.route[0])
    assert _cli(h, "courier", "add", "C-300", "--pin", "9999", "--depot", "D-1").exit_code == 0
    ok = _cli(h, "audit", "verify")
    assert ok.exit_code == 0 and "intact: 1 entries" in ok.output
    with h.store.transaction() as tx:
        h.audit.append(tx, 5.0, "x", "", "test", "", "ok", "")
    h.store.run("UPDATE audit SET detail = 'edited' WHERE seq = 1")
    bad = _cli(h, "audit", "verify")
    assert bad.exit_code == 1 and "entry 1" in bad.output
    export = _cli(h, "audit", "export")
    assert [json.loads(line)["seq"] for line in export.output.splitlines()] == [1, 2]


def test_incidents_list_show_export(depot):
    h = depot.home
    with h.store.transaction() as tx:
        tx.run("INSERT INTO releases (account, shift_start, tracking_no, field, device_id, depot, path, at,"
               " audit_seq) VALUES ('C-112', 0, ?, 2, 'HH-1', 'D-1', 'online', ?, 0)",
               depot.route[0], depot.now)
        alarm = sentinel.trip(tx, h.audit, "C-112", "HH-1", "test trigger", depot.now + 1, h.config.sentinel)
    listed = _cli(h, "incidents", "list")
    assert alarm.incident_id in listed.output and "1 parcels" in listed.output
    shown = _cli(h, "incidents", "show", alarm.incident_id)
    assert depot.route[0] in shown.output and "test trigger" in shown.output
    exported = json.loads(_cli(h, "incidents", "export", alarm.incident_id).output)
    assert exported["parcels"][0]["tracking_no"] == depot.route[0] and exported["courier"] == "C-112"
    assert _cli(h, "incidents", "show", "INC-NOPE").exit_code != 0


def test_suspension_lift_needs_an_officer_pin(depot):
    h = depot.home
    with h.store.transaction() as tx:
        sentinel.trip(tx, h.audit, "C-112", "HH-1", "test", depot.now, h.config.sentinel)
    assert _cli(h, "officer", "add", "Officer Testa", "--pin", "246810").exit_code == 0
    refused = _cli(h, "suspension", "lift", "--officer", "Officer Testa", "--courier", "C-112",
                   "--reason", "checked", "--pin", "000000")
    assert refused.exit_code != 0 and "refused" in refused.output
    lifted = _cli(h, "suspension", "lift", "--officer", "Officer Testa", "--courier", "C-112", "--device",
                  "HH-1", "--reason", "checked with depot manager", input="246810\n")
    assert lifted.exit_code == 0, lifted.output
    assert registry.courier_state(h.store, "C-112") == "active"


def test_keys_rotate_rewraps_and_retires(depot):
    h = depot.home
    old = h.keys.kek.current_id()
    out = _cli(h, "keys", "rotate")
    assert out.exit_code == 0 and "retired " + old in out.output
    assert old not in h.keys.kek.ids()
    assert h.vault.read(h.store, depot.route[0], [2]) == {2: "17000001234"}
    assert len(registry.device_secret(h.store, h.keys.kek, "HH-1")) == 32


def test_case_open_and_two_approvals(depot):
    h = depot.home
    for name, pin in (("Officer A", "111111"), ("Officer B", "222222")):
        assert _cli(h, "officer", "add", name, "--pin", pin).exit_code == 0
    assert _cli(h, "operator", "add", "Desk Z", "--role", "staff").exit_code == 0
    refused = _cli(h, "case", "open", "CASE-7", depot.route[0], "--reason", "complaint", "--for", "C-112",
                   "--as", "Nobody Z")
    assert refused.exit_code == 1 and "Nobody Z is not on the list" in refused.output
    opened = _cli(h, "case", "open", "CASE-7", depot.route[0], "--reason", "complaint", "--for", "C-112",
                  "--fields", "2", "--as", "Desk Z")
    assert opened.exit_code == 0, opened.output
    first = _cli(h, "case", "approve", "CASE-7", "--officer", "Officer A", "--pin", "111111")
    assert "one more officer needed" in first.output
    again = _cli(h, "case", "approve", "CASE-7", "--officer", "Officer A", "--pin", "111111")
    assert again.exit_code != 0
    second = _cli(h, "case", "approve", "CASE-7", "--officer", "Officer B", "--pin", "222222")
    assert "approved; parcel open until" in second.output


def test_gateway_run_starts_the_embedded_broker_and_stops_cleanly(gateway_home):
    home = gateway_home.config.home
    own_embedded_port(home)
    proc = subprocess.Popen([sys.executable, "-m", "tools", "--home", str(home), "gateway", "run"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "mqtt-connected" in line:
                break
        assert any("embedded-broker" in line for line in lines), lines
        assert any("mqtt-connected" in line for line in lines), lines
        from gateway.broker_accounts import read_endpoint
        assert read_endpoint(home) is not None  # `veilpost device add` can find the broker
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 0
    assert _cli(gateway_home, "audit", "verify").exit_code == 0
