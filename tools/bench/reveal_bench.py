"""Reveal throughput and latency through a real Mosquitto, against the raw
echo rate of paho-mqtt on the same broker in the same run.

200 simulated handhelds (protocol Channel + paho clients, driven by a few
threads through paho's external-loop API) talk to one server at a time:
  echo:   one paho client (in its own process, like the gateway) republishes
          each `up` payload on that device's `down`;
  reveal: the gateway (`veilpost gateway run` in its own process) decides,
          audits, commits and replies with a sealed grant.
Each runs closed loop (every handheld keeps one request in flight: the most
the server can do; latency there is just devices / rate) and open loop at
one request per handheld per second (a very busy depot: what a courier
waits). Echo and reveal alternate `rounds` times so that load drifting on a
shared machine weighs on both alike.
Targets: reveal rate >= 0.5x echo rate (closed loop), reveal p99 <= 30 ms
(open loop).

Run: python3 -m tools.bench.reveal_bench [--devices 200] [--seconds 3] [--rounds 2]
`run()` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[2]
THREADS = 4


class Device:
    """One simulated handheld: a Channel, a paho client, one request in flight."""

    def __init__(self, device_id: str, secret: bytes, password: str, session: bytes,
                 parcels: list[str]) -> None:
        from gateway.aead import CryptographyAEAD
        from protocol.session import GATEWAY, HANDHELD, Channel

        self.id = device_id
        # The load generator uses the CPython AEAD too, so that the clients'
        # own work stays small next to the server's.
        self.channel = Channel(secret, device_id, HANDHELD, aead=CryptographyAEAD())
        # In the echo phase the reply is the device's own request: opening it
        # with the other end's channel costs the client what opening a grant does.
        self.mirror = Channel(secret, device_id, GATEWAY, aead=CryptographyAEAD())
        self.session = session
        self.parcels = parcels
        self.n = 0
        self.sent: deque[float] = deque()  # send times of requests in flight (replies come in order)
        self.latencies: list[float] = []
        self.granted = 0
        self.denied = 0
        self.mode = "echo"
        self.running = False
        self.up = "vp/v1/d/%s/up" % device_id
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-" + device_id,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(device_id, password)
        self.client.on_message = self._on_message
        self.subscribed = False
        self.client.on_subscribe = lambda *_a: setattr(self, "subscribed", True)

    def payload(self) -> bytes:
        # Both phases send the same real reveal requests.
        self.n += 1
        t = self.parcels[self.n % len(self.parcels)]
        return self.channel.wrap("reveal_request", {"req": self.n, "tracking_no": t, "fields": [2],
                                                    "reason": 1, "session": self.session}, int(time.time()))

    def fire(self) -> None:
        payload = self.payload()
        self.sent.append(time.perf_counter())
        self.client.publish(self.up, payload, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.sent:
            self.latencies.append(time.perf_counter() - self.sent.popleft())
        if self.mode == "echo":
            self.mirror.unwrap(bytes(msg.payload), int(time.time()))
        else:
            name, fields, _ = self.channel.unwrap(bytes(msg.payload), int(time.time()))
            if name == "reveal_grant":
                self.granted += 1
                if self.granted % 50 == 1:  # open some tokens: the grant really carries the field
                    self.channel.open_token(fields["token"], int(time.time()))
            else:
                self.denied += 1
        if self.running:
            self.fire()


class Fleet:
    """Devices driven by a few threads with a selector each (paho's external loop)."""

    def __init__(self, devices: list[Device], host: str, port: int) -> None:
        self.devices = devices
        for d in devices:
            d.client.connect(host, port, keepalive=60)
        self.stop = False
        self.threads = [threading.Thread(target=self._loop, args=(devices[i::THREADS],), daemon=True)
                        for i in range(THREADS)]
        for t in self.threads:
            t.start()
        for d in devices:
            d.client.subscribe("vp/v1/d/%s/down" % d.id, qos=1)
        deadline = time.monotonic() + 30
        while not all(d.subscribed for d in devices):
            if time.monotonic() > deadline:
                raise TimeoutError("fleet could not subscribe")
            time.sleep(0.05)

    def _loop(self, devices: list[Device]) -> None:
        sel = selectors.DefaultSelector()
        for d in devices:
            sock = d.client.socket()
            if sock is None:
                raise ConnectionError("bench device %s lost its connection before the run" % d.id)
            sel.register(sock, selectors.EVENT_READ, d)
        last_misc = time.monotonic()
        while not self.stop:
            for d in devices:
                if d.client.want_write():
                    d.client.loop_write()
            for key, _ in sel.select(timeout=0.005):
                key.data.client.loop_read()
            if time.monotonic() - last_misc > 1:
                for d in devices:
                    d.client.loop_misc()
                last_misc = time.monotonic()

    def measure(self, mode: str, seconds: float, rate: float = 0.0,
                warmup: float = 1.0) -> tuple[list[float], float]:
        """Closed loop (rate 0) or open loop at `rate` requests/s in total.
        Returns the latencies seen in the window and the window's length."""
        for d in self.devices:
            d.mode, d.latencies, d.granted, d.denied = mode, [], 0, 0
            d.sent.clear()
            d.running = rate == 0
        stop = threading.Event()
        pacer = None
        if rate == 0:
            for d in self.devices:
                d.fire()
        else:
            def pace() -> None:
                i, tick, next_at = 0, 0.01, time.perf_counter()
                while not stop.is_set():
                    for _ in range(max(1, round(rate * tick))):
                        self.devices[i % len(self.devices)].fire()
                        i += 1
                    next_at += tick
                    time.sleep(max(0.0, next_at - time.perf_counter()))

            pacer = threading.Thread(target=pace, daemon=True)
            pacer.start()
        time.sleep(warmup)
        for d in self.devices:
            d.latencies = []
        start = time.perf_counter()
        time.sleep(seconds)
        counted = [list(d.latencies) for d in self.devices]
        elapsed = time.perf_counter() - start
        for d in self.devices:
            d.running = False
        stop.set()
        if pacer is not None:
            pacer.join()
        time.sleep(1.0)  # let the last in-flight replies land
        return [x for chunk in counted for x in chunk], elapsed

    def close(self) -> None:
        self.stop = True
        for t in self.threads:
            t.join(2)
        for d in self.devices:
            d.client.disconnect()


def echo_server(host: str, port: int, username: str, password: str) -> None:
    """A paho client that republishes every `up` payload on that device's `down`."""
    # MQTT 5, as the gateway speaks to Mosquitto: the same library doing the same protocol.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-echo", protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.max_inflight_messages_set(1000)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        client.publish(msg.topic[:-2] + "down", msg.payload, qos=1)

    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe("vp/v1/d/+/up", qos=1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: os._exit(0))
    client.connect(host, port)
    print("ready", flush=True)
    client.loop_forever()


def _setup_home(folder: Path, broker: Any, devices: int, durability: str) -> list[Device]:
    from gateway import registry
    from gateway.home import init
    from tools.testbed.depot import seed_parcel

    home = init(folder / "home")
    user, password = broker.gateway_credentials
    cfg = (folder / "home" / "veilpost.toml").read_text()
    for old, new in (('broker = "embedded"', 'broker = "127.0.0.1"'),
                     ("port = 1883", "port = %d" % broker.port),
                     ('username = ""', 'username = "%s"' % user),
                     ('password = ""', 'password = "%s"' % password),
                     ('durability = "full"', 'durability = "%s"' % durability),
                     ("per_minute = 6", "per_minute = 100000000"),
                     ("distinct_per_minute = 3", "distinct_per_minute = 100000000"),
                     ("per_shift = 400", "per_shift = 100000000"),
                     ("route_share = 0.6", "route_share = 100000000.0"),
                     ("depot_floor = 6", "depot_floor = 100000000"),
                     ("ratio_slack = 10", "ratio_slack = 100000000"),
                     ("sequential_run = 3", "sequential_run = 0"),
                     # Each round starts a new gateway under a new client id: its
                     # session must not outlive it, or a shared subscription would
                     # keep handing requests to the stopped one.
                     ("session_expiry = 3600", "session_expiry = 0")):
        cfg = cfg.replace(old, new)
    (folder / "home" / "veilpost.toml").write_text(cfg)
    now = time.time()
    fleet = []
    for i in range(devices):
        courier, device_id = "C-%04d" % i, "HH-%04d" % i
        registry.add_courier(home.store, courier, "1234", "D-1", "00:00-24:00")
        secret = registry.add_device(home.store, home.keys.kek, device_id, "bench")
        registry.set_device_state(home.store, device_id, "active")
        with home.store.transaction() as tx:
            session = registry.login(tx, courier, device_id, now)
        parcels = ["VP%04d%06d" % (i, n * 37 + 11) for n in range(5)]
        for n, t in enumerate(parcels):
            seed_parcel(home, t, "R-%04d" % i, courier, n)
            home.store.run("INSERT INTO scans (device_id, tracking_no, at) VALUES (?, ?, ?)",
                           device_id, t, now + 3600)
        _, mqtt_password = broker.add_device(device_id)
        fleet.append(Device(device_id, secret, mqtt_password, bytes.fromhex(session), parcels))
    home.close()
    return fleet


def _figures(samples: list[tuple[list[float], float]]) -> dict[str, float]:
    lat = sorted(x for chunk, _ in samples for x in chunk)
    elapsed = sum(e for _, e in samples)
    if not lat:
        return {"rate": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    return {"rate": len(lat) / elapsed, "p50_ms": lat[len(lat) // 2] * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000}


class _Server:
    """The echo server or the gateway, each in its own process, one at a time."""

    def __init__(self, folder: Path, broker: Any) -> None:
        self.folder, self.broker = folder, broker
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def echo(self) -> None:
        user, password = self.broker.gateway_credentials
        self.proc = subprocess.Popen([sys.executable, "-m", "tools.bench.reveal_bench", "--echo-server",
                                      self.broker.host, str(self.broker.port), user, password],
                                     cwd=REPO, stdout=subprocess.PIPE, text=True)
        if "ready" not in (self.proc.stdout.readline() if self.proc.stdout else ""):
            raise RuntimeError("echo server did not start")
        time.sleep(0.5)

    def gateway(self) -> None:
        # A fresh client id per start: no persistent-session backlog from the echo phase.
        self.starts += 1
        cfg = self.folder / "home" / "veilpost.toml"
        text = cfg.read_text()
        at = text.index("client_id = ")
        text = text[:at] + 'client_id = "bench-gw-%d"' % self.starts + text[text.index("\n", at):]
        cfg.write_text(text)
        self.proc = subprocess.Popen([sys.executable, "-m", "tools", "--home", str(self.folder / "home"),
                                      "gateway", "run"], cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        err = self.proc.stderr
        deadline = time.monotonic() + 20
        while err is not None and time.monotonic() < deadline:
            if "mqtt-connected" in err.readline():
                break
        threading.Thread(target=lambda: err and err.read(), daemon=True).start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def run(devices: int = 200, seconds: float = 3.0, rounds: int = 2,
        durability: str = "full") -> dict[str, Any]:
    from tools.testbed.brokers import MosquittoBroker

    if shutil.which("mosquitto") is None:
        raise RuntimeError("the mosquitto binary is needed for this benchmark")
    samples: dict[str, list[tuple[list[float], float]]] = {
        k: [] for k in ("echo", "reveal", "echo-paced", "reveal-paced")}
    granted = denied = 0
    with tempfile.TemporaryDirectory(prefix="veilpost-bench-") as tmp:
        folder = Path(tmp)
        (folder / "mosquitto").mkdir()
        broker = MosquittoBroker(folder / "mosquitto", folder, tls=False)
        broker.start()
        server = _Server(folder, broker)
        fleet = None
        try:
            devs = _setup_home(folder, broker, devices, durability)
            fleet = Fleet(devs, broker.host, broker.port)
            for _ in range(rounds):
                for mode in ("echo", "reveal"):
                    if mode == "echo":
                        server.echo()
                    else:
                        server.gateway()
                    samples[mode].append(fleet.measure(mode, seconds))
                    if mode == "reveal":
                        granted += sum(d.granted for d in devs)
                        denied += sum(d.denied for d in devs)
                    samples[mode + "-paced"].append(fleet.measure(mode, seconds, rate=devices))
                    server.stop()
        finally:
            if fleet is not None:
                fleet.close()
            server.stop()
            broker.stop()
    raw, reveal = _figures(samples["echo"]), _figures(samples["reveal"])
    raw_open, reveal_open = _figures(samples["echo-paced"]), _figures(samples["reveal-paced"])
    ratio = reveal["rate"] / raw["rate"] if raw["rate"] else 0.0
    return {
        "devices": devices, "seconds": seconds, "rounds": rounds, "durability": durability,
        "echo_per_s": round(raw["rate"], 1), "echo_p50_ms": round(raw["p50_ms"], 2),
        "echo_p99_ms": round(raw["p99_ms"], 2),
        "reveals_per_s": round(reveal["rate"], 1), "reveal_p50_ms": round(reveal["p50_ms"], 2),
        "reveal_p99_ms": round(reveal["p99_ms"], 2), "granted": granted, "denied": denied,
        "ratio_to_echo": round(ratio, 3),
        "paced_per_s": devices, "echo_paced_p50_ms": round(raw_open["p50_ms"], 2),
        "echo_paced_p99_ms": round(raw_open["p99_ms"], 2),
        "reveal_paced_p50_ms": round(reveal_open["p50_ms"], 2),
        "reveal_paced_p99_ms": round(reveal_open["p99_ms"], 2),
        "target_ratio_met": ratio >= 0.5, "target_p99_met": reveal_open["p99_ms"] <= 30.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--durability", choices=("full", "normal"), default="full")
    parser.add_argument("--echo-server", nargs=4, metavar=("HOST", "PORT", "USER", "PASSWORD"))
    args = parser.parse_args()
    if args.echo_server:
        host, port, user, password = args.echo_server
        echo_server(host, int(port), user, password)
        return
    print(json.dumps(run(args.devices, args.seconds, args.rounds, args.durability), indent=2))


if __name__ == "__main__":
    main()
