"""The service end to end: a test handheld (protocol Channel + paho) talks to
the gateway through a real broker (Mosquitto and the embedded one)."""

import time

from gateway import registry
from protocol import messages


def test_login_route_scan_reveal_over_the_broker(live_depot):
    hh = live_depot.handheld()
    result = hh.login("C-112", "4321")
    assert result["ok"] and len(result["session"]) == 8
    assert registry.device_state(live_depot.home.store, "HH-1") == "active"
    name, route = hh.ask("route_request", {"session": hh.session})
    assert name == "route" and route["route"] == "R-07"
    assert sorted(p["tracking_no"] for p in route["parcels"]) == sorted(live_depot.route)
    assert all("測試甲" != p["name"] for p in route["parcels"])
    target = live_depot.route[0]
    hh.scan(target)
    name, grant = hh.reveal(target, [messages.FIELD_PHONE, messages.FIELD_NAME], req=7)
    assert name == "reveal_grant", grant
    assert grant["req"] == 7 and grant["fields"] == [1, 2]
    tracking_no, cti, exp, values = hh.channel.open_token(grant["token"], int(time.time()))
    assert tracking_no == target and cti == grant["cti"]
    assert values == {1: "測試甲", 2: "17000001234"}


def test_unscanned_reveal_gets_a_readable_denial(live_depot):
    hh = live_depot.handheld()
    hh.login("C-112", "4321")
    name, denial = hh.reveal(live_depot.route[1], [2], req=3)
    assert name == "reveal_denied" and denial["req"] == 3
    expected = "reveal denied: scan the label of parcel %s first" % live_depot.route[1]
    assert denial["reason"].startswith(expected)


def test_wrong_pin_is_refused_and_audited(live_depot):
    hh = live_depot.handheld()
    result = hh.login("C-112", "0000")
    assert not result["ok"] and "PIN" in result["reason"]
    outcomes = [r[0] for r in live_depot.home.store.all("SELECT outcome FROM audit WHERE action = 'login'")]
    assert outcomes == ["denied"]


def test_delivery_seals_and_tells_the_device(live_depot):
    hh = live_depot.handheld()
    hh.login("C-112", "4321")
    t = live_depot.route[2]
    hh.scan(t)
    assert hh.reveal(t, [2])[0] == "reveal_grant"
    name, seal = hh.ask("delivered", {"tracking_no": t, "session": hh.session, "proof": b"482913", "kind": 3})
    assert name == "seal" and seal["tracking_no"] == t
    name, denial = hh.reveal(t, [2], req=2)
    assert name == "reveal_denied" and "sealed after delivery" in denial["reason"]


def test_token_reuse_is_audited(live_depot):
    hh = live_depot.handheld()
    hh.login("C-112", "4321")
    t = live_depot.route[3]
    hh.scan(t)
    _, grant = hh.reveal(t, [2])
    for _ in range(2):
        hh.send("token_use", {"cti": grant["cti"], "tracking_no": t, "used_at": int(time.time())})
    deadline = time.time() + 5
    store = live_depot.home.store
    while time.time() < deadline:
        rows = [r[0] for r in store.all("SELECT outcome FROM audit WHERE action = 'token-use' ORDER BY seq")]
        if len(rows) == 2:
            break
        time.sleep(0.05)
    assert rows == ["ok", "reused"]


def test_metrics_endpoint_and_alarm_webhook(gateway_home, embedded_broker):
    import http.server
    import json
    import threading
    import urllib.request

    from tests.fixtures.brokers import free_port
    from tests.fixtures.gateway import LiveDepot

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_a):
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    gateway_home.config.metrics.port = free_port()
    gateway_home.config.sentinel.webhook_url = "http://127.0.0.1:%d/alarm" % hook.server_address[1]
    depot = LiveDepot(gateway_home, embedded_broker)
    try:
        hh = depot.handheld()
        hh.login("C-112", "4321")
        for i, t in enumerate(depot.route[:4], 1):
            hh.scan(t)
            hh.reveal(t, [2], req=i)
        deadline = time.time() + 5
        while not received and time.time() < deadline:
            time.sleep(0.05)
        page = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % gateway_home.config.metrics.port).read()
    finally:
        depot.close()
        hook.shutdown()
    assert received and received[0]["kind"].startswith("more than 3 distinct parcels")
    text = page.decode()
    assert 'veilpost_reveals_total{outcome="granted"}' in text
    assert "veilpost_suspensions_total" in text and "veilpost_reveal_seconds_bucket" in text


def test_pin_guessing_locks_the_badge_out(live_depot):
    hh = live_depot.handheld()
    hh.send("hello", {"device": "HH-1", "fw": "test-1"})
    reasons = []
    for pin in ("0000", "1111", "2222", "3333", "5555", "4321"):
        _, result = hh.ask("login", {"badge": "C-112", "pin_proof": pin.encode()})
        reasons.append(result.get("reason", "ok"))
    assert reasons[:4] == ["badge or PIN is wrong"] * 4
    assert reasons[4].startswith("badge or PIN is wrong; now locked out")  # the fifth says so at once
    assert reasons[5].startswith("too many wrong PINs")  # even the right PIN, during the lockout
