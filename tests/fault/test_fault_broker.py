"""Mosquitto restarted under a working depot: the handheld (the firmware
source on CPython) and the gateway both come back within 10 s of the broker,
and the scans the handheld queued while it was cut off all reach the gateway
(they are what a reveal needs: a lost scan is a courier who cannot call).

A single gateway subscribes without `$share` (config `mqtt.shared = false`):
Mosquitto 2.0 keeps a persistent session's plain subscription across its own
restart, and queues what devices publish before the gateway is back, but it
does not restore shared subscriptions, so a message published in that gap
would have no subscriber (docs/scale-out.md, "Broker restarts")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.home import Home
from tests.fixtures.gateway import FAKE_PEOPLE
from tests.fixtures.handheld import SimDepot

RESUME_SECONDS = 10.0


@pytest.fixture
def single_depot(gateway_home: Home, mosquitto_broker: Any) -> Iterator[SimDepot]:
    gateway_home.config.mqtt.shared = False
    depot = SimDepot(gateway_home, mosquitto_broker)
    yield depot
    depot.close()


def _scans(depot: SimDepot, device: str) -> set[str]:
    return {r[0] for r in depot.home.store.all("SELECT tracking_no FROM scans WHERE device_id = ?", device)}


def test_broker_restart_resumes_within_10_s_and_loses_no_queued_scan(single_depot: SimDepot) -> None:
    hh = single_depot.handheld("SIM-1")
    hh.login("C-112", "4321")
    before, queued = single_depot.route[:2], single_depot.route[2:5]
    for t in before:
        assert "error" not in hh.scan_label(single_depot.labels[t])
    broker = single_depot.broker
    broker.stop()
    hh.wait(lambda: not hh.app.online, "notice the broker is gone")
    for t in queued:  # the courier keeps working: scans go to the flash queue
        assert "error" not in hh.scan_label(single_depot.labels[t])
    assert len(hh.app.queue) == len(queued)
    broker.start()  # same ports, same persistence file
    restarted = time.monotonic()
    hh.wait(lambda: hh.app.online and not len(hh.app.queue), "reconnect and upload", timeout=RESUME_SECONDS)
    device_back = time.monotonic() - restarted
    deadline = restarted + RESUME_SECONDS
    while time.monotonic() < deadline and not set(queued) <= _scans(single_depot, "SIM-1"):
        time.sleep(0.05)
    gateway_back = time.monotonic() - restarted
    assert set(before) | set(queued) <= _scans(single_depot, "SIM-1"), "a queued scan was lost"
    assert device_back <= RESUME_SECONDS and gateway_back <= RESUME_SECONDS, (device_back, gateway_back)
    # And the depot works as before: a queued scan is good for a reveal.
    result = hh.reveal(queued[-1], ["phone"], 1) if hh.app.current == queued[-1] else None
    if result is None:
        hh.scan_label(single_depot.labels[queued[-1]])
        result = hh.reveal(queued[-1], ["phone"], 1)
    phone = FAKE_PEOPLE[single_depot.route.index(queued[-1]) % len(FAKE_PEOPLE)][1]
    assert result.shown == {"phone": phone}, result
