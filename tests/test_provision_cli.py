"""The `veilpost device ...` and `veilpost courier ...` commands, run through
click against a home whose embedded broker keeps its accounts in a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import registry
from gateway.broker_accounts import ACCOUNTS_FILE
from gateway.home import Home
from tests.fixtures.brokers import EmbeddedBrokerHandle, MqttProbe
from tests.fixtures.gateway import it_env
from tools.cli import main


@pytest.fixture
def home_with_broker(gateway_home: Home) -> Iterator[tuple[Home, EmbeddedBrokerHandle]]:
    broker = EmbeddedBrokerHandle(gateway_home.config.home / ACCOUNTS_FILE)
    broker.start()
    yield gateway_home, broker
    broker.stop()


def run(home: Home, *args: str, input: str | None = None):
    result = CliRunner().invoke(main, ["--home", str(home.config.home), *args], input=input,
                                env=it_env(home.config.home))
    return result


def test_batch_provisioning_with_a_bad_row_provisions_nothing_and_names_it(home_with_broker, tmp_path):
    home, broker = home_with_broker
    rows = tmp_path / "fleet.csv"
    rows.write_text("device_id,model\nhh-101,TS-1\nhh/102,TS-1\nhh-103,\n", encoding="utf-8")
    result = run(home, "device", "provision", "--csv", str(rows))
    assert result.exit_code == 3, result.output
    assert "line 3  hh/102  device id 'hh/102' is not" in result.output
    assert "1 of 3 rows are wrong, nothing provisioned" in result.output
    assert home.store.all("SELECT device_id FROM devices") == []
    accounts = json.loads((home.config.home / ACCOUNTS_FILE).read_text())["clients"]
    assert not any(name.startswith("hh-") for name in accounts)
    rows.write_text("device_id,model\nhh-101,TS-1\nhh-102,TS-1\nhh-103,\n", encoding="utf-8")
    result = run(home, "device", "provision", "--csv", str(rows))
    assert result.exit_code == 0, result.output
    assert "3 handhelds provisioned" in result.output
    for device_id in ("hh-101", "hh-102", "hh-103"):
        assert registry.device_state(home.store, device_id) == "provisioned"
        doc = json.loads((home.config.home / "bundles" / device_id / "provision.json").read_text())
        probe = MqttProbe(broker, device_id, doc["mqtt"]["password"])
        assert probe.connected
        probe.close()


def test_a_csv_without_a_device_id_column_is_refused(home_with_broker, tmp_path):
    home, _ = home_with_broker
    rows = tmp_path / "fleet.csv"
    rows.write_text("id,model\nhh-1,TS-1\n", encoding="utf-8")
    result = run(home, "device", "provision", "--csv", str(rows))
    assert result.exit_code != 0 and "device_id" in result.output


def test_provision_needs_an_id_or_a_csv(home_with_broker):
    home, _ = home_with_broker
    assert run(home, "device", "provision").exit_code == 2


def test_revoke_reports_each_step_and_list_shows_it(home_with_broker):
    home, _ = home_with_broker
    assert run(home, "device", "provision", "hh-201").exit_code == 0
    assert run(home, "device", "provision", "hh-202").exit_code == 0
    result = run(home, "device", "revoke", "hh-201", "--reason", "lost on route R-07")
    assert result.exit_code == 0, result.output
    assert "hh-201 revoked" in result.output and "kicked after" in result.output
    listing = run(home, "device", "list")
    assert listing.exit_code == 0, listing.output
    lines = {line.split()[1]: line for line in listing.output.splitlines() if "hh-20" in line}
    # Offline, so not acknowledged: quarantined until `device end-quarantine` disables it.
    assert "revoked" in lines["hh-201"] and "quarantined" in lines["hh-201"]
    ended = run(home, "device", "end-quarantine", "--after", "0")
    assert ended.exit_code == 0 and "broker client disabled: hh-201" in ended.output, ended.output
    listing = run(home, "device", "list")
    lines = {line.split()[1]: line for line in listing.output.splitlines() if "hh-20" in line}
    assert "revoked" in lines["hh-201"] and "disabled" in lines["hh-201"]
    assert "provisioned" in lines["hh-202"] and "enabled" in lines["hh-202"]


def test_revoking_an_unknown_device_is_a_clear_error(home_with_broker):
    home, _ = home_with_broker
    result = run(home, "device", "revoke", "hh-404", "--reason", "typo")
    assert result.exit_code == 1 and "no device hh-404" in result.output


def test_device_commands_work_with_no_broker_running(gateway_home):
    result = run(gateway_home, "device", "list")
    assert result.exit_code == 0 and "no handhelds" in result.output, result.output
    result = run(gateway_home, "device", "provision", "hh-001")
    assert result.exit_code == 0, result.output
    assert "broker 127.0.0.1:18830" in result.output  # [mqtt] embedded_port, not a running broker's


def test_courier_suspend_resume_and_reset_pin(home_with_broker):
    home, _ = home_with_broker
    registry.add_courier(home.store, "C-300", "2468", "D-1")
    assert run(home, "courier", "suspend", "C-300", "--reason", "account shared").exit_code == 0
    assert registry.courier_state(home.store, "C-300") == "suspended"
    assert run(home, "courier", "resume", "C-300").exit_code == 0
    assert registry.courier_state(home.store, "C-300") == "active"
    result = run(home, "courier", "reset-pin", "C-300", input="13579\n13579\n")
    assert result.exit_code == 0, result.output
    assert registry.verify_pin(home.store, "C-300", "13579")
    assert not registry.verify_pin(home.store, "C-300", "2468")
    assert run(home, "courier", "reset-pin", "C-300", "--pin", "12").exit_code == 1
    assert run(home, "courier", "suspend", "C-404", "--reason", "x").exit_code == 1
    actions = [r[0] for r in home.store.all("SELECT action FROM audit ORDER BY seq")]
    assert actions[-3:] == ["courier-suspend", "courier-resume", "courier-reset-pin"]
    assert not any("C-300" in str(r[0]) for r in home.store.all("SELECT detail FROM audit"))


def test_deploy_runs_mpremote_and_shreds_the_secret(home_with_broker, monkeypatch, tmp_path):
    from gateway import provision as ops
    from tools.cli import device as device_cli
    from tools.cli import firmware as firmware_cli

    home, _ = home_with_broker
    link = ops.open_broker(home)
    bundle = ops.provision(home, link, "hh-301", tmp_path / "bundles", actor="it:test")
    build = Path("build/firmware")
    monkeypatch.setattr(firmware_cli, "check_port", lambda port: None)
    monkeypatch.setattr(firmware_cli, "build", lambda out, repo=None: [])
    monkeypatch.chdir(tmp_path)
    (tmp_path / build).mkdir(parents=True)
    (tmp_path / build / "main.py").write_text("")
    ran: list[list[str]] = []
    device_cli.deploy(bundle, "/dev/ttyFAKE0", run=lambda cmd: ran.append(cmd) or 0)
    assert any("cp" in cmd and str(bundle / "provision.json") in cmd for cmd in ran)
    assert not (bundle / "provision.json").exists()
    link.close()


def test_revoke_with_the_broker_down_still_denies_the_device_at_the_gateway(home_with_broker):
    home, broker = home_with_broker
    assert run(home, "device", "provision", "hh-401").exit_code == 0
    broker.stop()
    result = run(home, "device", "revoke", "hh-401", "--reason", "stolen")
    assert result.exit_code == 1
    assert "problem: wipe command not posted" in result.output
    assert registry.device_state(home.store, "hh-401") == "revoked"
    broker.start()  # the fixture stops it again


def test_courier_resume_while_a_sentinel_incident_is_open_says_why(gateway_home: Home):
    registry.add_courier(gateway_home.store, "C-301", "2468", "D-1")
    registry.set_courier_state(gateway_home.store, "C-301", "suspended")
    gateway_home.store.run("INSERT INTO incidents (incident_id, opened, courier_id, device_id,"
                           " trigger_reason, parcels, state)"
                           " VALUES ('INC-TEST1', 0, 'C-301', '', 'budget', '[]', 'open')")
    gateway_home.store.run("INSERT INTO incident_holds (incident_id, kind, ident, state)"
                           " VALUES ('INC-TEST1', 'courier', 'C-301', 'held')")
    result = run(gateway_home, "courier", "resume", "C-301")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "incident INC-TEST1" in result.output and "suspension lift" in result.output
    assert registry.courier_state(gateway_home.store, "C-301") == "suspended"


def test_courier_reset_pin_goes_through_the_registry(gateway_home: Home):
    registry.add_courier(gateway_home.store, "C-302", "2468", "D-1")
    assert run(gateway_home, "courier", "reset-pin", "C-302", "--pin", "97531").exit_code == 0
    assert registry.verify_pin(gateway_home.store, "C-302", "97531")
    assert not registry.verify_pin(gateway_home.store, "C-302", "2468")
    with pytest.raises(registry.RegistryError, match="4 to 12 digits"):
        registry.set_pin(gateway_home.store, "C-302", "12ab")


def test_rotating_the_keys_of_a_revoked_device_is_refused_on_the_command_line(home_with_broker):
    home, _ = home_with_broker
    assert run(home, "device", "provision", "hh-201").exit_code == 0
    assert run(home, "device", "revoke", "hh-201", "--reason", "lost").exit_code in (0, 1)
    result = run(home, "device", "rotate-keys", "hh-201", "--wait", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "hh-201 is revoked" in result.output
