"""Mosquitto's dynamic-security plugin, driven over MQTT.

Commands are JSON published to `$CONTROL/dynamic-security/v1`; the plugin
answers on `$CONTROL/dynamic-security/v1/response`, echoing each command's
`correlationData`. `DynsecAdmin` sends a batch, waits for every answer and
raises `DynsecError` naming the command that failed. It is also the
`BrokerAdmin` that provisioning uses when the broker is Mosquitto.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker_access import (
    GATEWAY_GRANTS,
    OPERATOR_GRANTS,
    WATCHER_GRANTS,
    WITNESS_GRANTS,
    BrokerAdminError,
    Grant,
    check_device_id,
    device_grants,
    quarantine_grants,
)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
GATEWAY_ROLE = "vp-gateway"
OPERATOR_ROLE = "vp-operator"
WATCHER_ROLE = "vp-alarms"
WITNESS_ROLE = "vp-witness"


class DynsecError(BrokerAdminError):
    """The plugin refused a command, or did not answer in time."""

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"dynsec {command}: {error}")
        self.command = command
        self.error = error


def device_role(device_id: str) -> str:
    return "vp-device-" + check_device_id(device_id)


def quarantine_role(device_id: str) -> str:
    return device_role(device_id) + "-quarantine"


def role_acls(grants: tuple[Grant, ...]) -> list[dict[str, Any]]:
    """Dynsec ACL entries for our grants (receiving stays at the plugin's default, allowed)."""
    acls = []
    for grant in grants:
        wildcard = "+" in grant.topic or "#" in grant.topic
        if grant.action == "publish":
            acltype = "publishClientSend"
        else:
            acltype = "subscribePattern" if wildcard else "subscribeLiteral"
        acls.append({"acltype": acltype, "topic": grant.topic, "allow": True})
    return acls


class DynsecAdmin:
    """A connected admin session. Use as a context manager or call close()."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        ca_file: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._answered = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="vp-admin-" + secrets.token_hex(4),
            protocol=mqtt.MQTTv311,
        )
        self._client.username_pw_set(username, password)
        if ca_file:
            self._client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self._client.on_message = self._on_message
        connected = threading.Event()
        subscribed = threading.Event()
        outcome: dict[str, Any] = {}

        def on_connect(client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            outcome["connect"] = reason
            connected.set()
            if not reason.is_failure:
                client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
            outcome["subscribe"] = reasons
            subscribed.set()

        self._client.on_connect = on_connect
        self._client.on_subscribe = on_subscribe
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise DynsecError("connect", f"cannot reach the broker at {host}:{port}: {exc}") from exc
        self._client.loop_start()
        if not connected.wait(timeout):
            self.close()
            raise DynsecError("connect", f"no CONNACK from {host}:{port} within {timeout} s")
        if outcome["connect"].is_failure:
            self.close()
            raise DynsecError("connect", f"broker refused admin {username!r}: {outcome['connect']}")
        if not subscribed.wait(timeout) or any(r.is_failure for r in outcome.get("subscribe", [])):
            self.close()
            raise DynsecError("connect", f"admin {username!r} may not subscribe to {RESPONSE_TOPIC}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> DynsecAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the wire

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._answered:
            for response in responses:
                key = response.get("correlationData") if isinstance(response, dict) else None
                if key in self._pending:
                    self._pending[key] = response
            self._answered.notify_all()

    def execute(self, commands: list[dict[str, Any]], *, check: bool = True) -> list[dict[str, Any]]:
        """Send commands in one message; return their responses in order.
        With `check`, the first error raises DynsecError."""
        batch = "%s-" % secrets.token_hex(6)
        keys = [batch + str(i) for i in range(len(commands))]
        payload = [dict(cmd, correlationData=key) for cmd, key in zip(commands, keys, strict=True)]
        with self._lock:
            with self._answered:
                for key in keys:
                    self._pending[key] = None
            info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": payload}), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise DynsecError(commands[0]["command"], f"publish failed: {mqtt.error_string(info.rc)}")
            with self._answered:
                done = self._answered.wait_for(
                    lambda: all(self._pending[k] is not None for k in keys), self.timeout
                )
                answers = [self._pending.pop(k) for k in keys]
        if not done:
            names = ", ".join(c["command"] for c, a in zip(commands, answers, strict=True) if a is None)
            raise DynsecError(names, f"no answer within {self.timeout} s (is the dynsec plugin loaded?)")
        responses = [a for a in answers if a is not None]
        if check:
            for response in responses:
                if response.get("error"):
                    raise DynsecError(str(response.get("command")), str(response["error"]))
        return responses

    def _one(self, command: str, **fields: Any) -> dict[str, Any]:
        return self.execute([dict(fields, command=command)])[0]

    # the plugin's commands

    def create_client(
        self, username: str, password: str, *, roles: Sequence[str] = (), textname: str = ""
    ) -> None:
        fields: dict[str, Any] = {"username": username, "password": password,
                                  "roles": [{"rolename": r} for r in roles]}
        if textname:
            fields["textname"] = textname
        self._one("createClient", **fields)

    def delete_client(self, username: str) -> None:
        self._one("deleteClient", username=username)

    def disable_client(self, username: str) -> None:
        """Refuse new connections; the plugin also kicks the live session."""
        self._one("disableClient", username=username)

    def enable_client(self, username: str) -> None:
        self._one("enableClient", username=username)

    def set_client_password(self, username: str, password: str) -> None:
        self._one("setClientPassword", username=username, password=password)

    def create_role(self, rolename: str, acls: Sequence[dict[str, Any]] = ()) -> None:
        self._one("createRole", rolename=rolename, acls=list(acls))

    def delete_role(self, rolename: str) -> None:
        self._one("deleteRole", rolename=rolename)

    def add_role_acl(self, rolename: str, acltype: str, topic: str, *, allow: bool = True,
                     priority: int = 0) -> None:
        self._one("addRoleACL", rolename=rolename, acltype=acltype, topic=topic, allow=allow,
                  priority=priority)

    def add_client_role(self, username: str, rolename: str, priority: int = 0) -> None:
        self._one("addClientRole", username=username, rolename=rolename, priority=priority)

    def get_client(self, username: str) -> dict[str, Any]:
        """The plugin's record: username, roles, groups, and `disabled` when disabled."""
        client: dict[str, Any] = self._one("getClient", username=username)["data"]["client"]
        return client

    def list_clients(self) -> list[str]:
        data = self._one("listClients", verbose=False, count=-1, offset=0)["data"]
        return [str(c) for c in data.get("clients", [])]

    # BrokerAdmin

    def add_device(self, device_id: str, password: str) -> None:
        role = device_role(device_id)
        self.execute([
            {"command": "createRole", "rolename": role, "acls": role_acls(device_grants(device_id))},
            {"command": "createClient", "username": device_id, "password": password,
             "textname": "handheld " + device_id, "roles": [{"rolename": role}]},
        ])

    def _add_with_role(self, username: str, password: str, role: str, grants: tuple[Grant, ...],
                       textname: str) -> None:
        existing = self.execute([{"command": "getRole", "rolename": role}], check=False)[0]
        commands: list[dict[str, Any]] = []
        if existing.get("error"):
            commands.append({"command": "createRole", "rolename": role, "acls": role_acls(grants)})
        commands.append({"command": "createClient", "username": username, "password": password,
                         "textname": textname, "roles": [{"rolename": role}]})
        self.execute(commands)

    def add_gateway(self, username: str, password: str) -> None:
        self._add_with_role(username, password, GATEWAY_ROLE, GATEWAY_GRANTS, "veilpost gateway")

    def add_operator(self, username: str, password: str) -> None:
        self._add_with_role(username, password, OPERATOR_ROLE, OPERATOR_GRANTS, "veilpost operator")

    def add_watcher(self, username: str, password: str) -> None:
        self._add_with_role(username, password, WATCHER_ROLE, WATCHER_GRANTS, "veilpost alarm watcher")

    def add_witness(self, username: str, password: str) -> None:
        self._add_with_role(username, password, WITNESS_ROLE, WITNESS_GRANTS, "veilpost audit witness")

    def is_disabled(self, username: str) -> bool:
        return bool(self.get_client(username).get("disabled"))

    def set_password(self, username: str, password: str) -> None:
        self.set_client_password(username, password)

    def disable(self, username: str) -> None:
        self.disable_client(username)

    def enable(self, username: str) -> None:
        self.enable_client(username)

    def quarantine(self, device_id: str) -> None:
        """The device's role swapped for its quarantine role; disabling and
        enabling the client ends the live session, whose subscriptions would
        otherwise outlive the change."""
        role = quarantine_role(device_id)
        self.execute([{"command": "deleteRole", "rolename": role}], check=False)
        self.execute([
            {"command": "createRole", "rolename": role, "acls": role_acls(quarantine_grants(device_id))},
            {"command": "addClientRole", "username": device_id, "rolename": role},
            {"command": "removeClientRole", "username": device_id, "rolename": device_role(device_id)},
            {"command": "disableClient", "username": device_id},
            {"command": "enableClient", "username": device_id},
        ])

    def remove(self, username: str) -> None:
        self.delete_client(username)
        try:
            roles = [device_role(username), quarantine_role(username)]
        except ValueError:
            return
        self.execute([{"command": "deleteRole", "rolename": r} for r in roles], check=False)

    def usernames(self) -> list[str]:
        return sorted(self.list_clients())
