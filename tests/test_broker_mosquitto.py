"""What the shipped mosquitto.conf promises: TLS for handhelds, shared
subscriptions for gateways, QoS 1 sessions and retained commands that
survive a restart, a packet size limit, dynsec state that persists."""

from __future__ import annotations

import pytest

from tests.fixtures.brokers import MqttProbe

pytestmark = pytest.mark.mosquitto


def test_device_connects_over_tls_with_the_depot_ca(mosquitto_broker):
    probe = MqttProbe(mosquitto_broker, *mosquitto_broker.add_device("hh-001"), tls=True)
    assert probe.connected, probe.connack
    assert probe.subscribe("vp/v1/d/hh-001/down") == 1
    probe.close()


def test_tls_listener_refuses_wrong_password(mosquitto_broker):
    username, _ = mosquitto_broker.add_device("hh-001")
    assert not MqttProbe(mosquitto_broker, username, "wrong-password", tls=True).connected


def test_gateways_share_device_uplinks(mosquitto_broker):
    device = MqttProbe(mosquitto_broker, *mosquitto_broker.add_device("hh-001"))
    gateways = [MqttProbe(mosquitto_broker, *mosquitto_broker.gateway_credentials) for _ in range(2)]
    try:
        for gateway in gateways:
            assert gateway.subscribe("$share/veilpost/vp/v1/d/+/up") == 1
        for i in range(6):
            device.publish("vp/v1/d/hh-001/up", b"scan %d" % i)
        received = []
        for gateway in gateways:
            while (message := gateway.next_message(timeout=0.3)) is not None:
                received.append(message.payload)
        assert sorted(received) == sorted(b"scan %d" % i for i in range(6))
    finally:
        device.close()
        for gateway in gateways:
            gateway.close()


def test_device_cannot_join_the_gateways_share(mosquitto_broker):
    device = MqttProbe(mosquitto_broker, *mosquitto_broker.add_device("hh-001"))
    assert device.subscribe("$share/veilpost/vp/v1/d/+/up") == 0x80
    device.close()


def test_queued_qos1_message_survives_a_broker_restart(mosquitto_broker):
    username, password = mosquitto_broker.add_device("hh-001")
    device = MqttProbe(mosquitto_broker, username, password, client_id="hh-001", clean_session=False)
    assert device.subscribe("vp/v1/d/hh-001/down") == 1
    device.close()
    gateway = MqttProbe(mosquitto_broker, *mosquitto_broker.gateway_credentials)
    gateway.publish("vp/v1/d/hh-001/down", b"grant while offline", qos=1)
    gateway.close()

    mosquitto_broker.restart()

    device = MqttProbe(mosquitto_broker, username, password, client_id="hh-001", clean_session=False)
    try:
        assert device.connected
        message = device.next_message()
        assert message is not None and message.payload == b"grant while offline"
    finally:
        device.close()


def test_retained_command_survives_a_broker_restart(mosquitto_broker):
    gateway = MqttProbe(mosquitto_broker, *mosquitto_broker.gateway_credentials)
    gateway.publish("vp/v1/d/hh-001/cmd", b"sealed wipe", retain=True)
    gateway.close()
    mosquitto_broker.restart()
    device = MqttProbe(mosquitto_broker, *mosquitto_broker.add_device("hh-001"))
    try:
        assert device.subscribe("vp/v1/d/hh-001/cmd") == 1
        message = device.next_message()
        assert message is not None and message.payload == b"sealed wipe" and message.retain
    finally:
        device.close()


def test_disabled_device_stays_disabled_after_a_restart(mosquitto_broker):
    username, password = mosquitto_broker.add_device("hh-001")
    mosquitto_broker.admin.disable(username)
    mosquitto_broker.restart()
    assert mosquitto_broker.admin.get_client(username).get("disabled") is True
    assert not MqttProbe(mosquitto_broker, username, password).connected


def test_oversized_packet_disconnects_the_sender(mosquitto_broker):
    device = MqttProbe(mosquitto_broker, *mosquitto_broker.add_device("hh-001"))
    device.client.publish("vp/v1/d/hh-001/up", b"x" * 300_000, qos=1)
    assert device.wait_disconnected(timeout=5)
    device.close()


@pytest.mark.parametrize("device_id", ["hh-m01", "hh-m02"])
def test_a_module_scoped_broker_serves_several_tests(mosquitto_broker_module, device_id):
    probe = MqttProbe(mosquitto_broker_module, *mosquitto_broker_module.add_device(device_id))
    assert probe.connected
    probe.close()
    assert device_id in mosquitto_broker_module.admin.usernames()
