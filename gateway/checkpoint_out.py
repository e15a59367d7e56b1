"""Sending the audit log's checkpoints to witnesses: each new checkpoint is
published retained on vp/v1/audit/checkpoint (a witness that connects later
still gets the newest) and POSTed to each [audit] witness_urls. A witness
that cannot be reached is logged and tried again with the next checkpoint;
the gateway never waits on it except when stopping."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from typing import Any

from gateway.audit import Checkpoint
from gateway.logs import log_event
from protocol import topics

POST_TIMEOUT = 5.0


def post(url: str, checkpoint: Checkpoint, timeout: float = POST_TIMEOUT) -> bool:
    """POST one checkpoint to a witness; whether it kept it (or had it already)."""
    request = urllib.request.Request(url, data=checkpoint.to_wire(), method="POST",
                                     headers={"Content-Type": "application/cbor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            return 200 <= int(response.status) < 300
    except urllib.error.HTTPError as e:
        log_event("witness-refused-checkpoint", url=url, seq=checkpoint.seq, status=e.code,
                  why=e.read(200).decode("utf-8", "replace").strip())
    except (urllib.error.URLError, OSError) as e:
        log_event("witness-unreachable", url=url, seq=checkpoint.seq, error=str(getattr(e, "reason", e)))
    return False


class CheckpointOut:
    """Where a gateway's checkpoints go; `send` is called after the commit."""

    def __init__(self, witness_urls: list[str]) -> None:
        self.urls = list(witness_urls)
        self.sent = 0  # the newest sequence number sent

    def send(self, checkpoint: Checkpoint | None, client: Any, wait: bool = False) -> list[threading.Thread]:
        """Publish and POST `checkpoint` unless it was sent already; with
        `wait`, the POSTs finish (or time out) before this returns."""
        if checkpoint is None or checkpoint.seq <= self.sent:
            return []
        self.sent = checkpoint.seq
        if client is not None:
            client.publish(topics.AUDIT_CHECKPOINT, checkpoint.to_wire(), qos=1, retain=True)
        log_event("audit-checkpoint", seq=checkpoint.seq, head=checkpoint.head.hex())
        threads = [threading.Thread(target=post, args=(url, checkpoint), name="veilpost-witness-post",
                                    daemon=True) for url in self.urls]
        for t in threads:
            t.start()
        if wait:
            for t in threads:
                t.join(POST_TIMEOUT + 1)
        return threads
