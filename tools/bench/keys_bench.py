"""What keeping the keys in a token costs: CPU time per operation (wrap and
unwrap a data key, sign a checkpoint, one HMAC) with the local key file and
with a SoftHSM2 token over PKCS#11, and the time of one retention run that
shreds N parcels and destroys their day's period key.

Run: python3 -m tools.bench.keys_bench [--n 2000] [--parcels 1000] [--json]
CPU time (time.process_time) counts this process only; SoftHSM2 runs in
process, so its work is counted too. A network HSM would add its round trip.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway import retention
from gateway.home import Home, init
from tools.testbed.depot import seed_parcel
from tools.testbed.softhsm import make_token, softhsm_module, token_home

NOW = 1_900_000_000.0
DAY = 86400.0


def _per_op_us(fn: Callable[[], object], n: int) -> dict[str, float]:
    fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}


def operations(home: Home, n: int) -> dict[str, dict[str, float]]:
    keys, secret, aad = home.keys, bytes(32), b"VP0000000001"
    kek_id, wrapped = keys.kek.period_wrap(int(NOW // DAY), secret, aad)
    message = bytes(72)  # a checkpoint message: sequence, head hash, time
    return {
        "wrap": _per_op_us(lambda: keys.kek.period_wrap(int(NOW // DAY), secret, aad), n),
        "unwrap": _per_op_us(lambda: keys.kek.unwrap(kek_id, wrapped, aad), n),
        "sign": _per_op_us(lambda: keys.sign(message), n),
        "hmac": _per_op_us(lambda: keys.person_mac(b"courier:C-112"), n),
    }


def retention_time(home: Home, parcels: int) -> dict[str, float]:
    for i in range(parcels):
        seed_parcel(home, "VP%010d" % i, "R-%02d" % (i % 20), "C-112", i, window=(NOW - 3600, NOW + 3600))
    home.store.run("UPDATE parcels SET state = 'delivered', delivered_at = ?", NOW)
    cpu, wall = time.process_time(), time.perf_counter()
    run = retention.retention_run(home.store, home.vault, home.audit, home.config, NOW + 31 * DAY)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert len(run.shredded) == parcels and len(run.destroyed) == 1
    return {"parcels": parcels, "wall_s": wall, "cpu_s": cpu, "per_parcel_ms": wall / parcels * 1000}


def run(n: int = 2000, parcels: int = 1000) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        homes: dict[str, Callable[[Path], Home]] = {"local": lambda f: init(f / "vp")}
        if softhsm_module() is not None:
            homes["pkcs11"] = lambda f: token_home(f / "vp", make_token(f / "hsm"))
        for name, make in homes.items():
            folder = Path(tmp) / name
            folder.mkdir()
            home = make(folder)
            try:
                out[name] = {"ops": operations(home, n), "retention": retention_time(home, parcels)}
            finally:
                home.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="operations timed per kind")
    ap.add_argument("--parcels", type=int, default=1000, help="parcels shredded by the retention run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    figures = run(args.n, args.parcels)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    for provider, f in figures.items():
        ops = ", ".join("%s %.1f µs" % (k, v["cpu_us"]) for k, v in f["ops"].items())
        r = f["retention"]
        print("%-7s CPU per op: %s" % (provider, ops))
        print("%-7s retention: %d parcels shredded and their period key destroyed in %.2f s"
              " (%.2f ms per parcel, CPU %.2f s)" % (provider, r["parcels"], r["wall_s"], r["per_parcel_ms"],
                                                      r["cpu_s"]))


if __name__ == "__main__":
    main()
