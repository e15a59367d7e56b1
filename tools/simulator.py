"""The handheld simulator: the firmware source itself (firmware/device.py,
firmware/app.py, firmware/mqtt.py) run on CPython with hal/host against a real
broker, driven by the same scanner and keypad events a courier makes.

    hh = Handheld({"device_id": "hh-01", "master_secret": secret,
                   "mqtt": {"host": "127.0.0.1", "port": 1883, "username": "hh-01", "password": pw}})
    hh.login("C-112", "2468")
    hh.scan_label(qr_text)                 # the label's QR: the masked view, the scan sent with its proof
    hh.reveal("VP0001", ["phone"], 1)      # RevealResult(shown={"phone": ...}) or .denied and .code
    hh.deliver("VP0001", code="123456")
    hh.scan("VP0001"); hh.type_in("VP0001")   # a barcode read or a typed number: shown, never "in hand"
    hh.go_offline(); hh.go_online(); hh.flash_contents()
"""

from __future__ import annotations

import select
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from firmware import app as appmod
from firmware import states
from firmware.device import Device
from firmware.hal.host.board import HostHAL
from gateway.aead import CryptographyAEAD
from protocol import labels, messages
from protocol.errors import ProtocolError, VeilpostError

FIELD_IDS = {"name": 1, "phone": 2, "address": 3}
REASON_IDS = {v: k for k, v in messages.REASONS.items()}


class SimulatorError(VeilpostError):
    """The simulated handheld could not do what was asked (with why)."""


class RevealResult:
    """What the courier saw: `shown` {field name: text}, or `denied` (the
    reason as the screen said it) with `code`, the denial code
    (protocol.messages.DENY_*; 0 when the handheld refused by itself)."""

    def __init__(self, shown: dict[str, str] | None = None, denied: str | None = None,
                 code: int = 0) -> None:
        self.shown = shown or {}
        self.denied = denied
        self.code = code

    def __bool__(self) -> bool:
        return self.denied is None and bool(self.shown)

    def __repr__(self) -> str:
        if self.denied:
            return f"RevealResult(denied={self.denied!r}, code={self.code})"
        return f"RevealResult(fields={list(self.shown)})"


class Handheld:
    def __init__(self, config: dict[str, Any], home: str | Path | None = None,
                 clock: Callable[[], float] = time.time, timeout: float = 10.0) -> None:
        self._own_home = home is None
        self.home = Path(home or tempfile.mkdtemp(prefix="veilpost-hh-"))
        self.offset = 0.0
        self._clock = clock
        self.timeout = timeout
        cfg = {k: v for k, v in config.items() if k != "master_secret"}
        cfg.setdefault("lang", "en")
        self.hal = HostHAL(str(self.home / "flash"), str(self.home / "nvs"), aead=CryptographyAEAD(),
                           clock=self.now)
        secret = config.get("master_secret")
        if secret is not None and self.hal.keystore.get("master") is None:
            raw = bytes.fromhex(secret) if isinstance(secret, str) else bytes(secret)
            self.hal.keystore.put("master", raw)
        self.config = cfg
        self.device = Device(self.hal, cfg)
        self.device.start(self.now())
        if self.app.state == appmod.UNPROVISIONED:
            raise SimulatorError("handheld is not provisioned: no master secret or device id")
        self.wait(lambda: self.app.online, "connect to the broker")

    # ---- plumbing
    @property
    def app(self) -> appmod.App:
        return self.device.app

    def now(self) -> float:
        return self._clock() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the handheld's clock forward (display TTLs, token expiry)."""
        self.offset += seconds
        self.step()

    def step(self) -> None:
        self.device.step(self.now())

    def _idle(self, limit: float) -> None:
        sock = self.device.mqtt.sock if self.device.mqtt else None
        if sock is not None:
            try:
                select.select([sock], [], [], limit)
                return
            except (OSError, ValueError):
                pass
        time.sleep(limit)

    def wait(self, cond: Callable[[], bool], what: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            self.step()
            if cond():
                return
            if time.monotonic() > deadline:
                raise SimulatorError(f"timed out waiting to {what} (state {self.app.state}, "
                                     f"last error {self.device.last_error!r}, notice {self.app.notice!r})")
            self._idle(0.01)

    def settle(self, until_cut_off: bool = False) -> None:
        """Wait until every QoS 1 message sent so far is acknowledged by the
        broker; with `until_cut_off`, also stop once the gateway has cut this
        handheld off (suspended, its broker account refused), as an attack's
        sweep expects to be."""
        mq = self.device.mqtt
        if self.app.online and mq is not None:
            self.wait(lambda: (not mq.inflight and not self.app.outbox)
                      or (until_cut_off and self.app.state == states.SUSPENDED), "deliver queued messages")

    def _keys(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.hal.feed("key", k)

    def screen(self) -> str:
        return self.hal.display.text()

    # ---- what a courier does
    def login(self, courier_id: str, pin: str) -> None:
        self.hal.feed("scan", courier_id)
        self._keys(pin + appmod.KEY_ENTER)
        self.wait(lambda: self.app.state in (appmod.READY, appmod.BADGE), "log in")
        if self.app.state == appmod.BADGE:
            raise SimulatorError(self.app.notice or "login refused")

    def scan_label(self, qr_text: str) -> dict[str, Any]:
        """Scan a label's QR code, as the stock firmware reads it: the scan
        goes to the gateway with the label's proof. Returns the masked view
        on screen, or {"error": ...} when the parcel is not on the route."""
        try:
            tracking_no: str | None = labels.read(labels.from_text(qr_text))[0]
        except ProtocolError:
            tracking_no = None   # not a label: the handheld takes it for a barcode
        return self._read("scan", qr_text, tracking_no)

    def scan(self, tracking_no: str) -> dict[str, Any]:
        """A barcode read of the tracking number (Code128): the parcel is shown
        masked, but nothing is sent and only a damaged-label reveal is offered."""
        return self._read("scan", tracking_no, tracking_no)

    def type_in(self, tracking_no: str) -> dict[str, Any]:
        """The tracking number typed on the keyboard: like a barcode read."""
        return self._read("typed", tracking_no, tracking_no)

    def _read(self, kind: str, text: str, tracking_no: str | None) -> dict[str, Any]:
        self.hal.feed(kind, text)
        self.step()
        if tracking_no is None or self.app.current != tracking_no or self.app.state != appmod.PARCEL:
            return {"error": self.app.notice}
        self.settle()
        p = self.app.parcels[tracking_no]
        return {"tracking_no": tracking_no, "name": p["name"], "phone": p["phone"], "address": p["address"],
                "sort_code": p.get("sort_code"), "in_hand": self.app.proof is not None,
                "screen": self.screen()}

    def reveal(self, tracking_no: str, fields: Iterable[str | int], reason: str | int) -> RevealResult:
        """Ask to see fields of the parcel on screen (scan it first)."""
        if self.app.current != tracking_no or self.app.state != appmod.PARCEL:
            raise SimulatorError(f"parcel {tracking_no} is not on screen: scan it first")
        ids = [FIELD_IDS[f] if isinstance(f, str) else int(f) for f in fields]
        rid = REASON_IDS[reason] if isinstance(reason, str) else int(reason)
        self.app.last_denial, self.app.last_code = None, 0
        self._keys([appmod.KEY_REVEAL] + [str(i) for i in ids] + [appmod.KEY_ENTER, str(rid)])
        self.step()
        self.wait(lambda: self.app.state != appmod.REVEAL_WAIT, "get a reveal answer")
        self._back_to_parcel()    # a choice the handheld does not offer leaves its menu open
        shown = self.app.tokens.view(tracking_no, self.now())
        if self.app.last_denial is not None or shown is None:
            return RevealResult(denied=self.app.last_denial or self.app.notice or "nothing shown",
                                code=self.app.last_code)
        names = {v: k for k, v in FIELD_IDS.items()}
        return RevealResult(shown={names.get(fid, str(fid)): bytes(buf).decode()
                                   for fid, buf in shown.fields.items()})

    def deliver(self, tracking_no: str, code: str = "000000") -> bool:
        """Proof of delivery with a receiver code for the parcel on screen."""
        if self.app.current != tracking_no:
            self.scan(tracking_no)
        self._keys([appmod.KEY_DELIVER, *code, appmod.KEY_ENTER])
        self.step()
        ok = self.app.state == appmod.READY and tracking_no in self.app.delivered
        self._back_to_parcel()    # a code the handheld refused leaves the proof screen open
        self.settle()
        return ok

    def _back_to_parcel(self) -> None:
        for _ in range(3):
            if self.app.state not in (appmod.FIELDS, appmod.REASON, appmod.POD):
                return
            self._keys([appmod.KEY_BACK])
            self.step()

    def go_offline(self) -> None:
        self.hal.online = False
        self.device.go_offline(self.now())

    def go_online(self, wait_for_upload: bool = True) -> None:
        self.hal.online = True
        self.device.retry_at = 0
        self.device.attempt = 0
        self.wait(lambda: self.app.online, "reconnect")
        if wait_for_upload:
            self.wait(lambda: not len(self.app.queue), "upload the offline queue")
            self.settle()

    def reboot(self) -> None:
        """Power-cycle: RAM is gone, flash and NVS stay."""
        if self.device.mqtt is not None:
            self.device.mqtt.disconnect()
        self.device = Device(self.hal, dict(self.config))
        self.device.start(self.now())

    def flash_contents(self) -> dict[str, bytes]:
        """Every file the handheld wrote to (simulated) flash."""
        return {n: self.hal.flash.read(n) or b"" for n in self.hal.flash.names()}

    def close(self) -> None:
        if self.device.mqtt is not None:
            self.device.mqtt.disconnect()
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Handheld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> None:
    """Drive one handheld from the terminal: `python3 -m tools.simulator provision.json`."""
    import argparse
    import json

    from firmware.hal.host.board import TerminalInput

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("bundle", help="provision.json: device_id, master_secret (hex), mqtt {host, port, ...}")
    args = ap.parse_args(argv)
    config = json.loads(Path(args.bundle).read_text(encoding="utf-8"))
    hh = Handheld(config, timeout=30)
    hh.hal.terminal = TerminalInput()
    print("type 's TEXT' to scan (a label's QR text or a barcode), 't CODE' to type a tracking number,"
          " keys 0-9 * # A (reveal) B (deliver); Ctrl-C quits")
    last = ""
    try:
        while True:
            hh.step()
            screen = hh.screen()
            if screen != last:
                print("\n" + screen + "\n" + "-" * 32)
                last = screen
            hh._idle(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        hh.close()


if __name__ == "__main__":
    main()
