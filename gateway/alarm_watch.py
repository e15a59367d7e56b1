"""Alarms for a person: `veilpost alarms watch` is a live subscription to
vp/v1/alarm, under a broker account of its own, `vp-alarms`, that may
subscribe to the alarm topic and do nothing else (WATCHER_GRANTS). The
account is made on first use with the home's broker admin (the embedded
broker's accounts file, or Mosquitto's dynamic-security admin in
HOME/broker/admin.secret) and its password kept in HOME/broker/alarms.secret
(0600), so the watcher never holds the gateway's or the admin's password.

An alarm carries no personal data (couriers as HMAC pseudonyms); what was
raised while nobody watched is in the alarms table (`veilpost alarms list`).
"""

from __future__ import annotations

import json
import queue
import secrets
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker_access import BrokerAdminError, new_password
from gateway.broker_accounts import ACCOUNTS_FILE, AccountsFileAdmin, endpoint_alive, read_endpoint
from gateway.config import Config
from gateway.permissions import private_dir, write_private
from protocol import topics
from protocol.errors import BrokerError, ConfigurationError

WATCHER = "vp-alarms"
SECRET_FILE = "alarms.secret"  # under HOME/broker
TLS_PORT = 8883


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    ca_file: Path | None  # TLS with this CA (None: plain MQTT)

    def __str__(self) -> str:
        return "%s:%d%s" % (self.host, self.port, " (TLS)" if self.ca_file else "")


def address(cfg: Config) -> Address:
    """Where the gateway's broker listens, as the gateway reaches it."""
    m = cfg.mqtt
    if m.broker == "embedded":
        endpoint = read_endpoint(cfg.home) if endpoint_alive(cfg.home) else None
        port = endpoint[1] if endpoint else m.embedded_port
        if not port:
            raise ConfigurationError("[mqtt] embedded_port = 0 and no gateway running: nothing to watch")
        return Address("127.0.0.1", port, None)
    ca = cfg.home / "broker" / "ca.crt"
    return Address(m.broker, m.port, ca if m.port == TLS_PORT and ca.exists() else None)


def _admin(cfg: Config) -> Any:
    if cfg.mqtt.broker == "embedded":
        return AccountsFileAdmin(cfg.home / ACCOUNTS_FILE)
    secret_file = cfg.home / "broker" / "admin.secret"
    if not secret_file.exists():
        raise ConfigurationError("no broker admin credentials at %s to make the alarm watcher's account:"
                                 " copy admin.secret from make-depot.sh there (--veilpost-home does)"
                                 % secret_file)
    from gateway.deploy.depot import read_admin_secret
    from gateway.dynsec import DynsecAdmin

    user, password = read_admin_secret(secret_file)
    ca = cfg.home / "broker" / "ca.crt"
    return DynsecAdmin(cfg.mqtt.broker, cfg.mqtt.port, user, password,
                       ca_file=str(ca) if ca.exists() and cfg.mqtt.port == TLS_PORT else None)


def watcher_credentials(cfg: Config) -> tuple[str, str]:
    """The vp-alarms account, made on first use (a lost secret gets a new password)."""
    secret = cfg.home / "broker" / SECRET_FILE
    if secret.exists():
        return WATCHER, secret.read_text(encoding="utf-8").strip()
    admin = _admin(cfg)
    password = new_password()
    try:
        try:
            admin.add_watcher(WATCHER, password)
        except BrokerAdminError:
            admin.set_password(WATCHER, password)  # the account exists, its secret file was lost
    finally:
        admin.close()
    private_dir(secret.parent)
    write_private(secret, password + "\n")
    return WATCHER, password


WITNESS = "vp-witness"
WITNESS_SECRET_FILE = "witness.secret"  # under HOME/broker


def witness_credentials(cfg: Config) -> tuple[str, str, Path]:
    """The vp-witness account (subscribe to vp/v1/audit/checkpoint, nothing
    else), made on first use like vp-alarms; its password file is what a
    witness on another host is given (`veilpost audit witness --password-file`)."""
    secret = cfg.home / "broker" / WITNESS_SECRET_FILE
    if secret.exists():
        return WITNESS, secret.read_text(encoding="utf-8").strip(), secret
    admin = _admin(cfg)
    password = new_password()
    try:
        try:
            admin.add_witness(WITNESS, password)
        except BrokerAdminError:
            admin.set_password(WITNESS, password)
    finally:
        admin.close()
    private_dir(secret.parent)
    write_private(secret, password + "\n")
    return WITNESS, password, secret


def describe(alarm: dict[str, Any]) -> str:
    """One line for a person; no personal data is in an alarm to begin with."""
    import time

    at = alarm.get("at")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if isinstance(at, (int, float)) else "?"
    devices = alarm.get("devices") or [alarm.get("device", "")]
    parts = ["%s %s %s" % (when, alarm.get("alarm", "?"), alarm.get("kind", "?")),
             "devices %s" % ",".join(str(d) for d in devices if d) if any(devices) else "",
             "incident %s" % alarm["incident"] if alarm.get("incident") else "",
             "%s parcels" % alarm.get("parcels", 0),
             "broker account %s" % alarm["broker"] if alarm.get("broker") else ""]
    return "  ".join(p for p in parts if p)


class AlarmWatch:
    """A live subscription to the alarm topic; `next()` gives each alarm as a dict."""

    def __init__(self, cfg: Config, timeout: float = 10.0) -> None:
        self.where = address(cfg)
        username, password = watcher_credentials(cfg)
        self.alarms: queue.Queue[dict[str, Any]] = queue.Queue()
        self._ready = threading.Event()
        self._refused: str | None = None
        self.events: queue.Queue[str] = queue.Queue()  # connection news for the person watching
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vp-alarms-" + secrets.token_hex(4),
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        if self.where.ca_file is not None:
            self.client.tls_set(ca_certs=str(self.where.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._subscribed_once = False
        try:
            self.client.connect(self.where.host, self.where.port, keepalive=30)
        except OSError as e:
            raise BrokerError("the broker at %s cannot be reached: %s"
                              % (self.where, e.strerror or e)) from None
        self.client.loop_start()
        if not self._ready.wait(timeout) or self._refused:
            self.close()
            raise BrokerError("the broker at %s refused the alarm watcher %s: %s"
                              % (self.where, WATCHER, self._refused or "no answer in %g s" % timeout))

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
            self._ready.set()
            return
        client.subscribe(topics.ALARM, qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        codes = [getattr(r, "value", r) for r in reasons or []]
        if any(c >= 0x80 for c in codes):
            self._refused = "subscription to %s refused" % topics.ALARM
        if self._subscribed_once:
            self.events.put("connected again to %s" % self.where)
        self._subscribed_once = True
        self._ready.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._subscribed_once:
            self.events.put("lost the broker at %s (%s); reconnecting" % (self.where, reason))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            alarm = json.loads(bytes(message.payload))
            if not isinstance(alarm, dict):
                raise ValueError("not an object")
        except ValueError:
            alarm = {"alarm": "?", "kind": "unreadable alarm (%d bytes)" % len(message.payload)}
        self.alarms.put(alarm)

    def next(self, timeout: float | None) -> dict[str, Any] | None:
        try:
            return self.alarms.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
