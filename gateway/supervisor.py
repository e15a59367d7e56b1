"""A gateway as `veilpost gateway run` runs it: the service with what lives
beside it, plugged in through its lifecycle hooks. Today that is the
takeover of a dead peer's session (gateway/takeover.py), which acts only
when gateways share their work on an external MQTT 5 broker."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.home import Home
from gateway.service import GatewayService
from gateway.takeover import Takeover


def supervised(home: Home, clock: Callable[[], float] = time.time) -> GatewayService:
    """A GatewayService on `home` that adopts the sessions of dead peers."""
    return GatewayService(home, clock, hooks=[Takeover()])
