"""A gateway's home filled with obviously fake people, and its service on a
broker from tools/testbed/brokers.py."""

from __future__ import annotations

import os
import time
from typing import Any

from gateway.home import Home
from gateway.service import GatewayService

FAKE_PEOPLE = [
    ("測試甲", "17000001234", "測試市測試區樣例路1號 3棟502室"),
    ("Testy McTestface", "17000005678", "1 Example Road, Testville, Flat 9"),
    ("測試乙", "17000002468", "測試市測試區樣例路2號 5棟101室"),
]
FAKE_SENDER = ("測試寄件人", "17000009999", "測試市寄件路9號 1棟1室")
FAKE_EMAILS = {1: "testy.mctestface@example.invalid"}  # person index -> optional receiver e-mail


def manifest_csv(rows: list[tuple[str, str, str, int]], day: str = "2030-01-02") -> bytes:
    """rows: (tracking_no, route_id, courier_id, person index)."""
    lines = ["tracking_no,route_id,courier_id,receiver_name,receiver_phone,receiver_address,"
             "sender_name,sender_phone,sender_address,delivery_window_start,delivery_window_end"]
    for tracking_no, route_id, courier_id, who in rows:
        name, phone, address = FAKE_PEOPLE[who % len(FAKE_PEOPLE)]
        sender = '%s,%s,"%s"' % FAKE_SENDER
        lines.append('%s,%s,%s,%s,%s,"%s",%s,%sT08:00:00,%sT20:00:00'
                     % (tracking_no, route_id, courier_id, name, phone, address, sender, day, day))
    return ("\n".join(lines) + "\n").encode("utf-8")


def plaintexts() -> list[bytes]:
    """Every personal value above, as the bytes a leak would show."""
    out = []
    for person in FAKE_PEOPLE:
        for value in person:
            out.append(value.encode("utf-8"))
    out += [value.encode("utf-8") for value in FAKE_SENDER]
    out += [value.encode("utf-8") for value in FAKE_EMAILS.values()]
    return out


def leaks(blob: bytes) -> list[bytes]:
    """Which fake plaintexts appear in `blob`."""
    return [p for p in plaintexts() if p in blob]


def seed_parcel(home: Home, tracking_no: str, route_id: str, courier_id: str, who: int = 0,
                window: tuple[float, float] = (0.0, 4e9)) -> None:
    """A parcel stored the way an import stores it, without the CSV step."""
    from gateway.vault import RECEIVER_ADDRESS, RECEIVER_EMAIL, RECEIVER_NAME, RECEIVER_PHONE

    name, phone, address = FAKE_PEOPLE[who % len(FAKE_PEOPLE)]
    values = {RECEIVER_NAME: name, RECEIVER_PHONE: phone, RECEIVER_ADDRESS: address}
    if who % len(FAKE_PEOPLE) in FAKE_EMAILS:
        values[RECEIVER_EMAIL] = FAKE_EMAILS[who % len(FAKE_PEOPLE)]
    with home.store.transaction() as tx:
        if tx.one("SELECT 1 FROM routes WHERE route_id = ?", route_id) is None:
            tx.run("INSERT INTO routes (route_id, courier_id, sort_code, state, imported)"
                   " VALUES (?, ?, ?, 'active', 0)", route_id, courier_id, route_id)
        tx.run("INSERT INTO parcels (tracking_no, route_id, sort_code, state, window_start, window_end,"
               " masked_receiver_name, masked_receiver_phone, masked_receiver_address, masked_sender_name,"
               " masked_sender_phone, masked_sender_address) VALUES (?, ?, ?, 'out_for_delivery', ?, ?,"
               " '*', '*', '*', '*', '*', '*')", tracking_no, route_id, route_id, window[0], window[1])
        home.vault.put(tx, tracking_no, values)


def courier_on_shift(home: Home, d: int, parcels: int, now: float) -> tuple[str, bytes, bytes, list[str]]:
    """Courier C-d logged in on active device HH-d, with `parcels` parcels on
    route R-d, all scanned by that device: (device, secret, session, parcels)."""
    from gateway import registry

    courier, device = "C-%d" % d, "HH-%d" % d
    registry.add_courier(home.store, courier, "1234", "D-1", "00:00-24:00")
    secret = registry.add_device(home.store, home.keys.kek, device, "test")
    registry.set_device_state(home.store, device, "active")
    with home.store.transaction() as tx:
        session = registry.login(tx, courier, device, now)
    tracking = ["VP%02d%08d" % (d, i * 7 + 3) for i in range(parcels)]
    for i, t in enumerate(tracking):
        seed_parcel(home, t, "R-%d" % d, courier, i)
        home.store.run("INSERT INTO scans (device_id, tracking_no, at) VALUES (?, ?, ?)",
                       device, t, now + 600)
    return device, secret, bytes.fromhex(session), tracking


def start_gateway(home: Home, broker: Any, clock: Any = None) -> GatewayService:
    """The gateway service, as `veilpost gateway run` composes it
    (gateway/supervisor.py), on an external broker given by a broker handle."""
    from gateway.supervisor import supervised

    m = home.config.mqtt
    m.broker, m.port = broker.host, broker.port
    m.username, m.password = broker.gateway_credentials
    m.client_id = "gw-test-" + os.urandom(4).hex()
    service = supervised(home, clock or time.time)
    service.start()
    return service
