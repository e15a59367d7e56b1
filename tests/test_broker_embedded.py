"""The embedded amqtt broker: lifecycle, bad input, and the topic rules."""

from __future__ import annotations

import socket
import time

import pytest

from gateway.broker import EmbeddedBroker
from gateway.broker_access import GATEWAY_GRANTS, BrokerAdminError, device_grants, filter_covers
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


def test_revoking_through_the_accounts_file_kicks_a_connected_device(embedded_broker):
    username, password = embedded_broker.add_device("hh-001")
    device = MqttProbe(embedded_broker, username, password)
    assert device.connected
    started = time.monotonic()
    embedded_broker.file_admin.disable(username)  # as `veilpost device revoke` in another process
    assert device.wait_disconnected(timeout=5), "the broker did not apply the accounts file"
    assert device.disconnected_at is not None
    print(f"\n[embedded, accounts file] disable -> kick: {(device.disconnected_at - started) * 1000:.1f} ms")
    assert not MqttProbe(embedded_broker, username, password).connected
    assert embedded_broker.admin.is_disabled(username)


def test_accounts_in_the_file_survive_a_restart(embedded_broker):
    username, password = embedded_broker.add_device("hh-001")
    embedded_broker.file_admin.add_device("hh-002", "password-of-hh-002-long")
    embedded_broker.restart()
    for user, secret in ((username, password), ("hh-002", "password-of-hh-002-long")):
        probe = MqttProbe(embedded_broker, user, secret)
        assert probe.connected, user
        probe.close()


def test_a_corrupt_accounts_file_keeps_the_last_good_accounts(embedded_broker):
    username, password = embedded_broker.add_device("hh-001")
    embedded_broker.accounts_file.write_text("{not json")
    time.sleep(0.3)  # a few poll intervals
    probe = MqttProbe(embedded_broker, username, password)
    assert probe.connected
    probe.close()
    with pytest.raises(BrokerAdminError, match="not a veilpost accounts file"):
        embedded_broker.file_admin.add_device("hh-002", "password-of-hh-002-long")


def test_file_admin_reports_unknown_and_duplicate_clients(embedded_broker):
    embedded_broker.add_device("hh-001")
    with pytest.raises(BrokerAdminError, match="exists already"):
        embedded_broker.file_admin.add_device("hh-001", "password-of-hh-001-long")
    with pytest.raises(BrokerAdminError, match="not found"):
        embedded_broker.file_admin.disable("hh-404")
    embedded_broker.file_admin.remove("hh-001")
    assert "hh-001" not in embedded_broker.file_admin.usernames()


def test_the_gateway_account_survives_restarts_with_a_new_password(tmp_path):
    accounts = tmp_path / "broker-accounts.json"
    with EmbeddedBroker(accounts_file=accounts) as broker:
        broker.ensure_gateway("vp-gateway", "first-password-long-enough")
    with EmbeddedBroker(accounts_file=accounts) as broker:
        broker.ensure_gateway("vp-gateway", "second-password-long-enough")
        assert broker.usernames() == ["vp-gateway"]
        handle = type("Handle", (), {"host": broker.host, "port": broker.port})()
        assert not MqttProbe(handle, "vp-gateway", "first-password-long-enough").connected
        probe = MqttProbe(handle, "vp-gateway", "second-password-long-enough")
        assert probe.connected
        probe.close()
    assert not (tmp_path / "broker-endpoint.json").exists()


def test_disabling_on_a_broker_without_accounts_file_kicks_too():
    with EmbeddedBroker() as broker:
        broker.add_device("hh-001", "password-of-hh-001-long")
        handle = type("Handle", (), {"host": broker.host, "port": broker.port})()
        probe = MqttProbe(handle, "hh-001", "password-of-hh-001-long")
        assert probe.connected
        broker.disable("hh-001")
        assert probe.wait_disconnected(timeout=5)
