"""Rotating a live handheld's master secret over the air (docs/wire.md, "Key
rotation"), end to end: a real broker (Mosquitto with the shipped config, or
the embedded broker), the running gateway service, and the firmware in the
handheld simulator. Also: a sentinel suspension reaches the broker account."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from firmware import app as appmod
from firmware import i18n
from gateway import key_rotation, registry
from gateway import provision as ops
from gateway.aead import CryptographyAEAD
from gateway.broker_accounts import ACCOUNTS_FILE
from gateway.config import CONFIG_NAME, DEFAULT_TOML
from gateway.home import Home
from gateway.store_pg import PgStore
from protocol import labels, messages
from protocol.errors import BAD_KEY, ProtocolError
from protocol.session import GATEWAY, HANDHELD, Channel
from tests.fixtures.brokers import EmbeddedBrokerHandle, MqttProbe
from tests.fixtures.gateway import Depot
from tests.test_provision import Site
from tools.cli import main
from tools.simulator import Handheld

pytestmark = pytest.mark.mosquitto


@pytest.fixture(params=["mosquitto", "embedded", "embedded-postgresql"])
def site(request: pytest.FixtureRequest, gateway_home: Home) -> Iterator[Site]:
    if request.param == "mosquitto":
        broker = request.getfixturevalue("mosquitto_broker")
    else:
        if request.param == "embedded-postgresql":
            gateway_home = request.getfixturevalue("pg_home")
        broker = EmbeddedBrokerHandle(gateway_home.config.home / ACCOUNTS_FILE)
        broker.start()
    s = Site(gateway_home, broker)
    s.depot = Depot(gateway_home, time.time())  # type: ignore[attr-defined]
    yield s
    s.close()
    if request.param != "mosquitto":
        broker.stop()


def qr(site: Site, tracking_no: str) -> str:
    """The QR text of the parcel's label, printed by the gateway."""
    depot = site.depot  # type: ignore[attr-defined]
    printed = depot.__dict__.setdefault("printed", {})
    if tracking_no not in printed:
        printed[tracking_no] = labels.to_text(depot.label(tracking_no))
    return str(printed[tracking_no])


def live(site: Site, device_id: str = "hh-001") -> tuple[Handheld, dict[str, Any]]:
    doc = site.provision(device_id)
    if site.service is None:
        site.start_gateway()
    hh = site.handheld(doc)
    hh.wait(lambda: registry.device_state(site.home.store, device_id) == "active", "be activated")
    return hh, doc


def scans(site: Site, device_id: str) -> list[str]:
    """The device's scans at the gateway, in arrival order (SQLite's rowid;
    on PostgreSQL, sorted: the order is proved on SQLite)."""
    if isinstance(site.home.store, PgStore):
        return sorted(str(r[0]) for r in site.home.store.all(
            "SELECT tracking_no FROM scans WHERE device_id = ?", device_id))
    return [str(r[0]) for r in site.home.store.all(
        "SELECT tracking_no FROM scans WHERE device_id = ? ORDER BY rowid", device_id)]


def wait_for(cond: Any, what: str, hh: Handheld | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        if hh is not None:
            hh.step()
        time.sleep(0.01)


def test_rotating_a_live_handhelds_master_secret_loses_no_queued_scan(site):
    hh, doc = live(site)
    old_secret = bytes.fromhex(doc["master_secret"])
    route = site.depot.route
    try:
        hh.login("C-112", "4321")
        hh.scan_label(qr(site, route[0]))
        hh.go_offline()
        for t in route[1:4]:  # queued in flash, sealed only when sent
            assert hh.scan_label(qr(site, t))["tracking_no"] == t
        assert len(hh.app.queue) == 3
        result: dict[str, Any] = {}
        rotating = threading.Thread(target=lambda: result.update(
            report=key_rotation.rotate_keys(site.home, "hh-001", wait=20, actor="it:test")))
        rotating.start()
        # The command waits, retained, for the offline handheld.
        wait_for(lambda: getattr(registry.rotation(site.home.store, "hh-001"), "sent", None) is not None,
                 "the command")
        hh.go_online(wait_for_upload=False)
        wait_for(lambda: not rotating.is_alive(), "the rotation", hh, timeout=25)
        report = result["report"]
        assert report.switched_ms is not None and report.password_set
        # The broker kicked the session on the old password; it comes back on the new one.
        hh.wait(lambda: hh.app.online and not len(hh.app.queue), "reconnect and upload")
        for t in route[4:6]:  # online, under the new key
            hh.scan_label(qr(site, t))
        wait_for(lambda: len(scans(site, "hh-001")) == 6, "every scan at the gateway", hh)
        in_order = not isinstance(site.home.store, PgStore)
        assert scans(site, "hh-001") == (route[:6] if in_order else sorted(route[:6]))
        new_secret = registry.device_secret(site.home.store, site.home.keys.kek, "hh-001")
        assert new_secret != old_secret and hh.hal.keystore.get("master") == new_secret
        assert not hh.hal.keystore.get("next")
        assert hh.reveal(route[5], ["phone"], 1).shown["phone"]
        print(f"\nrotation on {site.broker.kind}: new key in use after {report.switched_ms:.0f} ms")
    finally:
        hh.close()


def test_after_the_grace_period_the_old_secret_is_refused(site):
    hh, doc = live(site)
    old_secret = bytes.fromhex(doc["master_secret"])
    try:
        result: dict[str, Any] = {}
        rotating = threading.Thread(target=lambda: result.update(
            report=key_rotation.rotate_keys(site.home, "hh-001", grace=3.0, wait=20, actor="it:test")))
        rotating.start()
        wait_for(lambda: not rotating.is_alive(), "the rotation", hh, timeout=25)
        assert result["report"].password_set
        hh.wait(lambda: hh.app.online, "reconnect with the new password")
        password = hh.config["mqtt"]["password"]
        assert password != doc["mqtt"]["password"]
        probe = MqttProbe(site.broker, "hh-001", password, client_id="hh-001-probe")
        old = Channel(old_secret, "hh-001", HANDHELD, aead=CryptographyAEAD(), send_seq=10_000)
        new = Channel(hh.hal.keystore.get("master"), "hh-001", HANDHELD, aead=CryptographyAEAD(),
                      send_seq=10_000)

        def fw() -> str:
            return str(site.home.store.one("SELECT fw FROM devices WHERE device_id = 'hh-001'")[0])

        def hello(ch: Channel, version: str) -> None:
            probe.publish("vp/v1/d/hh-001/up", ch.wrap("hello", {"device": "hh-001", "fw": version},
                                                       int(time.time())))
        try:
            hello(old, "old-key-in-grace")
            wait_for(lambda: fw() == "old-key-in-grace", "the old key to be accepted in the grace period")
            switched = registry.rotation(site.home.store, "hh-001").switched
            time.sleep(max(0.0, switched + 3.2 - time.time()))
            hello(old, "old-key-too-late")
            # A marker under the new key, handled after the late message: by then it was refused.
            probe.publish("vp/v1/d/hh-001/up", new.wrap("command_ack", {"id": 424242, "ok": True},
                                                         int(time.time())))

            def audit() -> list[str]:
                return [str(r[0]) + " " + str(r[1]) for r in site.home.store.all(
                    "SELECT action, detail FROM audit WHERE device = 'hh-001' ORDER BY seq")]
            wait_for(lambda: 'command-ack {"command":424242}' in audit(), "the new key's message")
            assert fw() == "old-key-in-grace"
            assert any(a.startswith("key-rotation") for a in audit())
            # The gateway's rotation tick (every 0.5 s) forgets the old secret once the grace is over.
            wait_for(lambda: registry.rotation(site.home.store, "hh-001").prev_wrapped is None,
                     "the old secret to be forgotten", timeout=5)
        finally:
            probe.close()
    finally:
        hh.close()


def test_a_forged_rotation_command_is_refused_by_the_handheld(site):
    hh, doc = live(site)
    try:
        forger = Channel(secrets.token_bytes(32), "hh-001", GATEWAY, aead=CryptographyAEAD(), send_seq=1000)
        evil = secrets.token_bytes(32)
        payload = forger.wrap("command", {"id": 7, "cmd": messages.CMD_CONFIG,
                                          "args": {"master_secret": evil}}, int(time.time()))
        operator = ops.Operator(site.link, "hh-001")
        try:
            operator.post(bytes(payload))
        finally:
            operator.close()
        wrong_key = i18n.error(hh.app.lang, BAD_KEY)  # the screen says it in the courier's language
        hh.wait(lambda: wrong_key in (hh.app.notice or ""), "the forged command to arrive")
        assert hh.hal.keystore.get("master") == bytes.fromhex(doc["master_secret"])
        assert not hh.hal.keystore.get("next")
        # Still on the old key: the gateway answers its reveal.
        hh.login("C-112", "4321")
        hh.scan_label(qr(site, site.depot.route[0]))
        assert hh.reveal(site.depot.route[0], ["phone"], 1).shown["phone"]
    finally:
        hh.close()


def test_rotating_a_revoked_handheld_is_refused_with_a_clear_error(site):
    site.provision("hh-001")
    ops.revoke(site.home, site.link, "hh-001", "lost on the route", ack_wait=0, actor="it:test")
    with pytest.raises(ops.ProvisionError, match="hh-001 is revoked"):
        key_rotation.rotate_keys(site.home, "hh-001", wait=0, actor="it:test")
    assert registry.rotation(site.home.store, "hh-001") is None


def test_a_second_rotation_while_one_waits_is_refused(gateway_home):
    registry.add_device(gateway_home.store, gateway_home.keys.kek, "hh-002", "test")
    registry.begin_rotation(gateway_home.store, gateway_home.keys.kek, "hh-002")
    with pytest.raises(registry.RegistryError, match="already waiting"):
        registry.begin_rotation(gateway_home.store, gateway_home.keys.kek, "hh-002")
    with pytest.raises(registry.RegistryError, match="no device"):
        registry.begin_rotation(gateway_home.store, gateway_home.keys.kek, "hh-nope")


def test_a_sentinel_suspension_disables_the_broker_account_until_lifted(site, caplog):
    site.home.config.sentinel.per_minute = 1
    hh, doc = live(site)
    registry.add_officer(site.home.store, "Testy McTestface", "246810")
    try:
        hh.login("C-112", "4321")
        route = site.depot.route
        hh.scan_label(qr(site, route[0]))
        assert hh.reveal(route[0], ["phone"], 1)
        hh.scan_label(qr(site, route[1]))
        # The second reveal in a minute trips the budget; its denial may not
        # reach a handheld the broker is already kicking.
        hh._keys([appmod.KEY_REVEAL, "2", appmod.KEY_ENTER, "1"])
        hh.step()
        wait_for(lambda: any("ALARM" in r.getMessage() for r in caplog.records), "the alarm", hh)
        alarm = next(r.getMessage() for r in caplog.records if "ALARM" in r.getMessage())
        assert '"broker": "disabled"' in alarm
        assert registry.device_state(site.home.store, "hh-001") == "suspended"
        assert site.link.admin.is_disabled("hh-001")
        hh.wait(lambda: not hh.app.online, "be kicked by the broker")
        if site.broker.kind == "mosquitto":  # as the depot's config file says it
            config = site.home.config.home / CONFIG_NAME
            text = config.read_text() if config.exists() else DEFAULT_TOML
            config.write_text(text.replace('broker = "embedded"', 'broker = "%s"' % site.broker.host)
                              .replace("port = 1883\n", "port = %d\n" % site.broker.port, 1))
        lifted = CliRunner().invoke(main, ["--home", str(site.home.config.home), "suspension", "lift",
                                           "--officer", "Testy McTestface", "--courier", "C-112",
                                           "--device", "hh-001", "--reason", "checked with the depot",
                                           "--pin", "246810"])
        assert lifted.exit_code == 0, lifted.output
        assert "broker account of hh-001 enabled again" in lifted.output
        assert not site.link.admin.is_disabled("hh-001")
        assert registry.device_state(site.home.store, "hh-001") == "active"
        hh.go_online(wait_for_upload=False)
        assert hh.app.online
    finally:
        hh.close()


def test_without_broker_admin_credentials_the_alarm_says_the_account_stays(sim_depot, caplog):
    sim_depot.home.config.sentinel.per_minute = 1
    hh = sim_depot.handheld("SIM-1")
    hh.login(sim_depot.badge, sim_depot.pin)
    hh.scan_label(sim_depot.labels[sim_depot.route[0]])
    assert hh.reveal(sim_depot.route[0], ["phone"], 1)
    hh.scan_label(sim_depot.labels[sim_depot.route[1]])
    assert hh.reveal(sim_depot.route[1], ["phone"], 1).denied
    wait_for(lambda: any("ALARM" in r.getMessage() for r in caplog.records), "the alarm")
    alarm = next(r.getMessage() for r in caplog.records if "ALARM" in r.getMessage())
    assert "no broker admin credentials; refused at the gateway" in alarm
    assert registry.device_state(sim_depot.home.store, "SIM-1") == "suspended"


def test_a_second_gateway_on_the_same_store_follows_the_switch(gateway_home):
    from gateway.handlers import Handlers

    store, kek, now = gateway_home.store, gateway_home.keys.kek, int(time.time())
    secret = registry.add_device(store, kek, "hh-003", "test")
    a, b = Handlers(gateway_home), Handlers(gateway_home)
    old = Channel(secret, "hh-003", HANDHELD)

    def receive(h: Handlers, ch: Channel) -> str:
        with store.transaction() as tx:
            h.begin()
            payload = ch.wrap("hello", {"device": "hh-003", "fw": "1"}, now)
            name = h.unwrap(tx, "hh-003", h.channel(tx, "hh-003"), payload, now)[0]
            h.save_windows(tx)
        return name

    assert receive(a, old) == receive(b, old) == "hello"  # both have the old key cached
    registry.begin_rotation(store, kek, "hh-003", grace=0)
    new = Channel(registry.rotation(store, "hh-003").next_secret(kek), "hh-003", HANDHELD)
    assert receive(a, new) == "hello"  # the first message under the new key completes it
    assert not registry.rotation(store, "hh-003").pending
    assert receive(b, new) == "hello"
    reply = b.seal_reply("hh-003", "error", {"code": 1}, now)
    assert new.unwrap(reply, now)[0] == "error"
    with pytest.raises(ProtocolError):  # grace 0: the old key is refused at once
        receive(b, old)
