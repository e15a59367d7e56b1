"""What handling one batch produces: the replies and alarms published only
after the batch's commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.sentinel import Alarm
from protocol.errors import FORBIDDEN, ProtocolError

Msg = dict[str, Any]


@dataclass
class Reply:
    device_id: str
    name: str
    fields: dict[str, Any]
    retain: bool = False
    t0: float = 0.0  # arrival of the request, for the latency histogram


@dataclass
class Work:
    """What one batch produced, published after its commit."""
    replies: list[Reply] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    t0: float = 0.0  # arrival of the message being handled


def forbidden(text: str) -> ProtocolError:
    return ProtocolError(text, -1, FORBIDDEN)
