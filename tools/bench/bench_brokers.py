"""The brokers the broker benchmarks (revoke_latency, rotation_time) run
against: Mosquitto from the shipped config with dynsec, when it is installed,
the embedded broker with its accounts file in a home, and a veilpost home
wired to a broker as `veilpost device ...` uses it."""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def mosquitto_dynsec(folder: Path) -> Iterator[Any]:
    """A started Mosquitto with its own CA under `folder`, or None when
    mosquitto or its dynsec plugin is not installed."""
    from gateway.deploy import depot
    from tools.testbed.brokers import MosquittoBroker

    if not (shutil.which("mosquitto") and depot.find_dynsec_plugin()):
        yield None
        return
    ca = folder / "ca"
    crt, key = depot.make_ca(ca, "bench")
    depot.make_server_cert(ca, crt, key, ["127.0.0.1"])
    (folder / "mosquitto").mkdir()
    mosquitto = MosquittoBroker(folder / "mosquitto", ca)
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@contextmanager
def embedded_with_accounts(home_dir: Path) -> Iterator[Any]:
    """A started embedded broker whose accounts file is in `home_dir`, as a
    gateway running from that home serves it."""
    from gateway.broker_accounts import ACCOUNTS_FILE
    from tools.testbed.brokers import EmbeddedBrokerHandle

    home_dir.mkdir()
    broker = EmbeddedBrokerHandle(home_dir / ACCOUNTS_FILE)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def home_on(home_dir: Path, broker: Any) -> tuple[Any, Any]:
    """A new home whose broker link reaches `broker` (for Mosquitto, through
    the admin credentials file): (home, link); the caller closes both."""
    from gateway import provision as ops
    from gateway.home import init

    home = init(home_dir)
    folder = home_dir / ops.BROKER_DIR
    folder.mkdir(exist_ok=True)
    if broker.kind == "mosquitto":
        (folder / "admin.secret").write_text("%s\n%s\n" % broker.admin_credentials)
        home.config.mqtt.broker, home.config.mqtt.port = broker.host, broker.port
    return home, ops.open_broker(home)


def medians(results: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {"median_ms": statistics.median(f), "max_ms": max(f), "rounds": len(f)}
            for name, f in results.items()}
