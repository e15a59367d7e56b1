"""Who gets into the broker and which topics they may use, on Mosquitto
(shipped config, dynsec) and on the embedded amqtt broker."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.brokers import MqttProbe

pytestmark = pytest.mark.mosquitto

REFUSED = 0x80


def test_provisioned_device_connects(mqtt_broker):
    username, password = mqtt_broker.add_device("hh-001")
    probe = MqttProbe(mqtt_broker, username, password, client_id="hh-001")
    assert probe.connected, probe.connack
    probe.close()


def test_unprovisioned_device_is_refused(mqtt_broker):
    probe = MqttProbe(mqtt_broker, "hh-404", "no-such-password")
    assert not probe.connected
    assert probe.connack is None or probe.connack.is_failure


def test_anonymous_client_is_refused(mqtt_broker):
    probe = MqttProbe(mqtt_broker, None, None)
    assert not probe.connected


def test_device_presenting_another_devices_password_is_refused(mqtt_broker):
    mqtt_broker.add_device("hh-001")
    _, other_password = mqtt_broker.add_device("hh-002")
    probe = MqttProbe(mqtt_broker, "hh-001", other_password)
    assert not probe.connected


def test_device_cannot_subscribe_to_another_devices_topics(mqtt_broker):
    intruder = MqttProbe(mqtt_broker, *mqtt_broker.add_device("hh-001"))
    mqtt_broker.add_device("hh-002")
    gateway = MqttProbe(mqtt_broker, *mqtt_broker.gateway_credentials)
    try:
        assert intruder.subscribe("vp/v1/d/hh-002/down") == REFUSED
        assert intruder.subscribe("vp/v1/d/hh-002/cmd") == REFUSED
        assert intruder.subscribe("vp/v1/d/+/down") == REFUSED
        assert intruder.subscribe("#") == REFUSED
        assert intruder.subscribe("vp/v1/d/hh-002/up") == REFUSED
        gateway.publish("vp/v1/d/hh-002/down", b"for hh-002 only")
        assert intruder.next_message(timeout=0.5) is None
    finally:
        intruder.close()
        gateway.close()


def test_device_receives_only_its_own_down_and_cmd(mqtt_broker):
    device = MqttProbe(mqtt_broker, *mqtt_broker.add_device("hh-001"))
    gateway = MqttProbe(mqtt_broker, *mqtt_broker.gateway_credentials)
    try:
        assert device.subscribe("vp/v1/d/hh-001/down") == 1
        assert device.subscribe("vp/v1/d/hh-001/cmd") == 1
        gateway.publish("vp/v1/d/hh-001/down", b"reply")
        message = device.next_message()
        assert message is not None and message.payload == b"reply"
    finally:
        device.close()
        gateway.close()


def test_device_cannot_publish_as_another_device(mqtt_broker):
    intruder = MqttProbe(mqtt_broker, *mqtt_broker.add_device("hh-001"))
    gateway = MqttProbe(mqtt_broker, *mqtt_broker.gateway_credentials)
    try:
        assert gateway.subscribe("vp/v1/d/+/up") == 1
        intruder.publish("vp/v1/d/hh-002/up", b"forged")
        intruder.publish("vp/v1/d/hh-001/down", b"to myself")
        intruder.publish("vp/v1/d/hh-001/up", b"genuine")
        message = gateway.next_message()
        assert message is not None
        assert (message.topic, message.payload) == ("vp/v1/d/hh-001/up", b"genuine")
        assert gateway.next_message(timeout=0.3) is None
    finally:
        intruder.close()
        gateway.close()


def test_device_cannot_publish_commands_to_itself(mqtt_broker):
    device = MqttProbe(mqtt_broker, *mqtt_broker.add_device("hh-001"))
    try:
        assert device.subscribe("vp/v1/d/hh-001/cmd") == 1
        device.publish("vp/v1/d/hh-001/cmd", b"fake wipe", retain=True)
        assert device.next_message(timeout=0.5) is None
    finally:
        device.close()


def test_disabling_a_connected_device_kicks_it_and_it_cannot_reconnect(mqtt_broker):
    username, password = mqtt_broker.add_device("hh-001")
    device = MqttProbe(mqtt_broker, username, password)
    assert device.connected
    started = time.monotonic()
    mqtt_broker.admin.disable(username)
    acknowledged = time.monotonic()
    assert device.wait_disconnected(timeout=5), "the disabled device kept its session"
    assert device.disconnected_at is not None
    print(
        f"\n[{mqtt_broker.kind}] disable -> kick: {(device.disconnected_at - started) * 1000:.1f} ms "
        f"(admin command acknowledged after {(acknowledged - started) * 1000:.1f} ms)"
    )
    again = MqttProbe(mqtt_broker, username, password)
    assert not again.connected


def test_enabled_again_device_connects(mqtt_broker):
    username, password = mqtt_broker.add_device("hh-001")
    mqtt_broker.admin.disable(username)
    assert not MqttProbe(mqtt_broker, username, password).connected
    mqtt_broker.admin.enable(username)
    probe = MqttProbe(mqtt_broker, username, password)
    assert probe.connected
    probe.close()


def test_new_password_replaces_the_old_one(mqtt_broker):
    username, old = mqtt_broker.add_device("hh-001")
    mqtt_broker.admin.set_password(username, "a-new-long-password-for-hh-001")
    assert not MqttProbe(mqtt_broker, username, old).connected
    probe = MqttProbe(mqtt_broker, username, "a-new-long-password-for-hh-001")
    assert probe.connected
    probe.close()


def test_removed_device_is_kicked_and_refused(mqtt_broker):
    username, password = mqtt_broker.add_device("hh-001")
    device = MqttProbe(mqtt_broker, username, password)
    assert device.connected
    mqtt_broker.admin.remove(username)
    assert device.wait_disconnected(timeout=5)
    assert not MqttProbe(mqtt_broker, username, password).connected
    assert username not in mqtt_broker.admin.usernames()


def test_device_id_with_wildcards_is_rejected(mqtt_broker):
    for bad in ("hh/+", "hh#", "", "x" * 33, "hh 1"):
        with pytest.raises(ValueError, match="device id"):
            mqtt_broker.add_device(bad)


def test_refused_client_reusing_a_devices_client_id_does_not_kick_it(mqtt_broker):
    username, password = mqtt_broker.add_device("hh-001")
    device = MqttProbe(mqtt_broker, username, password, client_id="hh-001")
    gateway = MqttProbe(mqtt_broker, *mqtt_broker.gateway_credentials)
    try:
        assert device.subscribe("vp/v1/d/hh-001/down") == 1
        impostor = MqttProbe(mqtt_broker, username, "guessed-password", client_id="hh-001")
        assert not impostor.connected
        assert not device.wait_disconnected(timeout=0.5), "a refused CONNECT took over the device's session"
        gateway.publish("vp/v1/d/hh-001/down", b"still yours")
        message = device.next_message()
        assert message is not None and message.payload == b"still yours"
    finally:
        device.close()
        gateway.close()


def test_reconnecting_device_gets_no_other_devices_retained_command(mqtt_broker):
    a_user, a_password = mqtt_broker.add_device("hh-001")
    other = MqttProbe(mqtt_broker, *mqtt_broker.add_device("hh-002"), client_id="hh-002", clean_session=False)
    gateway = MqttProbe(mqtt_broker, *mqtt_broker.gateway_credentials)
    device = MqttProbe(mqtt_broker, a_user, a_password, client_id="hh-001", clean_session=False)
    try:
        assert other.subscribe("vp/v1/d/hh-002/cmd") == 1
        assert device.subscribe("vp/v1/d/hh-001/cmd") == 1
        gateway.publish("vp/v1/d/hh-002/cmd", b"wipe for hh-002", retain=True)
        assert other.next_message() is not None
        device.close()
        device = MqttProbe(mqtt_broker, a_user, a_password, client_id="hh-001", clean_session=False)
        assert device.connected
        leaked = device.next_message(timeout=0.5)
        assert leaked is None, f"hh-001 received {leaked.topic}"
    finally:
        for probe in (other, gateway, device):
            probe.close()
