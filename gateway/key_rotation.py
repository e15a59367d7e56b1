"""`veilpost device rotate-keys`: a new master secret (and broker password)
for a live handheld, over the air; docs/wire.md "Key rotation" says how.
The registry holds the new secret, the running gateway sends it and switches
(gateway/rotation.py); this waits for the switch and reports its time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway import registry
from gateway.broker_access import new_password
from gateway.home import Home
from gateway.provision import ProvisionError


@dataclass
class RotationReport:
    device_id: str
    command_id: int
    switched_ms: float | None = None  # from the command to the handheld using the new key
    password_set: bool = False  # its new broker password is in force


def rotate_keys(home: Home, device_id: str, grace: float = registry.ROTATION_GRACE,
                wait: float = 10.0, now: float | None = None,
                clock: Callable[[], float] = time.monotonic, *, actor: str) -> RotationReport:
    """Rotate a handheld's master secret (and, when the gateway can apply it,
    its broker password) over the air: the running gateway sends the new
    secret sealed under the old key, the handheld acknowledges and switches.
    Waits up to `wait` seconds for the switch; an offline handheld finds the
    retained command when it connects."""
    from gateway.broker_admin import has_admin

    t0 = clock()
    now = time.time() if now is None else now
    # The gateway applies the new broker password when the handheld switches, if it can.
    password = new_password() if has_admin(home.config) else None
    try:
        command_id = registry.begin_rotation(home.store, home.keys.kek, device_id, password, grace, now)
    except registry.RegistryError as e:
        raise ProvisionError(f"cannot rotate the keys of {device_id}: {e}") from None
    with home.store.transaction() as tx:
        home.audit.append(tx, now, actor, device_id, "device-rotate-keys", "", "started",
                          {"command": command_id, "grace": grace})
    report = RotationReport(device_id, command_id)
    deadline = t0 + wait
    while True:
        rot = registry.rotation(home.store, device_id)
        if rot is None or rot.command_id != command_id:
            raise ProvisionError(f"the key rotation of {device_id} was replaced by another one")
        if not rot.pending and report.switched_ms is None:
            report.switched_ms = (clock() - t0) * 1000
        if not rot.pending and (password is None or rot.password_set is not None):
            report.password_set = rot.password_set is not None
            return report
        if clock() >= deadline:
            return report
        time.sleep(0.02)
