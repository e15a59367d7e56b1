"""The embedded amqtt broker: lifecycle, bad input, and the topic rules."""

from __future__ import annotations

import socket

import pytest

from gateway.broker import GATEWAY_GRANTS, BrokerAdminError, EmbeddedBroker, device_grants, filter_covers
from tests.fixtures.brokers import MqttProbe


def test_start_returns_the_bound_port_and_stop_closes_it():
    broker = EmbeddedBroker()
    port = broker.start()
    assert port > 0
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    broker.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_two_embedded_brokers_run_side_by_side():
    with EmbeddedBroker() as first, EmbeddedBroker() as second:
        assert first.port != second.port
        first.add_device("hh-001", "password-one-long-enough")
        assert "hh-001" not in second.usernames()


def test_admin_calls_on_a_stopped_broker_say_so():
    with pytest.raises(RuntimeError, match="not running"):
        EmbeddedBroker().add_device("hh-001", "password-one-long-enough")


def test_adding_an_existing_client_is_refused(embedded_broker):
    embedded_broker.add_device("hh-001")
    with pytest.raises(BrokerAdminError, match="exists already"):
        embedded_broker.add_device("hh-001")
    with pytest.raises(BrokerAdminError, match="not found"):
        embedded_broker.admin.disable("hh-404")


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x00", b"\x10\xff\xff\xff\x7f", b"\x10\x05MQTT!", b"GET / HTTP/1.1\r\n\r\n", b"\x30\x02ab"],
    ids=["reserved", "huge-length", "truncated", "http", "publish-first"],
)
def test_garbage_instead_of_connect_is_dropped_and_the_broker_lives_on(embedded_broker, garbage):
    with socket.create_connection((embedded_broker.host, embedded_broker.port), timeout=2) as raw:
        raw.sendall(garbage)
        raw.shutdown(socket.SHUT_WR)
        raw.settimeout(2)
        try:
            while raw.recv(1024):
                pass
        except OSError:
            pass
    probe = MqttProbe(embedded_broker, *embedded_broker.add_device("hh-001"))
    assert probe.connected
    probe.close()


def test_disabled_client_is_refused_before_amqtt_sees_the_connect(embedded_broker):
    username, password = embedded_broker.add_device("hh-001")
    device = MqttProbe(embedded_broker, username, password, client_id="hh-001", clean_session=False)
    assert device.subscribe("vp/v1/d/hh-001/down") == 1
    device.close()
    embedded_broker.admin.disable(username)
    again = MqttProbe(embedded_broker, username, password, client_id="hh-001", clean_session=False)
    assert not again.connected
    assert again.connack is not None and again.connack.is_failure


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        ("vp/v1/d/+/up", "vp/v1/d/hh-1/up", True),
        ("vp/v1/d/+/up", "vp/v1/d/+/up", True),
        ("vp/v1/d/+/up", "vp/v1/d/#", False),
        ("vp/v1/d/+/up", "vp/v1/d/hh-1/down", False),
        ("vp/v1/gw/#", "vp/v1/gw/g1/status", True),
        ("vp/v1/gw/#", "vp/v1/gw", True),
        ("vp/v1/d/hh-1/down", "vp/v1/d/+/down", False),
        ("vp/v1/d/hh-1/down", "vp/v1/d/hh-1/down/x", False),
        ("vp/v1/d/hh-1/down", "vp/v1/d/hh-1", False),
    ],
)
def test_filter_covers(allowed, requested, covered):
    assert filter_covers(allowed, requested) is covered


def test_a_device_is_granted_exactly_its_three_topics():
    assert sorted(g.topic for g in device_grants("hh-7")) == [
        "vp/v1/d/hh-7/cmd", "vp/v1/d/hh-7/down", "vp/v1/d/hh-7/up"]
    assert not any(g.action == "subscribe" and g.topic.endswith("/cmd") for g in GATEWAY_GRANTS)
