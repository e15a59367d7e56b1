"""What handling one batch produces: the replies and alarms published only
after the batch's commit, and the requests it answered, so that a batch
whose commit fails can still answer each of them ("unavailable")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.sentinel import Alarm
from protocol import messages
from protocol.errors import FORBIDDEN, UNAVAILABLE, PolicyDenied

Msg = dict[str, Any]


@dataclass
class Reply:
    device_id: str
    name: str
    fields: dict[str, Any]  # exactly the message's fields; tokens are sealed before they get here
    retain: bool = False
    t0: float = 0.0  # arrival of the request, for the latency histogram


@dataclass
class Request:
    """A message a device sent that wants an answer."""
    device_id: str
    name: str
    fields: Msg
    t0: float = 0.0


@dataclass
class Work:
    """What one batch produced, published after its commit."""
    replies: list[Reply] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    t0: float = 0.0  # arrival of the message being handled
    decoded: int = 0  # how many of the batch's messages were handled before a failure
    seq: int = 0  # the sequence number of the message being handled (an error's `ref`)
    committed: bool = True  # False: nothing was committed, the replies are "unavailable" ones
    failure: str = ""  # why the commit failed

    def mark(self) -> tuple[int, int]:
        return len(self.replies), len(self.alarms)

    def undo(self, mark: tuple[int, int]) -> None:
        """Forget what a message that was rolled back had produced."""
        del self.replies[mark[0]:]
        del self.alarms[mark[1]:]


class Refused(PolicyDenied):
    """A request the gateway will not carry out (not logged in, not your
    parcel...): the handheld gets an `error` with `code` and, where the
    courier should see why in their language, a denial code."""

    def __init__(self, text: str, deny: int = 0, code: int = FORBIDDEN) -> None:
        super().__init__(text)
        self.text, self.deny, self.code = text, deny, code


def refused(text: str, deny: int = 0) -> Refused:
    return Refused(text, deny)


# The messages a handheld sends that it waits an answer for.
ANSWERED = ("login", "route_request", "reveal_request", "preissue_request", "batch", "print_job", "scan",
            "delivered", "logout")
UNAVAILABLE_TEXT = "gateway unavailable (audit log cannot be written): nothing was recorded, try again later"


def unavailable(req: Request) -> Reply | None:
    """The answer to a request when nothing could be committed: fail closed,
    and built without touching the store."""
    f = req.fields
    if req.name == "reveal_request":
        return Reply(req.device_id, "reveal_denied", {
            "req": f["req"], "tracking_no": f["tracking_no"], "code": messages.DENY_UNAVAILABLE,
            "reason": "reveal denied: audit log unavailable, try again later"}, t0=req.t0)
    if req.name == "login":
        return Reply(req.device_id, "login_result", {"ok": False, "code": messages.DENY_UNAVAILABLE,
                                                     "reason": UNAVAILABLE_TEXT}, t0=req.t0)
    if req.name in ANSWERED:
        return Reply(req.device_id, "error", {"code": UNAVAILABLE, "detail": UNAVAILABLE_TEXT}, t0=req.t0)
    return None
