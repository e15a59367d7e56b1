"""The embedded broker delivers every message while clients subscribe: amqtt
0.12 walks its subscription table across awaits, so a SUBSCRIBE landing
mid-broadcast broke the walk and the message was lost for every subscriber."""

from __future__ import annotations

import threading
import time

from gateway.broker import Grant, new_password
from tests.fixtures.brokers import MqttProbe

MESSAGES = 300
JOINERS = 40
ROUNDS = 10


def _client(broker) -> MqttProbe:
    username = "bc-" + new_password()[:8]
    password = new_password()
    broker.admin.add_client(username, password, (Grant("subscribe", "#"), Grant("publish", "#")))
    probe = MqttProbe(broker, username, password, timeout=10)
    assert probe.connected
    return probe


def test_no_message_is_lost_while_many_clients_subscribe_during_broadcast(embedded_broker):
    # Filters are walked in the order they were first subscribed: a broken
    # walk loses the message for the filters after the one being walked.
    early = [_client(embedded_broker) for _ in range(8)]
    for probe in early:
        assert probe.subscribe("vp/+/fanout", qos=1) == 1
    listeners = [_client(embedded_broker) for _ in range(3)]
    for probe in listeners:
        assert probe.subscribe("vp/test/fanout", qos=1) == 1
    sender = _client(embedded_broker)
    joiners = [_client(embedded_broker) for _ in range(JOINERS)]

    def send() -> None:
        for i in range(MESSAGES):
            sender.client.publish("vp/test/fanout", b"%d" % i, qos=1)
            time.sleep(0.002)

    publishing = threading.Thread(target=send)
    publishing.start()
    # Each joiner adds filters of its own, without waiting, while the fan-out runs.
    for _round in range(ROUNDS):
        time.sleep(0.02)
        for n, probe in enumerate(joiners):
            probe.client.subscribe([("vp/test/joiner/%d/%s" % (n, new_password()[:6]), 1),
                                    ("vp/test/fanout", 1)])
    publishing.join()
    try:
        for probe in listeners:
            got = set()
            while len(got) < MESSAGES:
                m = probe.next_message(timeout=10)
                if m is None:
                    break
                got.add(int(m.payload))
            assert sorted(set(range(MESSAGES)) - got) == [], "messages lost for a subscriber"
    finally:
        for probe in [*early, *listeners, sender, *joiners]:
            probe.close()
