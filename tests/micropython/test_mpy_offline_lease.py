"""The offline lease (firmware/engine.py tick): a handheld that has heard
nothing from its gateway for `offline_lease` seconds (default 12 h) drops
every token, pre-issued or shown, and its session; only an online login
brings it back."""

from __future__ import annotations

import pytest

from tests.fixtures.handheld import run_vm

pytestmark = pytest.mark.micropython


def lines(out: str) -> list[str]:
    return [line for line in out.strip().splitlines() if not line.startswith("veilpost: ")]


SETUP = '''
def tokens(dev):
    return sum([len(v) for v in dev.app.tokens.offline.values()])

def preissue(dev, gw, now):
    toks = []
    for tn in ("VP0001", "VP0002"):
        cti = ("off-" + tn[-4:]).encode()
        toks.append({"tracking_no": tn, "cti": cti, "exp": now + 86400, "fields": [2],
                     "token": gw.ch.seal_token(tn, {2: PLAIN[2]}, cti, now + 86400)})
    gw.send(dev.mqtt.sock, "preissue", {"tokens": toks}, now)
    pump(dev, gw, now)
'''


def test_twelve_hours_without_the_gateway_drop_every_token_and_the_session() -> None:
    out = run_vm(SETUP + '''
dev, hal = new_device()
gw = GatewayEnd()
login_and_route(dev, hal, gw)
preissue(dev, gw, T0 + 1)
dev.go_offline(T0 + 2)
hal.online = False
dev.step(T0 + 1 + 12 * 3600 - 1)
print(tokens(dev), dev.app.state, dev.app.session is not None)
hal.feed("scan", qr("VP0001"))
for k in "A2#1":
    hal.feed("key", k)
dev.step(T0 + 1 + 12 * 3600 - 1)
print(PLAIN[2] in hal.display.text())
dev.step(T0 + 1 + 12 * 3600)
print(tokens(dev), dev.app.state, dev.app.session, PLAIN[2] in hal.display.text(), len(dev.app.tokens.shown))
print("No word from the depot" in hal.display.text())
hal.feed("scan", "C-112")
for k in "2468#":
    hal.feed("key", k)
dev.step(T0 + 1 + 12 * 3600 + 1)
print(dev.app.state, dev.app.notice)
hal.online = True
dev.step(T0 + 13 * 3600)
pump(dev, gw, T0 + 13 * 3600)
sent = login_and_route(dev, hal, gw, T0 + 13 * 3600)
print(dev.app.state, tokens(dev))
''')
    got = lines(out)
    assert got[0] == "2 ready True"            # a second before: still there
    assert got[1] == "True"                    # and usable offline
    assert got[2] == "0 badge None False 0"
    assert got[3] == "True"
    assert got[4] == "badge Login needs a connection"
    assert got[5] == "ready 0"


def test_the_lease_is_configurable_and_any_gateway_message_renews_it() -> None:
    out = run_vm(SETUP + '''
dev, hal = new_device(config={"offline_lease": 600})
gw = GatewayEnd()
login_and_route(dev, hal, gw)
preissue(dev, gw, T0 + 1)
gw.send(dev.mqtt.sock, "seal", {"tracking_no": "VP0009"}, T0 + 500)
pump(dev, gw, T0 + 500)
dev.step(T0 + 1000)
print(tokens(dev), dev.app.state)
dev.step(T0 + 1100)
print(tokens(dev), dev.app.state)
''')
    assert lines(out) == ["2 ready", "0 badge"]
