"""`veilpost fleet --devices N`: N simulated handhelds (tools/simulator.py,
the real firmware source) working their routes against a gateway at once:
log in, then per parcel scan its label's QR, reveal the phone, deliver. Prints
what they did and how long reveals took; a load generator, not a test.
`veilpost fleet` (tools/cli/fleet.py) calls `main` through the
`veilpost.tools` entry point `fleet`."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.simulator import Handheld, SimulatorError

FAKE_PEOPLE = [
    ("測試甲", "17000001234", "測試市測試區樣例路1號 3棟502室"),
    ("Testy McTestface", "17000005678", "1 Example Road, Testville, Flat 9"),
    ("測試乙", "17000002468", "測試市測試區樣例路2號 5棟101室"),
]


@dataclass
class Plan:
    """One handheld's job: its config, its courier, the parcels of its route
    and their labels' QR text, as the depot printed them."""
    config: dict[str, Any]
    badge: str
    pin: str
    parcels: list[str]
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    device_id: str
    scans: int = 0
    revealed: int = 0
    denied: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)
    reveal_seconds: list[float] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0


def tracking_no(prefix: str, device: int, parcel: int) -> str:
    # Scattered, not consecutive: the gateway's sentinel flags sequential numbers as scraping.
    return f"{prefix}{device:04d}{(parcel * 7919 + 13) % 1000000:06d}"


def manifest_rows(n_devices: int, parcels_per_device: int, day: str, prefix: str = "FL") -> bytes:
    """A route manifest CSV of obviously fake receivers: route R-<prefix>-i for courier C-<prefix>-i."""
    lines = ["tracking_no,route_id,courier_id,receiver_name,receiver_phone,receiver_address,"
             "sender_name,sender_phone,sender_address,delivery_window_start,delivery_window_end"]
    for d in range(n_devices):
        for p in range(parcels_per_device):
            name, phone, address = FAKE_PEOPLE[(d + p) % len(FAKE_PEOPLE)]
            route = f"R-{prefix}-{d},C-{prefix}-{d}"
            lines.append(f'{tracking_no(prefix, d, p)},{route},{name},{phone},"{address}",'
                         f'測試寄件人,17000009999,"測試市寄件路9號 1棟1室",{day}T00:00:00,{day}T23:59:00')
    return ("\n".join(lines) + "\n").encode("utf-8")


def provision_fleet(home: Any, broker: Any, n_devices: int, parcels_per_device: int,
                    now: float | None = None, prefix: str = "FL") -> list[Plan]:
    """Register couriers, devices (gateway registry), broker accounts and one
    route each, and print every parcel's label; returns the plans. `home` is
    a gateway Home; `broker` has host, port and add_device(device_id) ->
    (username, password)."""
    import datetime as dt

    from gateway import registry
    from gateway.labels import issue
    from gateway.manifest import import_manifest

    now = time.time() if now is None else now
    plans = []
    for d in range(n_devices):
        badge, pin, device_id = f"C-{prefix}-{d}", f"{2468 + d:04d}"[-4:], f"{prefix}-HH-{d}"
        registry.add_courier(home.store, badge, pin, "D-FLEET", "00:00-24:00")
        secret = registry.add_device(home.store, home.keys.kek, device_id, "simulator")
        username, password = broker.add_device(device_id)
        config = {"device_id": device_id, "master_secret": secret, "lang": "en",
                  "mqtt": {"host": broker.host, "port": broker.port, "username": username,
                           "password": password, "keepalive": 30}}
        parcels = [tracking_no(prefix, d, p) for p in range(parcels_per_device)]
        plans.append(Plan(config, badge, pin, parcels))
    day = dt.datetime.fromtimestamp(now, home.zone).date().isoformat()
    csv = manifest_rows(n_devices, parcels_per_device, day, prefix)
    import_manifest(home.store, home.vault, home.audit, csv, home.zone, now, "it:fleet")
    # The depot prints the labels: each QR is the gateway's proof that its parcel is in hand.
    with home.store.transaction() as tx:
        for plan in plans:
            for tn in plan.parcels:
                plan.labels[tn] = issue(tx, home.keys, home.audit, tn, now, "operator:fleet")
    return plans


def work_route(plan: Plan, timeout: float = 20.0) -> Outcome:
    out = Outcome(plan.config["device_id"])
    try:
        with Handheld(plan.config, timeout=timeout) as hh:
            hh.login(plan.badge, plan.pin)
            for tn in plan.parcels:
                view = hh.scan_label(plan.labels[tn])
                if "error" in view:
                    out.errors.append(f"{tn}: {view['error']}")
                    continue
                out.scans += 1
                t0 = time.monotonic()
                got = hh.reveal(tn, ["phone"], "call-before-delivery")
                out.reveal_seconds.append(time.monotonic() - t0)
                if got:
                    out.revealed += 1
                else:
                    out.denied += 1
                if hh.deliver(tn, code="135790"):
                    out.delivered += 1
            mq = hh.device.mqtt
            if mq is not None:
                out.bytes_sent, out.bytes_received = mq.bytes_sent, mq.bytes_received
    except SimulatorError as e:
        out.errors.append(str(e))
    return out


def run_fleet(plans: list[Plan], timeout: float = 20.0) -> dict[str, Any]:
    """Run every plan in its own thread; returns totals and reveal latency figures."""
    results: list[Outcome] = []
    lock = threading.Lock()

    def one(plan: Plan) -> None:
        o = work_route(plan, timeout)
        with lock:
            results.append(o)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(p,), daemon=True) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat = sorted(s for o in results for s in o.reveal_seconds)
    return {
        "devices": len(plans),
        "seconds": round(elapsed, 3),
        "scans": sum(o.scans for o in results),
        "revealed": sum(o.revealed for o in results),
        "denied": sum(o.denied for o in results),
        "delivered": sum(o.delivered for o in results),
        "errors": [e for o in results for e in o.errors],
        "reveal_p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
        "reveal_p95_ms": round(lat[max(0, int(len(lat) * 0.95) - 1)] * 1000, 1) if lat else None,
        "reveals_per_s": round(len(lat) / elapsed, 1) if elapsed else None,
        "bytes_sent": sum(o.bytes_sent for o in results),
        "bytes_received": sum(o.bytes_received for o in results),
    }


@dataclass
class BrokerAccounts:
    """host, port and add_device() over an embedded broker's account store."""
    host: str
    port: int
    broker: Any

    def add_device(self, device_id: str) -> tuple[str, str]:
        from gateway.broker import new_password

        password = new_password()
        self.broker.add_device(device_id, password)
        return device_id, password


def main(home_dir: Path, devices: int, parcels: int, per_minute: int,
         echo: Callable[[str], None] = print) -> int:
    """Run `devices` simulated handhelds against a gateway on the embedded
    broker, in this process, with fake couriers and routes added to the home
    at `home_dir`. Returns 0 (the figures are the result, not a verdict)."""
    from gateway.broker import EmbeddedBroker, new_password
    from gateway.home import init
    from gateway.service import GatewayService

    home = init(home_dir)
    broker = EmbeddedBroker("127.0.0.1", 0)
    port = broker.start()
    gw_user, gw_pass = "vp-gateway-fleet", new_password()
    broker.add_gateway(gw_user, gw_pass)

    handle = BrokerAccounts("127.0.0.1", port, broker)
    m = home.config.mqtt
    m.broker, m.port, m.username, m.password = "127.0.0.1", port, gw_user, gw_pass
    if per_minute:
        # A load run reveals faster than a courier at a door; lift the sentinel's per-minute budgets.
        home.config.sentinel.per_minute = home.config.sentinel.distinct_per_minute = per_minute
    service = GatewayService(home)
    service.start()
    try:
        prefix = "FL" + time.strftime("%H%M%S")
        plans = provision_fleet(home, handle, devices, parcels, prefix=prefix)
        report = run_fleet(plans)
    finally:
        service.stop()
        broker.stop()
        home.close()
    for k, v in report.items():
        if k != "errors":
            echo(f"{k}: {v}")
    for e in report["errors"][:10]:
        echo(f"error: {e}")
    return 0
