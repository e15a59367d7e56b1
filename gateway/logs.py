"""Structured logs: one JSON object per line. Callers pass ids, codes and
tracking numbers, never a name, phone or address."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("veilpost.gateway")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=True, sort_keys=True))
