"""Who may use which MQTT topics, and how provisioning tells a broker.

`device_grants` and `GATEWAY_GRANTS` are the one place that decides what a
handheld and the gateway may publish and subscribe to. Both brokers enforce
them: Mosquitto through dynsec roles (gateway/dynsec.py) and the embedded
amqtt broker through its plugins (gateway/broker.py). `BrokerAdmin` is what
provisioning talks to, whichever broker runs.
"""

from __future__ import annotations

import secrets
from typing import NamedTuple, Protocol

from gateway.registry import check_device_id
from protocol.errors import BrokerError

SHARE_GROUP = "veilpost"


class Grant(NamedTuple):
    """One permission: `action` is "publish" or "subscribe"; `topic` is an
    MQTT filter (+ and # are wildcards) that the topic or filter must fall in."""

    action: str
    topic: str


def device_grants(device_id: str) -> tuple[Grant, ...]:
    """A handheld speaks on its own `up` and listens on its own `down` and `cmd`; nothing else."""
    base = "vp/v1/d/" + check_device_id(device_id) + "/"
    return (
        Grant("publish", base + "up"),
        Grant("subscribe", base + "down"),
        Grant("subscribe", base + "cmd"),
    )


def quarantine_grants(device_id: str) -> tuple[Grant, ...]:
    """A revoked handheld that was offline: it may still log in to fetch the
    retained wipe on its `cmd` topic, and publish on its `up` only so that the
    wipe's acknowledgement can be heard (the gateway refuses everything else
    from a revoked device); its `down` topic is closed."""
    base = "vp/v1/d/" + check_device_id(device_id) + "/"
    return (Grant("subscribe", base + "cmd"), Grant("publish", base + "up"))


GATEWAY_GRANTS: tuple[Grant, ...] = (
    Grant("subscribe", "$share/" + SHARE_GROUP + "/vp/v1/d/+/up"),
    Grant("subscribe", "vp/v1/d/+/up"),
    Grant("publish", "vp/v1/d/+/down"),
    Grant("publish", "vp/v1/d/+/cmd"),
    Grant("publish", "vp/v1/alarm"),
    Grant("publish", "vp/v1/audit/checkpoint"),
    Grant("publish", "vp/v1/gw/#"),
    Grant("subscribe", "vp/v1/gw/#"),
)

# The operator's CLI (`veilpost device revoke`) posts retained commands and
# listens for the handheld's sealed acknowledgement.
OPERATOR_GRANTS: tuple[Grant, ...] = (Grant("publish", "vp/v1/d/+/cmd"), Grant("subscribe", "vp/v1/d/+/up"))

# `veilpost alarms watch` listens to the alarm topic and may do nothing else.
WATCHER_GRANTS: tuple[Grant, ...] = (Grant("subscribe", "vp/v1/alarm"),)

# `veilpost audit witness` hears the audit log's retained checkpoints and may do nothing else.
WITNESS_GRANTS: tuple[Grant, ...] = (Grant("subscribe", "vp/v1/audit/checkpoint"),)


def filter_covers(allowed: str, requested: str) -> bool:
    """True when every topic `requested` can match is matched by `allowed`
    (for a plain topic: `allowed` matches it)."""
    want = requested.split("/")
    have = allowed.split("/")
    for i, level in enumerate(have):
        if level == "#":
            return True
        if i >= len(want):
            return False
        if level == "+":
            if want[i] == "#":
                return False
            continue
        if level != want[i]:
            return False
    return len(want) == len(have)


def new_password() -> str:
    """A broker password for a machine: 192 random bits, URL-safe text."""
    return secrets.token_urlsafe(24)


class BrokerAdmin(Protocol):
    """What provisioning needs from a broker. Usernames of handhelds are
    their device ids."""

    def add_device(self, device_id: str, password: str) -> None:
        """Create the handheld's client, allowed only its own topics."""
        ...

    def add_gateway(self, username: str, password: str) -> None:
        """Create a gateway client with GATEWAY_GRANTS."""
        ...

    def add_operator(self, username: str, password: str) -> None:
        """Create the operator's client with OPERATOR_GRANTS."""
        ...

    def add_watcher(self, username: str, password: str) -> None:
        """Create a read-only client with WATCHER_GRANTS (the alarm topic)."""
        ...

    def add_witness(self, username: str, password: str) -> None:
        """Create a read-only client with WITNESS_GRANTS (the audit checkpoints)."""
        ...

    def set_password(self, username: str, password: str) -> None: ...

    def disable(self, username: str) -> None:
        """Refuse new connections and kick the live session, if any."""
        ...

    def enable(self, username: str) -> None: ...

    def quarantine(self, device_id: str) -> None:
        """Move the handheld to quarantine_grants and end its live session."""
        ...

    def remove(self, username: str) -> None:
        """Delete the client (and a handheld's own role)."""
        ...

    def is_disabled(self, username: str) -> bool:
        """Whether the client exists but is disabled; BrokerAdminError if unknown."""
        ...

    def usernames(self) -> list[str]: ...

    def close(self) -> None: ...


class BrokerAdminError(BrokerError):
    """A broker refused an admin command; the message says which and why."""
