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

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker_access import BrokerAdminError, Grant, new_password
from protocol.errors import VeilpostError

HOST = "127.0.0.1"


class StageError(VeilpostError):
    """A part of the demo could not start; the message says which and why."""


@dataclass
class Broker:
    """Where the MQTT traffic goes and who administers it: the embedded broker
    keeping its accounts in the demo home (where `veilpost device` finds it,
    as it would beside an embedded gateway), or an external Mosquitto through
    its dynamic-security admin."""

    kind: str  # "embedded" | "external"
    host: str
    port: int
    admin: Any  # a BrokerAdmin: the embedded broker or a DynsecAdmin
    admin_credentials: tuple[str, str] | None = None
    created: list[str] = field(default_factory=list)

    @classmethod
    def embedded(cls, home_dir: Path) -> Broker:
        from gateway.broker import EmbeddedBroker
        from gateway.broker_accounts import ACCOUNTS_FILE

        home_dir.mkdir(parents=True, exist_ok=True)
        broker = EmbeddedBroker(HOST, 0, accounts_file=home_dir / ACCOUNTS_FILE)
        port = broker.start()
        return cls("embedded", HOST, port, broker)

    @classmethod
    def external(cls, url: str) -> Broker:
        """mqtt://admin[:password]@host:port, the admin of Mosquitto's dynamic
        security (the password may come from $VEILPOST_BROKER_PASSWORD)."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname or not parts.username:
            raise StageError(
                "--broker must look like mqtt://admin@host:1883 (Mosquitto's dynamic-security"
                " admin; password in $VEILPOST_BROKER_PASSWORD), not %r" % url
            )
        port = parts.port or 1883
        username = unquote(parts.username)
        password = unquote(parts.password or os.environ.get("VEILPOST_BROKER_PASSWORD", ""))
        from gateway.dynsec import DynsecAdmin

        try:
            admin = DynsecAdmin(parts.hostname, port, username, password)
        except BrokerAdminError as e:
            raise StageError("broker %s:%d: %s" % (parts.hostname, port, e)) from None
        return cls("external", parts.hostname, port, admin, (username, password))

    def hand_over(self, home_dir: Path) -> None:
        """Give `veilpost device` in this home the external broker's admin,
        where make-depot.sh --veilpost-home would put it."""
        if self.admin_credentials is None:
            return
        folder = home_dir / "broker"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = folder / "admin.secret"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("%s\n%s\n" % self.admin_credentials)

    def add_gateway(self, username: str) -> tuple[str, str]:
        password = new_password()
        try:
            self.admin.add_gateway(username, password)
        except BrokerAdminError:  # left over from an earlier run on the same broker
            self.admin.remove(username)
            self.admin.add_gateway(username, password)
        self.created.append(username)
        return username, password

    def spy_credentials(self) -> tuple[str, str]:
        """An account that may subscribe to `#`."""
        if self.admin_credentials is not None:
            return self.admin_credentials
        username, password = "vp-demo-spy", new_password()
        self.admin.add_client(username, password, (Grant("subscribe", "#"),))
        return username, password

    def close(self) -> None:
        if self.kind == "embedded":
            self.admin.stop()
            return
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
