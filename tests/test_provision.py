"""Provisioning, revoking, suspending and rotating handhelds, end to end: the
gateway registry, a real broker (Mosquitto with the shipped config and
dynsec, or the embedded broker through its accounts file), the firmware in
the handheld simulator, and the running gateway service."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from firmware import app as appmod
from gateway import provision as ops
from gateway import registry
from gateway.broker_accounts import ACCOUNTS_FILE
from gateway.home import Home
from protocol import topics
from tests.fixtures.brokers import EmbeddedBrokerHandle, MqttProbe
from tests.fixtures.gateway import start_gateway
from tools.simulator import Handheld

pytestmark = pytest.mark.mosquitto


class Site:
    """A gateway home wired to one broker, as `veilpost device ...` sees it."""

    def __init__(self, home: Home, broker: Any) -> None:
        self.home, self.broker = home, broker
        folder = home.config.home / ops.BROKER_DIR
        folder.mkdir(exist_ok=True)
        if broker.kind == "mosquitto":
            user, password = broker.admin_credentials
            (folder / "admin.secret").write_text(f"{user}\n{password}\n")
            shutil.copy(broker.ca_file, folder / "ca.crt")
            home.config.mqtt.broker, home.config.mqtt.port = broker.host, broker.port
            device_broker = f"{broker.host}:{broker.tls_port}"
        else:
            device_broker = f"{broker.host}:{broker.port}"
        self.link = ops.open_broker(home, device_broker=device_broker)
        self.out = home.config.home / "bundles"
        self.service: Any = None

    def provision(self, device_id: str) -> dict[str, Any]:
        bundle = ops.provision(self.home, self.link, device_id, self.out, model="test-handheld",
                               actor="it:test")
        return json.loads((bundle / "provision.json").read_text())

    def handheld(self, doc: dict[str, Any]) -> Handheld:
        """The firmware, in the simulator, set up from its bundle as on the device."""
        config = json.loads(json.dumps(doc))
        if "tls" in config["mqtt"]:
            config["mqtt"]["tls"] = {"cafile": str(self.out / doc["device_id"] / "ca.crt")}
        return Handheld(config, home=self.home.config.home / ("hh-" + doc["device_id"]), timeout=5)

    def start_gateway(self) -> None:
        self.service = start_gateway(self.home, self.broker)

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        self.link.close()


@pytest.fixture(params=["mosquitto", "embedded"])
def site(request: pytest.FixtureRequest, gateway_home: Home) -> Iterator[Site]:
    if request.param == "mosquitto":
        broker = request.getfixturevalue("mosquitto_broker")
    else:
        broker = EmbeddedBrokerHandle(gateway_home.config.home / ACCOUNTS_FILE)
        broker.start()
    s = Site(gateway_home, broker)
    yield s
    s.close()
    if request.param == "embedded":
        broker.stop()


def audit_actions(home: Home, device_id: str) -> list[str]:
    return [str(r[0]) for r in home.store.all("SELECT action FROM audit WHERE device = ? ORDER BY seq",
                                              device_id)]


def test_provisioned_handheld_connects_with_its_bundle(site):
    doc = site.provision("hh-001")
    bundle = site.out / "hh-001"
    assert stat.S_IMODE(os.stat(bundle / "provision.json").st_mode) == 0o600
    assert bytes.fromhex(doc["master_secret"]) == registry.device_secret(
        site.home.store, site.home.keys.kek, "hh-001")
    assert registry.device_state(site.home.store, "hh-001") == "provisioned"
    assert audit_actions(site.home, "hh-001") == ["device-provision"]
    if site.broker.kind == "mosquitto":
        assert doc["mqtt"]["port"] == site.broker.tls_port and (bundle / "ca.crt").exists()
    hh = site.handheld(doc)
    assert hh.app.online and hh.app.state == appmod.BADGE
    hh.close()


def test_provisioning_an_existing_device_is_refused_and_changes_nothing(site):
    first = site.provision("hh-001")
    with pytest.raises(ops.ProvisionError, match="already exists"):
        site.provision("hh-001")
    probe = MqttProbe(site.broker, "hh-001", first["mqtt"]["password"])
    assert probe.connected  # the first credentials still work
    probe.close()


def test_a_broker_refusal_leaves_no_device_in_the_registry(site):
    site.link.admin.add_device("hh-009", "left-over-password-from-before")
    with pytest.raises(ops.ProvisionError, match="hh-009"):
        site.provision("hh-009")
    assert registry.device_state(site.home.store, "hh-009") is None


@pytest.mark.parametrize("bad", ["hh/+", "", "x" * 33])
def test_a_bad_device_id_is_refused_before_anything_is_written(site, bad):
    with pytest.raises(ops.ProvisionError):
        site.provision(bad)
    assert site.home.store.one("SELECT count(*) FROM devices")[0] == 0


def _step_in_background(hh: Handheld) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            hh.step()
            time.sleep(0.002)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread


def test_revoking_a_connected_handheld_wipes_kicks_and_shuts_it_out(site):
    doc = site.provision("hh-001")
    registry.set_device_state(site.home.store, "hh-001", "active")
    site.start_gateway()
    hh = site.handheld(doc)
    stop, stepper = _step_in_background(hh)
    try:
        report = ops.revoke(site.home, site.link, "hh-001", "lost on route R-07", actor="it:test")
    finally:
        stop.set()
        stepper.join()
    print(f"\n[{site.broker.kind}] revoke: deny-list {report.denied_ms:.1f} ms, wipe posted "
          f"{report.wipe_posted_ms:.1f} ms (acknowledged: {report.wipe_acked}), "
          f"kicked {report.kicked_ms:.1f} ms")
    assert report.problems == []
    assert report.wipe_acked
    hh.wait(lambda: hh.app.state == appmod.WIPED, "be wiped")
    assert hh.hal.keystore.get("master") is None
    assert hh.app.master is None or not any(hh.app.master)
    assert registry.device_state(site.home.store, "hh-001") == "revoked"
    assert audit_actions(site.home, "hh-001")[-2:] == ["device-revoke", "device-revoked"]
    again = MqttProbe(site.broker, "hh-001", doc["mqtt"]["password"])
    assert not again.connected
    hh.close()


def test_a_connected_session_is_kicked_by_the_revoke(site):
    doc = site.provision("hh-001")
    probe = MqttProbe(site.broker, "hh-001", doc["mqtt"]["password"], client_id="hh-001")
    assert probe.connected
    started = time.monotonic()
    report = ops.revoke(site.home, site.link, "hh-001", "account sold", ack_wait=0, actor="it:test")
    assert probe.wait_disconnected(timeout=5)
    print(f"\n[{site.broker.kind}] revoke command -> session dropped: "
          f"{(probe.disconnected_at - started) * 1000:.1f} ms (report: kicked at {report.kicked_ms:.1f} ms)")
    # Not acknowledged: quarantined, not disabled. It may come back for the wipe and nothing else.
    assert report.quarantined
    back = MqttProbe(site.broker, "hh-001", doc["mqtt"]["password"], client_id="hh-001")
    assert back.connected
    assert back.subscribe(topics.down("hh-001")) == 0x80
    assert back.subscribe(topics.cmd("hh-001")) in (0, 1)
    wipe = back.next_message(timeout=5)
    assert wipe is not None and wipe.retain and wipe.topic == topics.cmd("hh-001")
    back.close()


def test_the_gateway_refuses_a_revoked_handheld_that_gets_past_the_broker(site):
    from tests.fixtures.gateway import Handheld as RawHandheld

    doc = site.provision("hh-001")
    registry.set_device_state(site.home.store, "hh-001", "active")
    site.start_gateway()
    ops.revoke(site.home, site.link, "hh-001", "stolen", ack_wait=0, actor="it:test")
    site.link.admin.enable("hh-001")  # as if the broker let it in anyway (dynsec's identity bug)
    raw = RawHandheld(site.broker, "hh-001", bytes.fromhex(doc["master_secret"]),
                      credentials=("hh-001", doc["mqtt"]["password"]))
    try:
        raw.send("hello", {"device": "hh-001", "fw": "test"})
        raw.send("login", {"badge": "C-1", "pin_proof": b"1234"})
        heard = [name for name, _f in iter(lambda: raw.recv(timeout=1.0), None)]
        assert heard in ([], ["command"]), f"the gateway answered a revoked handheld: {heard}"
    finally:
        raw.close()


def test_an_offline_handheld_connecting_hours_later_is_wiped_and_then_refused(site):
    doc = site.provision("hh-001")
    report = ops.revoke(site.home, site.link, "hh-001", "not returned", ack_wait=0, actor="it:test")
    assert report.wipe_posted_ms > 0 and not report.wipe_acked and report.quarantined
    assert report.problems == []
    assert not site.link.admin.is_disabled("hh-001")
    # Five hours later (the handheld's clock), it comes back in range.
    hh = site.handheld(doc)
    hh.advance(5 * 3600)
    hh.wait(lambda: hh.app.state == appmod.WIPED, "be wiped by the retained command")
    assert hh.hal.keystore.get("master") is None
    hh.close()
    revoked_at = time.time()
    assert ops.end_quarantines(site.home, site.link, now=revoked_at + 3600, actor="it:test") == []  # not yet
    later = revoked_at + ops.QUARANTINE_SECONDS + 1
    assert ops.end_quarantines(site.home, site.link, now=later, actor="it:test") == ["hh-001"]
    assert site.link.admin.is_disabled("hh-001")
    assert not MqttProbe(site.broker, "hh-001", doc["mqtt"]["password"]).connected
    assert audit_actions(site.home, "hh-001")[-1] == "device-quarantine-end"
    assert ops.end_quarantines(site.home, site.link, now=revoked_at + ops.QUARANTINE_SECONDS + 2,
                                actor="it:test") == []


def test_suspend_refuses_the_handheld_and_resume_lets_it_back(site):
    doc = site.provision("hh-001")
    password = doc["mqtt"]["password"]
    probe = MqttProbe(site.broker, "hh-001", password)
    ops.suspend(site.home, site.link, "hh-001", "courier on leave", actor="it:test")
    assert probe.wait_disconnected(timeout=5)
    assert registry.device_state(site.home.store, "hh-001") == "suspended"
    assert not MqttProbe(site.broker, "hh-001", password).connected
    with pytest.raises(ops.ProvisionError, match="it is suspended"):
        ops.suspend(site.home, site.link, "hh-001", "again", actor="it:test")
    ops.resume(site.home, site.link, "hh-001", actor="it:test")
    back = MqttProbe(site.broker, "hh-001", password)
    assert back.connected
    back.close()
    assert registry.device_state(site.home.store, "hh-001") == "active"


def test_a_revoked_handheld_cannot_be_resumed(site):
    site.provision("hh-001")
    ops.revoke(site.home, site.link, "hh-001", "stolen", ack_wait=0, actor="it:test")
    with pytest.raises(ops.ProvisionError, match="it is revoked"):
        ops.resume(site.home, site.link, "hh-001", actor="it:test")


def test_rotating_a_live_handhelds_keys_loses_no_queued_message(site):
    doc = site.provision("hh-001")
    old = doc["mqtt"]["password"]
    device = MqttProbe(site.broker, "hh-001", old, client_id="hh-001", clean_session=False)
    gateway = MqttProbe(site.broker, *site.broker.gateway_credentials)
    try:
        assert device.subscribe("vp/v1/d/hh-001/down") == 1
        gateway.publish("vp/v1/d/hh-001/down", b"before")
        assert device.next_message().payload == b"before"
        bundle = ops.rotate_broker_password(site.home, site.link, "hh-001", site.out, actor="it:test")
        assert device.wait_disconnected(timeout=5), "the session on the old password went on"
        for i in range(5):
            gateway.publish("vp/v1/d/hh-001/down", b"queued %d" % i)
        assert not MqttProbe(site.broker, "hh-001", old, client_id="hh-001", clean_session=False).connected
        new = json.loads((bundle / "provision.json").read_text())["mqtt"]["password"]
        assert new != old
        device = MqttProbe(site.broker, "hh-001", new, client_id="hh-001", clean_session=False)
        assert device.connected
        got = [m.payload for m in iter(lambda: device.next_message(timeout=1.0), None)]
        assert got == [b"queued %d" % i for i in range(5)]
    finally:
        device.close()
        gateway.close()
