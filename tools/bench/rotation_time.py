"""How long a live handheld takes to rotate its master secret over the air
(docs/wire.md, "Key rotation"): `veilpost device rotate-keys` registers the
new secret, the running gateway sends it sealed under the old key (it looks
every 0.5 s), the handheld (the firmware in the simulator) stores it,
acknowledges and switches, and the gateway moves to the new key and sets the
new broker password. Timed from the call until the gateway uses the new key
("switched"), and until the handheld is back online on its new password.
Mosquitto (shipped config, dynsec) and the embedded broker, N rounds each.

Run: python3 -m tools.bench.rotation_time [--rounds N]
`run()` returns the same figures as a dict (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tools.bench.bench_brokers import embedded_with_accounts, home_on, medians, mosquitto_dynsec


def _rotate(home: Any, out: dict[str, Any]) -> None:
    from gateway import key_rotation

    out["r"] = key_rotation.rotate_keys(home, "hh-rot", wait=10, actor="it:bench")


def _rotations(home_dir: Path, broker: Any, rounds: int) -> tuple[list[float], list[float]]:
    from gateway import provision as ops
    from tools.simulator import Handheld
    from tools.testbed.depot import start_gateway

    home, link = home_on(home_dir, broker)
    service = start_gateway(home, broker)
    switched: list[float] = []
    back: list[float] = []
    hh = None
    try:
        bundle = ops.provision(home, link, "hh-rot", home_dir / "bundles", actor="it:bench")
        doc = json.loads((bundle / "provision.json").read_text())
        hh = Handheld(doc, home=home_dir / "hh", timeout=10)
        for _ in range(rounds):
            out: dict[str, Any] = {}
            started = time.monotonic()
            worker = threading.Thread(target=_rotate, args=(home, out))
            worker.start()
            while worker.is_alive():
                hh.step()
                time.sleep(0.002)
            report = out["r"]
            if report.switched_ms is None or not report.password_set:
                raise RuntimeError("the handheld did not take its new key")
            hh.wait(lambda: hh.app.online and hh.device.mqtt.password == hh.config["mqtt"]["password"],
                    "come back on the new password")
            switched.append(report.switched_ms)
            back.append((time.monotonic() - started) * 1000)
    finally:
        if hh is not None:
            hh.close()
        service.stop()
        link.close()
        home.close()
    return switched, back


def run(rounds: int = 5) -> dict[str, dict[str, float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp:
        folder = Path(tmp)
        with mosquitto_dynsec(folder) as mosquitto:
            if mosquitto is not None:
                s, b = _rotations(folder / "home-m", mosquitto, rounds)
                results["mosquitto: new key in use"], results["mosquitto: back on new password"] = s, b
        with embedded_with_accounts(folder / "home-e") as embedded:
            s, b = _rotations(folder / "home-e", embedded, rounds)
            results["embedded: new key in use"], results["embedded: back on new password"] = s, b
    return medians(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name, f in run(args.rounds).items():
        print(f"{name:34s} median {f['median_ms']:7.1f} ms, worst {f['max_ms']:7.1f} ms"
              f" ({f['rounds']:.0f} rounds)")


if __name__ == "__main__":
    main()
