"""Scale-out figures: reveal throughput and latency of gateway processes on
one Mosquitto, against the raw echo ceiling of paho on that same broker in
the same run; one gateway against two sharing a PostgreSQL store; and
gateway (and broker) memory per connected device with many devices.

Gateways run as real `veilpost gateway run` processes (so two gateways are
two interpreters, not two threads under one GIL). Simulated devices are
light: one paho client carries many devices' Channels for the reveal loop,
and raw sockets speak MQTT + Channel for the memory figure.

Run: python3 -m tools.bench.scaleout [--quick]; `run(quick)` returns a dict.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.aead import CryptographyAEAD
from protocol import topics
from protocol.session import HANDHELD, Channel

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PG_SERVER = os.environ.get("VEILPOST_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
ECHO_ROOT = "vp/v1/e/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


class BenchBroker:
    """A Mosquitto with the project's performance settings (no TLS, no
    accounts: the bench measures messages, not logins)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.host, self.port = folder, HOST, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        conf.write_text("listener %d %s\nallow_anonymous true\nset_tcp_nodelay true\n"
                        "max_queued_messages 100000\nmax_inflight_messages 1000\npersistence false\n"
                        "log_type error\n" % (self.port, HOST))
        if os.geteuid() == 0:
            conf.write_text(conf.read_text() + "user root\n")
        self.process = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def pg_schema() -> tuple[str, Any] | None:
    """A throwaway schema: (store URL, drop function), or None without PostgreSQL."""
    try:
        import psycopg

        conn = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3)
    except Exception:
        return None
    name = "vp_bench_" + secrets.token_hex(4)
    conn.execute('CREATE SCHEMA "%s"' % name)
    conn.close()

    def drop() -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as c:
            c.execute('DROP SCHEMA IF EXISTS "%s" CASCADE' % name)

    sep = "&" if "?" in PG_SERVER else "?"
    return PG_SERVER + sep + "options=-c%20search_path%3D" + name, drop


def write_config(folder: Path, gateway_id: str, port: int, store: str = "", keys: Path | None = None) -> None:
    """A bench config: budgets out of the way (the bench measures throughput,
    the policy is tested elsewhere), everything else as shipped."""
    (folder / "veilpost.toml").write_text(
        ('keys_dir = "%s"\n' % keys if keys else "") +
        'gateway_id = "%s"\nstore = "%s"\ndurability = "normal"\n'
        '[mqtt]\nbroker = "%s"\nport = %d\nclient_id = "bench-%s"\n'
        '[reveal]\nignore_window = true\nscan_fresh_minutes = 600\n'
        '[sentinel]\nper_minute = 1000000\ndistinct_per_minute = 1000000\nper_shift = 1000000\n'
        'route_share = 1000000.0\nstrikes = 1000000\nsequential_run = 0\ndepot_floor = 1000000\n'
        'ratio_slack = 1000000\n'
        % (gateway_id, store, HOST, port, gateway_id), encoding="utf-8")


def seed(folder: Path, n: int, prefix: str) -> list[dict[str, Any]]:
    """n devices, each with a logged-in courier and one scanned parcel on its route."""
    from gateway import registry
    from gateway.home import open_home

    home = open_home(folder)
    devices = []
    now = time.time()
    try:
        for i in range(n):
            device_id, courier = "%s-%04d" % (prefix, i), "C%s%04d" % (prefix, i)
            parcel = "%s%08d" % (prefix, i)
            secret = registry.add_device(home.store, home.keys.kek, device_id, "bench")
            with home.store.transaction() as tx:
                registry.set_device_state(tx, device_id, "active")
                tx.run("INSERT INTO couriers (courier_id, depot, shift, pin_salt, pin_hash, state, created)"
                       " VALUES (?, 'D-BENCH', '00:00-24:00', ?, ?, 'active', ?)",
                       courier, b"\0" * 16, b"\0" * 32, now)
                session = registry.login(tx, courier, device_id, now)
                tx.run("INSERT INTO routes (route_id, courier_id, sort_code, state, imported)"
                       " VALUES (?, ?, 'S', 'active', ?)", "R-" + device_id, courier, now)
                tx.run("INSERT INTO parcels (tracking_no, route_id, sort_code, state, window_start,"
                       " window_end, masked_receiver_name, masked_receiver_phone, masked_receiver_address,"
                       " masked_sender_name, masked_sender_phone, masked_sender_address) VALUES"
                       " (?, ?, 'S', 'out_for_delivery', 0, 4e9, '*', '*', '*', '*', '*', '*')",
                       parcel, "R-" + device_id)
                home.vault.put(tx, parcel, {1: "測試甲", 2: "17000001234", 3: "測試市測試區樣例路1號"})
                tx.run("INSERT INTO scans (device_id, tracking_no, at) VALUES (?, ?, ?)",
                       device_id, parcel, now)
            devices.append({"id": device_id, "secret": secret, "session": bytes.fromhex(session),
                            "parcel": parcel})
    finally:
        home.close()
    return devices


class GatewayProcess:
    """`veilpost gateway run` in its own process."""

    def __init__(self, folder: Path, gateway_id: str, port: int) -> None:
        self.folder, self.gateway_id, self.port = folder, gateway_id, port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        online = threading.Event()
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe-" + secrets.token_hex(4))
        probe.on_message = lambda _c, _u, m: online.set() if m.payload == b"online" else None
        probe.connect(HOST, self.port)
        probe.subscribe(topics.gateway_status(self.gateway_id), 1)
        probe.loop_start()
        log = open(self.folder / "gateway.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen([sys.executable, "-m", "tools", "--home", str(self.folder),
                                         "gateway", "run"], cwd=REPO, stdout=log, stderr=log)
        log.close()
        try:
            if not online.wait(timeout):
                raise RuntimeError("gateway %s did not come online" % self.gateway_id)
        finally:
            probe.disconnect()
            probe.loop_stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class ClosedLoop:
    """Each device keeps one request in flight: send, wait for the reply,
    send the next. With `echo`, payloads go to the echo topics and come back
    unopened; otherwise they are real reveal requests, sealed and opened."""

    def __init__(self, port: int, devices: list[dict[str, Any]], per_device: int, echo: bool) -> None:
        self.port, self.per_device, self.echo = port, per_device, echo
        self.latencies: list[float] = []
        self.denied = 0
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._left = len(devices) * per_device
        aead = CryptographyAEAD()
        self.devices = {d["id"]: dict(d, ch=Channel(d["secret"], d["id"], HANDHELD, aead=aead),
                                      sent=0, t0=0.0) for d in devices}
        self.clients: list[mqtt.Client] = []
        ids = list(self.devices)
        per_client = 100
        for i in range(0, len(ids), per_client):
            self.clients.append(self._client(ids[i:i + per_client]))

    def _client(self, ids: list[str]) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="load-" + secrets.token_hex(4))
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        ready = threading.Event()
        c.on_subscribe = lambda *_a: ready.set()
        c.on_message = self._on_message
        c.connect(HOST, self.port, keepalive=60)
        c.loop_start()
        c.subscribe([(self._down(d), 1) for d in ids])
        if not ready.wait(10):
            raise RuntimeError("load client could not subscribe")
        for d in ids:
            self.devices[d]["client"] = c
        return c

    def _down(self, device_id: str) -> str:
        return ECHO_ROOT + device_id + "/down" if self.echo else topics.down(device_id)

    def _send(self, d: dict[str, Any]) -> None:
        d["sent"] += 1
        payload = d["ch"].wrap("reveal_request", {"req": d["sent"], "tracking_no": d["parcel"], "fields": [2],
                                                  "reason": 1, "session": d["session"]}, int(time.time()))
        topic = ECHO_ROOT + d["id"] + "/up" if self.echo else topics.up(d["id"])
        d["t0"] = time.perf_counter()
        d["client"].publish(topic, payload, qos=1)

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        t1 = time.perf_counter()
        device_id = m.topic.split("/")[3]
        d = self.devices.get(device_id)
        if d is None:
            return
        if not self.echo:
            name, _fields, _seq = d["ch"].unwrap(bytes(m.payload), int(time.time()))
            if name not in ("reveal_grant", "reveal_denied"):
                return
            if name == "reveal_denied":
                self.denied += 1
        with self._lock:
            self.latencies.append(t1 - d["t0"])
            self._left -= 1
            if self._left <= 0:
                self.done.set()
        if d["sent"] < self.per_device:
            self._send(d)

    def run(self, timeout: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        for d in self.devices.values():
            self._send(d)
        finished = self.done.wait(timeout)
        elapsed = time.perf_counter() - t0
        for c in self.clients:
            c.disconnect()
            c.loop_stop()
        lat = self.latencies
        return {
            "devices": len(self.devices), "requests": len(self.devices) * self.per_device,
            "replies": len(lat), "denied": self.denied, "complete": finished,
            "seconds": round(elapsed, 3), "per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
            "p99_ms": round(percentile(lat, 0.99) * 1000, 2) if lat else None,
        }


def echo_server(port: int) -> mqtt.Client:
    """Raw paho echo: every up message goes straight back on its down topic."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="echo-" + secrets.token_hex(4))
    c.max_inflight_messages_set(1000)
    ready = threading.Event()
    c.on_subscribe = lambda *_a: ready.set()
    def back(cl: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        cl.publish(m.topic[:-2] + "down", m.payload, qos=1)

    c.on_message = back
    c.connect(HOST, port)
    c.loop_start()
    c.subscribe(ECHO_ROOT + "+/up", 1)
    ready.wait(10)
    return c


def _home(root: Path, name: str, port: int, store: str = "") -> Path:
    from gateway.home import init

    folder = root / name
    init(folder).close()
    write_config(folder, name, port, store)
    return folder


def _twin(folder: Path, name: str, port: int, store: str) -> Path:
    """A second gateway's home: the same keys folder (period keys are made as
    days come, so a copy would miss them), its own id and client id."""
    other = folder.parent / name
    shutil.copytree(folder, other, ignore=shutil.ignore_patterns("keys"))
    write_config(other, name, port, store, keys=folder / "keys")
    return other


def reveal_figures(root: Path, n: int, per_device: int) -> dict[str, Any]:
    """Each configuration on a fresh broker: a stopped gateway's persistent
    session stays in the shared group and would be handed its share."""
    out: dict[str, Any] = {"devices": n, "reveals_per_device": per_device}
    broker = BenchBroker(root / "echo")
    broker.start()
    echo = echo_server(broker.port)
    try:
        devices = [{"id": "E-%04d" % i, "secret": secrets.token_bytes(32), "session": secrets.token_bytes(8),
                    "parcel": "E%08d" % i} for i in range(n)]
        out["paho_echo"] = ClosedLoop(broker.port, devices, per_device, echo=True).run(60)
    finally:
        echo.disconnect()
        echo.loop_stop()
        broker.stop()
    runs: list[tuple[str, str, int]] = [("sqlite_1_gateway", "", 1)]
    schema = pg_schema()
    if schema is None:
        out["postgresql"] = {"missing": "PostgreSQL not reachable at " + PG_SERVER}
    else:
        runs += [("postgresql_1_gateway", schema[0], 1), ("postgresql_2_gateways", schema[0], 2)]
    try:
        for label, store, count in runs:
            if store:  # a fresh schema for each run
                schema[1]()  # type: ignore[index]
                schema = pg_schema()
                store = schema[0]  # type: ignore[index]
            broker = BenchBroker(root / label)
            broker.start()
            first = _home(root, "gw-%s-a" % label, broker.port, store)
            homes = [first] + [_twin(first, "gw-%s-b" % label, broker.port, store)] * (count - 1)
            devices = seed(first, n, "L%d%s" % (count, "P" if store else "S"))
            gateways = [GatewayProcess(h, h.name, broker.port) for h in homes]
            try:
                for g in gateways:
                    g.start()
                out[label] = ClosedLoop(broker.port, devices, per_device, echo=False).run(120)
            finally:
                for g in gateways:
                    g.stop()
                broker.stop()
    finally:
        if schema is not None:
            schema[1]()
    ceiling = out["paho_echo"]["per_s"]
    for label, _, _ in runs:
        if label in out and ceiling:
            out[label]["fraction_of_echo"] = round(out[label]["per_s"] / ceiling, 3)
    if "postgresql_2_gateways" in out:
        out["two_vs_one_gateway"] = round(out["postgresql_2_gateways"]["per_s"]
                                          / out["postgresql_1_gateway"]["per_s"], 2)
    return out


def _raw_device(port: int, d: dict[str, Any], aead: Any) -> socket.socket:
    """One device over a raw socket: MQTT CONNECT, then its sealed hello."""
    from firmware import mqtt as wire

    s = socket.create_connection((HOST, port))
    s.sendall(wire.encode_connect(d["id"], keepalive=120, clean_session=True))
    if s.recv(4)[:1] != b"\x20":
        raise RuntimeError("no CONNACK for " + d["id"])
    ch = Channel(d["secret"], d["id"], HANDHELD, aead=aead)
    s.sendall(wire.encode_publish(topics.up(d["id"]), ch.wrap("hello", {"device": d["id"], "fw": "bench"},
                                                                int(time.time())), 0))
    return s


def memory_figures(root: Path, broker: BenchBroker, n: int) -> dict[str, Any]:
    from gateway.store import SqliteStore as Store

    folder = _home(root, "gw-memory", broker.port)
    devices = seed(folder, n, "M")
    store = Store(folder / "veilpost.db")
    gateway = GatewayProcess(folder, "gw-memory", broker.port)
    sockets: list[socket.socket] = []
    try:
        gateway.start()
        time.sleep(0.5)
        gw0, br0 = rss_kb(gateway.pid), rss_kb(broker.process.pid)  # type: ignore[union-attr]
        aead = CryptographyAEAD()
        sockets = [_raw_device(broker.port, d, aead) for d in devices]
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline:
            seen = int(store.one("SELECT COUNT(*) FROM devices WHERE fw = 'bench'")[0])  # type: ignore[index]
            if seen >= n:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        gw1, br1 = rss_kb(gateway.pid), rss_kb(broker.process.pid)  # type: ignore[union-attr]
    finally:
        for s in sockets:
            s.close()
        gateway.stop()
        store.close()
    return {"devices": n, "devices_heard": seen,
            "gateway_rss_kb_before": gw0, "gateway_rss_kb_after": gw1,
            "gateway_bytes_per_device": round((gw1 - gw0) * 1024 / n),
            "broker_rss_kb_before": br0, "broker_rss_kb_after": br1,
            "broker_bytes_per_device": round((br1 - br0) * 1024 / n)}


def run(quick: bool = False) -> dict[str, Any]:
    """Quick: 40 devices x 25 reveals per configuration, 1,000 devices for
    memory (CI, well under a minute). Full: 200 devices x 50 reveals."""
    if shutil.which("mosquitto") is None:
        return {"missing": "mosquitto is not installed"}
    n, per_device = (40, 25) if quick else (200, 50)
    with tempfile.TemporaryDirectory(prefix="vp-bench-") as tmp:
        root = Path(tmp)
        reveal = reveal_figures(root, n, per_device)
        broker = BenchBroker(root / "memory")
        broker.start()
        try:
            memory = memory_figures(root, broker, 1000)
        finally:
            broker.stop()
    return {"reveal": reveal, "memory": memory}


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
