"""Prometheus metrics: reveals granted and denied, suspensions, dropped
input and reveal latency. Labels are outcomes, never ids or people."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

REVEALS = Counter("veilpost_reveals_total", "Reveal requests decided", ["outcome"])
SUSPENSIONS = Counter("veilpost_suspensions_total", "Courier and device suspensions by the sentinel")
DROPPED = Counter("veilpost_dropped_total", "Messages dropped as bad input", ["why"])
LATENCY = Histogram("veilpost_reveal_seconds", "From a reveal request's arrival to its reply",
                    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0))

_served: set[int] = set()


def serve(port: int) -> None:
    """Expose /metrics on 127.0.0.1 (once per port per process)."""
    if port not in _served:
        start_http_server(port, addr="127.0.0.1")
        _served.add(port)
