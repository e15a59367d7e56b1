"""Key rotation in the firmware, in a real MicroPython VM: the config command
is acknowledged under the old key, the new secret replaces it in the key
store with sequence numbers starting again at 0, replies sealed under the old
key still open, a reboot keeps the new key, and a forged command changes nothing."""

from __future__ import annotations

import pytest

from tests.fixtures.handheld import run_vm

pytestmark = pytest.mark.micropython


def lines(out: str) -> list[str]:
    """What the test printed, without the firmware's own log lines."""
    return [line for line in out.strip().splitlines() if not line.startswith("veilpost: ")]


def test_the_config_command_rotates_the_master_secret_in_the_vm() -> None:
    out = run_vm('''
from protocol import messages
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
NEW = bytes(range(100, 132))
gw.send(dev.mqtt.sock, "command", {"id": 77, "cmd": messages.CMD_CONFIG,
        "args": {"master_secret": NEW, "mqtt_password": "pw-new"}}, T0 + 1,
        topic=topics.cmd(DEVICE), retain=True)
sent = pump(dev, gw, T0 + 1)
print(names(sent), sent[0][1]["id"], sent[0][1]["ok"])
print(hal.keystore.get("master") == NEW, hal.keystore.get("next") == b"", dev.config["mqtt"]["password"])
# A reply the gateway sealed under the old key before it saw the ack still opens.
gw.send(dev.mqtt.sock, "seal", {"tracking_no": "VP0002"}, T0 + 1)
pump(dev, gw, T0 + 1)
print("VP0002" in dev.app.delivered)
new_gw = GatewayEnd(NEW)
hal.feed("scan", qr("VP0001"))
dev.step(T0 + 2)
sent = new_gw.read(dev.mqtt.sock)
print(names(sent), new_gw.seen and new_gw.ch.replay.state())
dev2 = Device(hal, {"device_id": DEVICE, "lang": "en", "mqtt": {"keepalive": 60}})
dev2.start(T0 + 3)
print(bytes(dev2.app.master) == NEW)
''')
    got = lines(out)
    assert got[0] == "['command_ack'] 77 True"
    assert got[1] == "True True pw-new"
    assert got[2] == "True"
    assert got[3].startswith("['scan']")
    assert got[4] == "True"


def test_a_forged_config_command_changes_nothing_in_the_vm() -> None:
    out = run_vm('''
from protocol import messages
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
forger = GatewayEnd(bytes(32))
forger.ch.send_seq = 1000  # past the replay window: the key itself must refuse it
forger.send(dev.mqtt.sock, "command", {"id": 5, "cmd": messages.CMD_CONFIG,
            "args": {"master_secret": bytes(range(1, 33))}}, T0 + 1, topic=topics.cmd(DEVICE))
sent = pump(dev, gw, T0 + 1)
print(names(sent), hal.keystore.get("master") == MASTER, hal.keystore.get("next"))
print(dev.app.notice)
''')
    got = lines(out)
    assert got[0] == "[] True None"
    assert got[1] == "Error: wrong key", got[1]
    assert "veilpost: message not opened: authentication failed" in out
