"""The handheld's receive replay window survives a reboot (firmware/offline.py
ReceiveWindow, in flash): a captured gateway->handheld message refused
before a reboot is refused after it too, while the gateway's next messages
still go through; the retained command the device acted on last still
applies after a reboot, and a rotation starts a fresh window for the new key."""

from __future__ import annotations

import pytest

from tests.fixtures.handheld import run_vm

pytestmark = pytest.mark.micropython


def lines(out: str) -> list[str]:
    return [line for line in out.strip().splitlines() if not line.startswith("veilpost: ")]


CAPTURE = '''
def captured(gw, name, fields, now, topic=None, retain=False):
    """A message sealed by the gateway, as an eavesdropper on the broker keeps it."""
    gw.pid += 1
    return mqtt.encode_publish(topic or topics.down(DEVICE), gw.ch.wrap(name, fields, now), 1, gw.pid, retain)

def tokens(dev):
    return sum([len(v) for v in dev.app.tokens.offline.values()])

def preissue(gw, cti, now):
    tok = gw.ch.seal_token("VP0001", {2: PLAIN[2]}, cti, T0 + 3600)
    return captured(gw, "preissue", {"tokens": [{"tracking_no": "VP0001", "cti": cti,
                    "exp": T0 + 3600, "fields": [2], "token": tok}]}, now)
'''


def test_a_captured_preissue_refused_before_a_reboot_is_refused_after_it() -> None:
    out = run_vm(CAPTURE + '''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
pkt = preissue(gw, b"cti-off1", T0 + 1)
dev.mqtt.sock.feed(pkt)
pump(dev, gw, T0 + 1)
print("issued", tokens(dev))
gw.send(dev.mqtt.sock, "seal", {"tracking_no": "VP0001"}, T0 + 2)     # delivered: the tokens go
pump(dev, gw, T0 + 2)
dev.mqtt.sock.feed(pkt)
pump(dev, gw, T0 + 3)
print("replayed before reboot", tokens(dev))
dev2, hal = new_device(hal)            # power cycle: RAM gone, flash and NVS kept
login_and_route(dev2, hal, gw, T0 + 10)
dev2.mqtt.sock.feed(pkt)
pump(dev2, gw, T0 + 11)
print("replayed after reboot", tokens(dev2))
dev2.mqtt.sock.feed(preissue(gw, b"cti-off2", T0 + 12))
pump(dev2, gw, T0 + 12)
print("fresh after reboot", tokens(dev2))
print(sorted(hal.flash.names()))
''')
    assert lines(out)[:4] == ["issued 1", "replayed before reboot 0", "replayed after reboot 0",
                              "fresh after reboot 1"]
    assert "rwin" in lines(out)[4]


def test_no_message_heard_before_a_reboot_is_accepted_after_it() -> None:
    out = run_vm(CAPTURE + '''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
heard = [captured(gw, "seal", {"tracking_no": "VP000" + str(i % 2 + 1)}, T0 + i) for i in range(6)]
for pkt in heard:
    dev.mqtt.sock.feed(pkt)
    pump(dev, gw, T0 + 30)
print(sorted(dev.app.delivered))
dev2, hal = new_device(hal)
login_and_route(dev2, hal, gw, T0 + 40)
for pkt in heard + [heard[-1]]:
    dev2.mqtt.sock.feed(pkt)
    pump(dev2, gw, T0 + 41)
print(sorted(dev2.app.delivered))
late = captured(gw, "seal", {"tracking_no": "VP0002"}, T0 + 42)
for _ in range(2):
    dev2.mqtt.sock.feed(late)         # new to the device: accepted once
    pump(dev2, gw, T0 + 42)
    print(sorted(dev2.app.delivered))
    dev2.app.delivered = {}
''', fuel=8_000_000_000)
    assert lines(out) == ["['VP0001', 'VP0002']", "[]", "['VP0002']", "[]"]


def test_the_retained_lock_still_locks_after_a_reboot_and_only_that_command() -> None:
    out = run_vm(CAPTURE + '''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
unlock = captured(gw, "command", {"id": 7, "cmd": 3}, T0 + 1, topics.cmd(DEVICE), True)
dev.mqtt.sock.feed(unlock)
sent = pump(dev, gw, T0 + 1)
print([n for n, f in sent])
lock = captured(gw, "command", {"id": 8, "cmd": 2}, T0 + 2, topics.cmd(DEVICE), True)
dev.mqtt.sock.feed(lock)
pump(dev, gw, T0 + 2)
print(dev.app.state)
dev2, hal = new_device(hal)
pump(dev2, gw, T0 + 10)
dev2.mqtt.sock.feed(unlock)           # an old command replayed: refused, nothing acknowledged
sent = pump(dev2, gw, T0 + 10)
print(dev2.app.state, [n for n, f in sent])
dev2.mqtt.sock.feed(lock)             # the broker's retained lock, the same bytes
sent = pump(dev2, gw, T0 + 11)
print(dev2.app.state, [(n, f["id"]) for n, f in sent])
''')
    assert lines(out) == ["['command_ack']", "locked", "badge []", "locked [('command_ack', 8)]"]


def test_a_key_rotation_starts_a_fresh_window_that_survives_the_next_reboot() -> None:
    out = run_vm(CAPTURE + '''
NEW = bytes(range(100, 132))
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
gw.send(dev.mqtt.sock, "command", {"id": 5, "cmd": 4, "args": {"master_secret": NEW}}, T0 + 1,
        topic=topics.cmd(DEVICE), retain=True)
pump(dev, gw, T0 + 1)
gw2 = GatewayEnd(NEW)                 # the gateway now speaks the new key, from sequence 0
pkt = preissue(gw2, b"cti-new1", T0 + 2)
dev.mqtt.sock.feed(pkt)
pump(dev, gw2, T0 + 2)
print("new key", tokens(dev))
dev2, hal = new_device(hal)
login_and_route(dev2, hal, gw2, T0 + 10)
dev2.mqtt.sock.feed(pkt)
pump(dev2, gw2, T0 + 11)
print("replayed after reboot", tokens(dev2))
''')
    assert lines(out) == ["new key 1", "replayed after reboot 0"]
