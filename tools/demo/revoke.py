"""Revoking a lost handheld, for the demo, from the parts the gateway and the
broker already offer: the gateway seals a wipe command under the device's
own key, the registry marks the device revoked (the gateway then drops its
messages) with an audit entry, the command is published retained on the
device's command topic, and once the handheld has wiped itself its broker
account is disabled, which kicks it. `veilpost device revoke` (IT
provisioning) is the command for this; the demo uses it once it exists."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway import registry
from protocol import messages, topics

WIPE_COMMAND_ID = 1


@dataclass
class Revocation:
    device_id: str
    via: str  # which mechanism did it
    wipe_seconds: float | None = None  # revoke -> handheld wiped
    kick_seconds: float | None = None  # revoke -> broker account disabled
    broker_disabled: bool = False


def revoke(
    service: Any, broker: Any, it_client: Any, device_id: str, reason: str, wiped: Any, timeout: float = 5.0
) -> Revocation:
    """`wiped()` says whether the handheld has wiped itself (the demo watches
    its simulator); it is polled before the broker account is disabled, so
    the retained wipe reaches a handheld that is still online."""
    home = service.home
    started = time.monotonic()
    now = time.time()
    payload = service.handlers.seal_reply(
        device_id, "command", {"id": WIPE_COMMAND_ID, "cmd": messages.CMD_WIPE}, now
    )
    with home.store.transaction() as tx:
        registry.set_device_state(tx, device_id, "revoked")
        home.audit.append(
            tx, now, home.audit.person("staff", "it-demo"), device_id, "revoke", "", "ok", reason[:200]
        )
    it_client.publish(topics.cmd(device_id), payload, retain=True)
    out = Revocation(device_id, "registry + retained wipe + broker account (stand-in)")
    deadline = started + timeout
    while time.monotonic() < deadline and not wiped():
        time.sleep(0.01)
    if wiped():
        out.wipe_seconds = time.monotonic() - started
    out.broker_disabled = broker.disable(device_id)
    out.kick_seconds = time.monotonic() - started
    return out


def clear_retained(it_client: Any, device_id: str) -> None:
    """An empty retained message removes the wipe from the broker (the
    device's key is gone, and the account with it)."""
    it_client.publish(topics.cmd(device_id), b"", retain=True)
