"""Wire-level parts for driving a gateway through a real broker: `Handheld`,
the real protocol Channel over a paho client (no firmware, no screen), and
`Spy`, a subscriber to `#` that keeps everything that crossed the broker.
The simulated handheld that runs the firmware itself is tools/simulator.py."""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.aead import CryptographyAEAD
from gateway.broker_access import Grant, new_password
from protocol import topics
from protocol.session import HANDHELD, Channel
from tools.testbed.brokers import MqttProbe


class Handheld:
    """A handheld's wire: the real protocol Channel over a real paho client,
    speaking to the gateway through a real broker (a tools/testbed/brokers.py
    handle, which also makes its broker account)."""

    def __init__(self, broker: Any, device_id: str, secret: bytes,
                 credentials: tuple[str, str] | None = None, timeout: float = 5.0,
                 labels: dict[str, bytes] | None = None) -> None:
        self.device_id = device_id
        self.labels = dict(labels or {})  # tracking_no -> QR bytes of the labels in hand
        self.channel = Channel(secret, device_id, HANDHELD, aead=CryptographyAEAD())
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.timeout = timeout
        self.session = b""
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hh-" + device_id,
                                  protocol=mqtt.MQTTv311)
        username, password = credentials or broker.add_device(device_id)
        self.client.username_pw_set(username, password)
        own = (topics.down(device_id), topics.cmd(device_id))
        # amqtt has been seen delivering another topic's retained message to
        # this client after a `#` subscriber joined: keep to our own topics.
        self.client.on_message = lambda _c, _u, m: (
            self.inbox.put((m.topic, bytes(m.payload))) if m.topic in own else None)
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(topics.down(device_id), 1), (topics.cmd(device_id), 1)])
        if not self._subscribed.wait(timeout):
            raise TimeoutError("handheld %s could not subscribe" % device_id)

    def send(self, name: str, fields: dict[str, Any]) -> None:
        self.send_raw(self.channel.wrap(name, fields, int(time.time())))

    def send_raw(self, payload: bytes) -> None:
        self.client.publish(topics.up(self.device_id), payload, qos=1).wait_for_publish(self.timeout)

    def recv(self, timeout: float | None = None) -> tuple[str, dict[str, Any]] | None:
        try:
            topic, payload = self.inbox.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            return None
        try:
            name, fields, _seq = self.channel.unwrap(payload, int(time.time()))
        except Exception as e:
            raise AssertionError("handheld got %r on %s: %s" % (payload[:40], topic, e)) from e
        return name, fields

    def ask(self, name: str, fields: dict[str, Any],
            timeout: float | None = None) -> tuple[str, dict[str, Any]]:
        self.send(name, fields)
        reply = self.recv(timeout)
        if reply is None:
            raise TimeoutError("no reply to %s from the gateway" % name)
        return reply

    def login(self, badge: str, pin: str) -> dict[str, Any]:
        self.send("hello", {"device": self.device_id, "fw": "test-1"})
        name, fields = self.ask("login", {"badge": badge, "pin_proof": pin.encode()})
        assert name == "login_result", (name, fields)
        if fields["ok"]:
            self.session = fields["session"]
        return fields

    def reveal(self, tracking_no: str, fields: list[int], req: int = 1,
               reason: int = 1) -> tuple[str, dict[str, Any]]:
        return self.ask("reveal_request", {"req": req, "tracking_no": tracking_no, "fields": fields,
                                           "reason": reason, "session": self.session})

    def scan(self, tracking_no: str, label: bytes | None = None) -> None:
        """Scan a parcel: with its label's QR when this handheld holds the
        label (or `label` is given), else only the tracking number."""
        fields: dict[str, Any] = {"tracking_no": tracking_no, "session": self.session}
        qr = label if label is not None else self.labels.get(tracking_no)
        if qr is not None:
            fields["label"] = qr
        self.send("scan", fields)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Spy:
    """A subscriber to `#` on the broker: everything that crosses it."""

    def __init__(self, broker: Any) -> None:
        if broker.kind == "mosquitto":
            username, password = broker.admin_credentials
        else:
            username, password = "spy-" + os.urandom(3).hex(), new_password()
            broker.admin.add_client(username, password, (Grant("subscribe", "#"),))
        self.probe = MqttProbe(broker, username, password)
        if self.probe.subscribe("#") not in (0, 1):
            raise RuntimeError("the broker refused the spy's subscription to #")
        self.seen: list[tuple[str, bytes, float]] = []

    def drain(self, quiet: float = 0.3) -> list[tuple[str, bytes, float]]:
        """Collect messages until the broker has been quiet for `quiet` seconds."""
        while True:
            m = self.probe.next_message(timeout=quiet)
            if m is None:
                return self.seen
            # paho stamps each message with time.monotonic() when it arrives.
            self.seen.append((m.topic, bytes(m.payload), getattr(m, "timestamp", 0) or time.monotonic()))

    def close(self) -> None:
        self.probe.close()
