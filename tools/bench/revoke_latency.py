"""How fast a revoked handheld is cut off (invariant 7: within a second).

For each broker (Mosquitto started from gateway/deploy/mosquitto.conf with
dynsec, and the embedded amqtt broker, in memory and through its accounts
file as `veilpost device revoke` in another process uses it) it connects a
handheld, disables its broker client and times the command until the
handheld's socket is closed. Then the whole `veilpost device revoke` path
(gateway/provision.revoke: audit + deny-list commit, sealed retained wipe,
disable and kick) from the call until the handheld's socket is closed.
Prints the median and the worst of N rounds.

Run: python3 -m tools.bench.revoke_latency [--rounds N]
`run()` returns the same figures as a dict (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.broker_accounts import ACCOUNTS_FILE
from tools.bench.bench_brokers import embedded_with_accounts, home_on, medians, mosquitto_dynsec


def _rounds(broker: Any, admin: Any, rounds: int) -> list[float]:
    from tools.testbed.brokers import MqttProbe

    figures = []
    for i in range(rounds):
        username, password = broker.add_device("hh-%04d" % i)
        probe = MqttProbe(broker, username, password)
        if not probe.connected:
            raise RuntimeError(f"{username} could not connect: {probe.connack}")
        started = time.monotonic()
        admin.disable(username)
        if not probe.wait_disconnected(timeout=5) or probe.disconnected_at is None:
            raise RuntimeError(f"{username} was not kicked")
        figures.append((probe.disconnected_at - started) * 1000)
        probe.close()
    return figures


def _revokes(home_dir: Path, broker: Any, rounds: int) -> list[float]:
    """End to end through gateway/provision.revoke, the handheld online but silent."""
    from gateway import provision as ops
    from tools.testbed.brokers import MqttProbe

    home, link = home_on(home_dir, broker)
    figures = []
    try:
        for i in range(rounds):
            bundle = ops.provision(home, link, "hh-e%03d" % i, home_dir / "bundles", actor="it:bench")
            password = json.loads((bundle / "provision.json").read_text())["mqtt"]["password"]
            probe = MqttProbe(broker, "hh-e%03d" % i, password)
            started = time.monotonic()
            report = ops.revoke(home, link, "hh-e%03d" % i, "bench", ack_wait=0, actor="it:bench")
            if report.problems or not probe.wait_disconnected(timeout=5) or probe.disconnected_at is None:
                raise RuntimeError(f"revoke round {i} failed: {report.problems}")
            figures.append((probe.disconnected_at - started) * 1000)
            probe.close()
    finally:
        link.close()
        home.close()
    return figures


def run(rounds: int = 20) -> dict[str, dict[str, float]]:
    from gateway.broker import AccountsFileAdmin
    from tools.testbed.brokers import EmbeddedBrokerHandle

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp:
        folder = Path(tmp)
        with mosquitto_dynsec(folder) as mosquitto:
            if mosquitto is not None:
                results["mosquitto dynsec disableClient"] = _rounds(mosquitto, mosquitto.admin, rounds)
                results["mosquitto, device revoke"] = _revokes(folder / "home-m", mosquitto, rounds)
        memory = EmbeddedBrokerHandle()
        memory.start()
        try:
            results["embedded, in process"] = _rounds(memory, memory.admin, rounds)
        finally:
            memory.stop()
        home_e = folder / "home-e"
        with embedded_with_accounts(home_e) as shared:
            results["embedded, accounts file"] = _rounds(shared, AccountsFileAdmin(home_e / ACCOUNTS_FILE),
                                                         rounds)
            results["embedded, device revoke"] = _revokes(home_e, shared, rounds)
    return medians(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    for name, f in run(args.rounds).items():
        print(f"{name:34s} command -> kick: median {f['median_ms']:6.1f} ms, worst {f['max_ms']:6.1f} ms"
              f"  ({f['rounds']:.0f} rounds; target <= 1000 ms)")


if __name__ == "__main__":
    main()
