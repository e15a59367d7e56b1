"""What a printer says about itself, the same shape for every language."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import PrinterError


@dataclass(frozen=True)
class PrinterStatus:
    paper_out: bool = False
    head_open: bool = False
    paused: bool = False
    ribbon_out: bool = False
    busy: bool = False
    raw: str = ""

    @property
    def ready(self) -> bool:
        """Safe to send the next label."""
        return not (self.paper_out or self.head_open or self.paused or self.ribbon_out)

    @property
    def idle(self) -> bool:
        return self.ready and not self.busy

    def problems(self) -> list[str]:
        names = [
            ("paper_out", "paper out"),
            ("head_open", "head open"),
            ("paused", "paused"),
            ("ribbon_out", "ribbon out"),
            ("busy", "busy"),
        ]
        return [text for attr, text in names if getattr(self, attr)]

    def describe(self) -> str:
        return ", ".join(self.problems()) or "ready"


class StatusError(PrinterError, ValueError):
    """A status reply that does not parse."""


SGD_LABEL_COUNT = b'! U1 getvar "odometer.total_label_count"\r\n'


def parse_sgd_int(data: bytes) -> tuple[int, int] | None:
    """A Zebra SGD getvar reply is the value in double quotes: `"42"`."""
    start = data.find(b'"')
    if start < 0:
        return None
    end = data.find(b'"', start + 1)
    if end < 0:
        return None
    text = data[start + 1 : end]
    if not text.isdigit():
        raise StatusError("label counter reply %r is not a number" % text[:20])
    return int(text), end + 1
