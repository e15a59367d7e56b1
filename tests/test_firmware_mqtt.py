"""The firmware's own MQTT 3.1.1 client (firmware/mqtt.py) on CPython against
a real Mosquitto: QoS 1 both ways, redelivery with DUP after a reconnect, a
resumed session, keepalive pings, refusals, TLS, backoff with jitter."""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any

import pytest

from firmware.mqtt import MQTTClient, MQTTError, decode_publish, open_socket, split_packet
from protocol import topics
from tests.fixtures.brokers import MqttProbe

pytestmark = pytest.mark.mosquitto


class Driver:
    """Polls an MQTTClient over a real socket, collecting its events."""

    def __init__(self, client: MQTTClient) -> None:
        self.client = client
        self.events: list[tuple[Any, ...]] = []

    def poll_until(self, cond: Callable[[], bool], timeout: float = 5.0, now: float | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events}")
            sock = self.client.sock
            if sock is not None:
                select.select([sock], [], [], 0.02)
            self.events += self.client.poll(time.time() if now is None else now)

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]

    def messages(self) -> list[tuple[str, bytes]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "message"]


def device_client(broker: Any, device_id: str, **kw: Any) -> tuple[MQTTClient, Driver]:
    username, password = broker.add_device(device_id)
    client = MQTTClient(device_id, username, password, **kw)
    return client, Driver(client)


def connect(broker: Any, client: MQTTClient, drv: Driver, tls: dict[str, Any] | None = None) -> None:
    port = broker.tls_port if tls else broker.port
    client.connect(open_socket(broker.host, port, tls), time.time())
    drv.poll_until(lambda: client.connected or "closed" in drv.kinds())


def gateway_probe(broker: Any) -> MqttProbe:
    probe = MqttProbe(broker, *broker.gateway_credentials)
    assert probe.subscribe(topics.UP_FILTER) in (0, 1)
    return probe


def test_qos1_publish_and_subscribe_both_ways(mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-1")
    connect(mosquitto_broker, client, drv)
    assert drv.events[0] == ("connected", False)
    probe = gateway_probe(mosquitto_broker)
    sub = client.subscribe([(topics.down("MQ-1"), 1), (topics.cmd("MQ-1"), 1)])
    drv.poll_until(lambda: "subscribed" in drv.kinds())
    assert [e for e in drv.events if e[0] == "subscribed"] == [("subscribed", sub, [1, 1])]

    pid = client.publish(topics.up("MQ-1"), b"\x01up", qos=1)
    drv.poll_until(lambda: ("acked", pid) in drv.events)
    assert client.inflight == []
    got = probe.next_message(timeout=5)
    assert got is not None and got.topic == topics.up("MQ-1") and got.payload == b"\x01up"

    probe.publish(topics.down("MQ-1"), b"\x02down", qos=1)
    drv.poll_until(lambda: drv.messages() != [])
    assert drv.messages() == [(topics.down("MQ-1"), b"\x02down")]
    probe.close()


class Recording:
    """A real socket that keeps a copy of every byte the client sends."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.sent = bytearray()

    def send(self, data: bytes) -> int:
        n = int(self.sock.send(data))
        self.sent += data[:n]
        return n

    def recv_into(self, buf: memoryview) -> int:
        return int(self.sock.recv_into(buf))

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def close(self) -> None:
        self.sock.close()


def _publishes(data: bytes) -> list[tuple[bytes, bool]]:
    """(payload, DUP flag) of every PUBLISH in a byte stream the client sent."""
    out: list[tuple[bytes, bool]] = []
    while data:
        got = split_packet(data)
        assert got is not None
        first, body, used = got
        data = data[used:]
        if first & 0xF0 == 0x30:
            _topic, payload, _qos, _pid, _retain, dup = decode_publish(first, body)
            out.append((payload, dup))
    return out


def test_unacknowledged_qos1_is_resent_with_dup_and_a_message_queued_offline_without(
        mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-2")
    connect(mosquitto_broker, client, drv)
    probe = gateway_probe(mosquitto_broker)
    first_pid = client.publish(topics.up("MQ-2"), b"sent-once", qos=1)   # out, not yet acknowledged
    client.sock.close()                      # the link dies under the client ...
    client.sock = None
    client.connected = False
    pid = client.publish(topics.up("MQ-2"), b"while-down", qos=1)   # ... which keeps the message
    assert [p for p, *_ in client.inflight] == [first_pid, pid]
    sock = Recording(open_socket(mosquitto_broker.host, mosquitto_broker.port))
    client.connect(sock, time.time())
    drv.poll_until(lambda: ("acked", pid) in drv.events and ("acked", first_pid) in drv.events)
    # The one that went out before is a redelivery (DUP=1); the one queued
    # while offline is on the wire for the first time (DUP=0).
    assert _publishes(bytes(sock.sent)) == [(b"sent-once", True), (b"while-down", False)]
    seen: list[bytes] = []                   # sent-once may arrive twice: QoS 1 is at least once
    while b"while-down" not in seen:
        m = probe.next_message(timeout=5)
        assert m is not None, seen
        seen.append(bytes(m.payload))
    probe.close()


def test_session_resumes_and_queued_messages_arrive_after_reconnect(mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-3", clean_session=False)
    connect(mosquitto_broker, client, drv)
    client.subscribe([(topics.down("MQ-3"), 1)])
    drv.poll_until(lambda: "subscribed" in drv.kinds())
    client.disconnect()
    probe = MqttProbe(mosquitto_broker, *mosquitto_broker.gateway_credentials)
    probe.publish(topics.down("MQ-3"), b"kept-for-you", qos=1)
    drv.events = []
    connect(mosquitto_broker, client, drv)
    assert drv.events[0] == ("connected", True)          # session present
    drv.poll_until(lambda: drv.messages() != [])          # no new SUBSCRIBE needed
    assert drv.messages() == [(topics.down("MQ-3"), b"kept-for-you")]
    probe.close()


def test_keepalive_sends_pingreq_and_survives_on_pingresp(mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-4", keepalive=4)
    connect(mosquitto_broker, client, drv)
    later = time.time() + 2.5                  # past keepalive/2 with nothing sent
    drv.events += client.poll(later)
    assert client._ping_sent == later
    drv.poll_until(lambda: client._ping_sent == 0, now=later)
    assert client.connected and "closed" not in drv.kinds()


def test_silent_broker_is_declared_dead_after_keepalive(mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-5", keepalive=4)
    connect(mosquitto_broker, client, drv)
    t = time.time()
    client.poll(t + 2.5)                       # PINGREQ goes out
    drv.poll_until(lambda: client._ping_sent == 0, now=t + 2.5)   # its PINGRESP is read
    client._ping_sent = t + 2.5                # pretend it never came
    events = client.poll(t + 7)
    assert ("closed", "no PINGRESP within 4 s") in events
    assert client.sock is None


def test_wrong_password_is_refused_with_a_reason(mosquitto_broker: Any) -> None:
    mosquitto_broker.add_device("MQ-6")
    client = MQTTClient("MQ-6", "MQ-6", "not-the-password")
    drv = Driver(client)
    client.connect(open_socket(mosquitto_broker.host, mosquitto_broker.port), time.time())
    drv.poll_until(lambda: "closed" in drv.kinds())
    reason = [e[1] for e in drv.events if e[0] == "closed"][0]
    assert "refused" in reason and ("password" in reason or "authorised" in reason)
    assert not client.connected


def test_tls_connection_to_mosquitto(mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-7")
    connect(mosquitto_broker, client, drv, tls={"cafile": mosquitto_broker.ca_file,
                                                  "server_hostname": "localhost"})
    assert client.connected
    pid = client.publish(topics.up("MQ-7"), b"over-tls", qos=1)
    drv.poll_until(lambda: ("acked", pid) in drv.events)


def test_tls_without_a_ca_is_refused_before_connecting(mosquitto_broker: Any) -> None:
    with pytest.raises(MQTTError, match="without a CA certificate"):
        open_socket(mosquitto_broker.host, mosquitto_broker.tls_port, {})


def test_inflight_is_bounded_and_publish_never_blocks() -> None:
    client = MQTTClient("MQ-8", max_inflight=2)
    client.publish("vp/v1/d/MQ-8/up", b"1", qos=1)
    client.publish("vp/v1/d/MQ-8/up", b"2", qos=1)
    with pytest.raises(MQTTError, match="too many unacknowledged"):
        client.publish("vp/v1/d/MQ-8/up", b"3", qos=1)
    assert [p[2] for p in client.inflight] == [b"1", b"2"]


def test_reconnect_delay_backs_off_with_jitter_and_a_cap() -> None:
    c = MQTTClient("MQ-9")
    assert c.retry_delay(0, 0.0) == 0.5
    assert c.retry_delay(3, 0.5) == 0.5 + 0.5 * 7.5
    assert c.retry_delay(30, 0.999) < 8              # capped


def test_reconnect_backoff_sequence_stays_under_the_cap_so_devices_resume_within_10s() -> None:
    c = MQTTClient("MQ-9")                           # default cap: 8 s
    highest = [c.retry_delay(n, 0.999999) for n in range(12)]
    assert highest[:4] == sorted(highest[:4]) and highest[0] < highest[3]   # it does back off
    assert max(highest) < 8 and highest[11] > 7.9
    lowest = [c.retry_delay(n, 0.0) for n in range(12)]
    assert lowest == [0.5] * 12                      # full jitter: a fleet spreads out from 0.5 s
    middle = [c.retry_delay(n, 0.5) for n in range(6)]
    assert middle == [0.75, 1.25, 2.25, 4.25, 4.25, 4.25]


def test_reconnect_backoff_cap_comes_from_the_device_config() -> None:
    from firmware.device import Device
    from firmware.hal.host.memory import MemoryHAL

    hal = MemoryHAL()
    hal.keystore.put("master", bytes(range(32)))
    dev = Device(hal, {"device_id": "MQ-11", "lang": "en", "mqtt": {"max_backoff": 3}})
    dev.start(1_800_000_000)
    assert dev.mqtt is not None and dev.mqtt.max_backoff == 3
    assert max(dev.mqtt.retry_delay(n, 0.999999) for n in range(20)) < 3
    hal2 = MemoryHAL()
    hal2.keystore.put("master", bytes(range(32)))
    dev2 = Device(hal2, {"device_id": "MQ-12", "lang": "en"})
    dev2.start(1_800_000_000)
    assert dev2.mqtt is not None and dev2.mqtt.max_backoff == 8


def test_oversize_message_from_the_broker_is_dropped_once_not_redelivered(mosquitto_broker: Any) -> None:
    client, drv = device_client(mosquitto_broker, "MQ-10", clean_session=False, max_packet=4096)
    connect(mosquitto_broker, client, drv)
    client.subscribe([(topics.down("MQ-10"), 1)])
    drv.poll_until(lambda: "subscribed" in drv.kinds())
    probe = MqttProbe(mosquitto_broker, *mosquitto_broker.gateway_credentials)
    probe.publish(topics.down("MQ-10"), b"\x00" * 30000, qos=1)
    probe.publish(topics.down("MQ-10"), b"after", qos=1)
    drv.poll_until(lambda: drv.messages() != [])
    assert drv.kinds().count("dropped") == 1
    assert drv.messages() == [(topics.down("MQ-10"), b"after")]
    client.drop("test reconnect")
    drv.events = []
    connect(mosquitto_broker, client, drv)
    drv.poll_until(lambda: time.sleep(0.3) is None, timeout=2)
    assert "dropped" not in drv.kinds() and drv.messages() == []
    probe.close()
