"""The demo's stage: a broker (the embedded one, or an external Mosquitto
given by URL), a subscriber to `#` that keeps every message, an emulated
label printer on a pty, and the `veilpost` CLI run in-process so the story
shows the real commands each user types."""

from __future__ import annotations

import os
import queue
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker_access import BrokerAdminError, Grant, new_password

HOST = "127.0.0.1"


class StageError(click.ClickException):
    """A part of the demo could not start; the message says which and why."""


@dataclass
class Broker:
    """Where the MQTT traffic goes and who may use it. `admin` creates
    accounts (the embedded broker's own, or Mosquitto's dynamic security);
    without one the external broker must let clients in anonymously."""

    kind: str  # "embedded" | "external"
    host: str
    port: int
    admin: Any = None  # a BrokerAdmin: the embedded broker or a DynsecAdmin
    admin_credentials: tuple[str, str] | None = None
    created: list[str] = field(default_factory=list)
    _embedded: Any = None

    @classmethod
    def embedded(cls) -> Broker:
        from gateway.broker import EmbeddedBroker

        broker = EmbeddedBroker(HOST, 0)
        port = broker.start()
        return cls("embedded", HOST, port, admin=broker, _embedded=broker)

    @classmethod
    def external(cls, url: str) -> Broker:
        """mqtt://[admin:password@]host:port; the admin is Mosquitto's
        dynamic-security admin (password also from $VEILPOST_BROKER_PASSWORD)."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise StageError(
                "--broker must look like mqtt://host:1883 or mqtt://admin:password@host:1883, not %r" % url
            )
        port = parts.port or 1883
        if not parts.username:
            return cls("external", parts.hostname, port)
        password = unquote(parts.password or os.environ.get("VEILPOST_BROKER_PASSWORD", ""))
        from gateway.dynsec import DynsecAdmin

        try:
            admin = DynsecAdmin(parts.hostname, port, unquote(parts.username), password)
        except BrokerAdminError as e:
            raise StageError("broker %s:%d: %s" % (parts.hostname, port, e)) from None
        return cls(
            "external",
            parts.hostname,
            port,
            admin=admin,
            admin_credentials=(unquote(parts.username), password),
        )

    def _account(self, username: str, add: Any) -> tuple[str | None, str | None]:
        if self.admin is None:
            return None, None
        password = new_password()
        try:
            add(username, password)
        except BrokerAdminError:  # left over from an earlier run on the same broker
            self.admin.remove(username)
            add(username, password)
        self.created.append(username)
        return username, password

    def add_device(self, device_id: str) -> tuple[str | None, str | None]:
        return self._account(device_id, self.admin.add_device if self.admin else None)

    def add_gateway(self, username: str) -> tuple[str | None, str | None]:
        return self._account(username, self.admin.add_gateway if self.admin else None)

    def spy_credentials(self) -> tuple[str | None, str | None]:
        """An account that may subscribe to `#`."""
        if self._embedded is not None:
            username, password = "vp-demo-spy", new_password()
            self._embedded.add_client(username, password, (Grant("subscribe", "#"),))
            return username, password
        if self.admin_credentials is not None:
            return self.admin_credentials
        return None, None

    def disable(self, username: str) -> bool:
        if self.admin is None:
            return False
        self.admin.disable(username)
        return True

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            return
        if self.admin is not None:
            for username in self.created:
                try:
                    self.admin.remove(username)
                except BrokerAdminError:
                    pass
            self.admin.close()


class MqttClient:
    """A small paho client: connect (or learn that the broker said no),
    record messages, publish with PUBACK."""

    def __init__(
        self,
        broker: Broker,
        username: str | None,
        password: str | None,
        client_id: str,
        subscribe: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.refused: str | None = None
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self._topic = subscribe

        def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                self.refused = str(reason)
                self._ready.set()
            elif self._topic is None:
                self._ready.set()
            else:
                client.subscribe(self._topic, qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_disconnect = lambda *_a: self._ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        try:
            self.client.connect(broker.host, broker.port, keepalive=30)
        except OSError as e:
            raise StageError("cannot reach the broker at %s:%d: %s" % (broker.host, broker.port, e)) from None
        self.client.loop_start()
        if not self._ready.wait(timeout):
            self.refused = "no answer from the broker"
        if self.refused is None and not self.client.is_connected():
            self.refused = "connection closed by the broker"

    @property
    def connected(self) -> bool:
        return self.refused is None

    def publish(self, topic: str, payload: bytes, retain: bool = False, timeout: float = 5.0) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout)

    def drain(self, quiet: float = 0.2) -> list[tuple[str, bytes]]:
        got = []
        while True:
            try:
                got.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Spy:
    """Subscribed to `#` for the whole run: every message that crossed the broker."""

    def __init__(self, broker: Broker) -> None:
        username, password = broker.spy_credentials()
        self.client = MqttClient(broker, username, password, "vp-demo-spy-" + new_password()[:6], "#")
        if not self.client.connected:
            raise StageError("cannot watch the broker (subscribe to #): %s" % self.client.refused)
        self.seen: list[tuple[str, bytes]] = []

    def collect(self, quiet: float = 0.2) -> list[tuple[str, bytes]]:
        self.seen += self.client.drain(quiet)
        return self.seen

    def close(self) -> None:
        self.collect()
        self.client.close()


class Printer:
    """An emulated TSPL label printer on a pty, named `depot` in printers.toml."""

    def __init__(self, home: Path, folder: Path, language: str = "tspl") -> None:
        from printer_drivers.emulated_link import PtyPrinter
        from printer_drivers.emulator import Emulator

        self.name = "depot"
        self.link = PtyPrinter(Emulator(language), folder / "printer-depot")
        self.link.start()
        (home / "printers.toml").write_text(
            '[printers.depot]\nurl = "%s"\nlanguage = "%s"\nbaud = 115200\n' % (self.link.path, language),
            encoding="utf-8",
        )

    def printed(self) -> list[Any]:
        return self.link.call(lambda e: list(e.printed))

    @property
    def wire(self) -> bytes:
        return bytes(self.link.wire)

    def close(self) -> None:
        self.link.stop()


def veilpost(home: Path, *args: str) -> tuple[str, str]:
    """Run a `veilpost` command in this process: (the command line, its output)."""
    from click.testing import CliRunner

    from tools.cli import main

    line = "veilpost " + " ".join(shlex.quote(a) for a in args)
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=True)
    if result.exit_code != 0:
        detail = result.output.strip() or repr(result.exception)
        raise StageError("`%s` failed: %s" % (line, detail))
    return line, result.output.rstrip()


def end_session(broker: Broker, client_id: str, username: str | None, password: str | None) -> bool:
    """Connect once as `client_id` with a clean start and no session expiry,
    then leave: the broker forgets that client's session and subscriptions."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    done = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, reconnect_on_failure=False
    )
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = lambda *_a: done.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    try:
        client.connect(broker.host, broker.port, keepalive=10, clean_start=True, properties=props)
    except OSError:
        return False
    client.loop_start()
    ok = done.wait(3)
    client.disconnect()
    client.loop_stop()
    return ok


def wait_for(cond: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
