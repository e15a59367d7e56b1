"""kill -9 the gateway during a reveal storm, restart it: the audit chain
still verifies, and every grant a handheld received has its audit entry."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.gateway import Handheld, Spy, courier_on_shift

REPO = Path(__file__).resolve().parents[1]
DEVICES = 4
PARCELS = 30


def _config(home, broker):
    user, password = broker.gateway_credentials
    text = (home.config.home / "veilpost.toml").read_text()
    text = text.replace('broker = "embedded"', 'broker = "127.0.0.1"')
    text = text.replace("port = 1883", "port = %d" % broker.port)
    text = text.replace('username = ""', 'username = "%s"' % user)
    text = text.replace('password = ""', 'password = "%s"' % password)
    text = text.replace("per_minute = 6", "per_minute = 1000000").replace("distinct_per_minute = 3",
                                                                          "distinct_per_minute = 1000000")
    text = text.replace("per_shift = 400", "per_shift = 1000000").replace("route_share = 0.6",
                                                                          "route_share = 100000.0")
    text = text.replace("depot_floor = 6", "depot_floor = 1000000").replace("ratio_slack = 10",
                                                                           "ratio_slack = 1000000")
    text = text.replace("sequential_run = 3", "sequential_run = 0")
    (home.config.home / "veilpost.toml").write_text(text)


def _gateway(home):
    command = [sys.executable, "-m", "tools", "--home", str(home.config.home), "gateway", "run"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_online(spy, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        m = spy.probe.next_message(timeout=0.2)
        if m is not None and m.topic.startswith("vp/v1/gw/") and m.payload == b"online":
            return
    raise TimeoutError("gateway did not come online")


@pytest.mark.fault
@pytest.mark.mosquitto
def test_kill_9_during_reveal_storm_loses_no_audit_entry(gateway_home, mosquitto_broker):
    home = gateway_home
    _config(home, mosquitto_broker)
    now = time.time()
    handhelds_setup = [courier_on_shift(home, d, PARCELS, now) for d in range(DEVICES)]
    spy = Spy(mosquitto_broker)
    spy.probe.subscribe("vp/v1/gw/+/status")
    proc = _gateway(home)
    handhelds = []
    try:
        _wait_online(spy)
        handhelds = [(Handheld(mosquitto_broker, d, s), session, parcels)
                     for d, s, session, parcels in handhelds_setup]
        sent = 0
        killed_at = None
        for rnd in range(40):
            for hh, session, parcels in handhelds:
                t = parcels[rnd % len(parcels)]
                hh.client.publish("vp/v1/d/%s/up" % hh.device_id, hh.channel.wrap("reveal_request", {
                    "req": rnd, "tracking_no": t, "fields": [1, 2, 3], "reason": 1, "session": session},
                    int(time.time())), qos=1)
                sent += 1
            if rnd == 15:  # mid-storm: some requests decided, some in flight, some not yet sent
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = sent
            time.sleep(0.01)
        proc.wait(10)
        assert killed_at is not None and proc.returncode == -signal.SIGKILL
        proc = _gateway(home)
        _wait_online(spy)
        grants = []
        for hh, _session, _parcels in handhelds:
            while True:
                reply = hh.recv(timeout=3.0)
                if reply is None:
                    break
                if reply[0] == "reveal_grant":
                    grants.append(reply[1])
    finally:
        for hh, _s, _p in handhelds:
            hh.close()
        spy.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert len(grants) > 10 and sent - killed_at >= 20 * DEVICES
    # Nothing lost: requests in flight or queued while the gateway was dead are
    # delivered again (acknowledged only after commit) and decided exactly once.
    assert home.store.one("SELECT COUNT(*) FROM tokens")[0] == sent
    command = [sys.executable, "-m", "tools", "--home", str(home.config.home), "audit", "verify"]
    verify = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    for g in grants:
        row = home.store.one("SELECT a.outcome, a.parcel FROM tokens t JOIN audit a ON a.seq = t.audit_seq"
                             " WHERE t.cti = ?", g["cti"])
        assert row == ("granted", g["tracking_no"]), g["cti"].hex()
