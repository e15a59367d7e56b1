"""Structured logs: one JSON object per line. Callers pass ids, codes and
tracking numbers, never a name, phone or address.

`configure_logging(level)` is what `veilpost ... --log-level` calls: the
gateway's own events at `level`, the libraries it runs on (the embedded
broker's amqtt and its transitions state machine, paho) at WARNING unless
debug output is asked for.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

log = logging.getLogger("veilpost.gateway")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
THIRD_PARTY = ("amqtt", "transitions", "paho", "asyncio")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=True, sort_keys=True))


def parse_level(text: str | int) -> int:
    """A level name (any case) as a logging level, or ValueError naming the choices."""
    if isinstance(text, int) and text in LEVELS.values():
        return text
    level = LEVELS.get(str(text).strip().lower())
    if level is None:
        raise ValueError("log level %r is not one of %s" % (text, ", ".join(LEVELS)))
    return level


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (a test runner
    may swap it), not to the stream that was there when logging was set up."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: str | int = "info", stream: TextIO | None = None) -> None:
    """One handler on the root logger (replaced, never stacked, when called
    again), at `level`; third-party loggers at WARNING, or at `level` if
    that is quieter or is debug."""
    chosen = parse_level(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "veilpost", False)]:
        root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setLevel(chosen)  # quiet even if a tool lowers the root's level later (the demo's log file)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.veilpost = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(chosen)
    quiet = chosen if chosen == logging.DEBUG else max(chosen, logging.WARNING)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(quiet)
