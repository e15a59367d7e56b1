"""The offline batch over a real broker: the gateway answers a batch with a
batch_ack only after its items are committed, one outcome per item; a bad
item is refused and logged while the good ones are kept; a re-sent batch
(same item ids) is not applied twice."""

from __future__ import annotations

import logging
import time

from protocol import messages
from protocol.errors import MALFORMED


def _ready(live_depot):
    hh = live_depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    return hh


def _item(name, fields):
    return messages.encode(name, fields, int(time.time()))


def _scan(depot, hh, t):
    """A queued scan of the parcel's label, as the handheld's offline queue holds it."""
    return _item("scan", {"tracking_no": t, "session": hh.session, "label": depot.labels[t]})


def _ack(hh):
    while True:
        reply = hh.recv(timeout=5.0)
        assert reply is not None, "no batch_ack from the gateway"
        if reply[0] == "batch_ack":
            return reply[1]


def test_batch_ack_names_each_item_and_a_bad_item_is_refused_with_a_log_line(live_depot, caplog):
    caplog.set_level(logging.INFO, logger="veilpost.gateway")
    hh = _ready(live_depot)
    a, b = live_depot.route[0], live_depot.route[1]
    items = [_scan(live_depot, hh, a),
             b"\xa1\x00",                                        # not a message
             _scan(live_depot, hh, b)]
    hh.send("batch", {"items": items, "ids": [5, 6, 7]})
    ack = _ack(hh)
    assert ack["ids"] == [5, 6, 7]
    assert ack["outcomes"] == [messages.BATCH_OK, MALFORMED, messages.BATCH_OK]
    rows = live_depot.home.store.all("SELECT tracking_no FROM scans WHERE device_id = 'HH-1'")
    scanned = {r[0] for r in rows}
    assert scanned == {a, b}
    assert any('"batch-item-refused"' in r.getMessage() and '"item": 6' in r.getMessage()
               for r in caplog.records)


def test_a_resent_batch_is_not_applied_twice(live_depot):
    hh = _ready(live_depot)
    t = live_depot.route[2]
    items = [_scan(live_depot, hh, t),
             _item("delivered", {"tracking_no": t, "session": hh.session, "proof": b"135790", "kind": 3})]
    hh.send("batch", {"items": items, "ids": [10, 11]})
    assert _ack(hh)["outcomes"] == [messages.BATCH_OK, messages.BATCH_OK]
    # The ack was lost (say): the handheld sends the same items again after reconnecting.
    hh.send("batch", {"items": items, "ids": [10, 11]})
    assert _ack(hh)["outcomes"] == [messages.BATCH_SEEN, messages.BATCH_SEEN]
    store = live_depot.home.store
    assert store.one("SELECT COUNT(*) FROM audit WHERE action = 'deliver' AND parcel = ?", t)[0] == 1
    # A later batch with new ids is applied.
    u = live_depot.route[3]
    hh.send("batch", {"items": [_scan(live_depot, hh, u)], "ids": [12]})
    assert _ack(hh)["outcomes"] == [messages.BATCH_OK]
    assert store.one("SELECT COUNT(*) FROM scans WHERE tracking_no = ?", u)[0] == 1


def test_a_batch_whose_ids_do_not_match_its_items_gets_an_error(live_depot):
    hh = _ready(live_depot)
    hh.send("batch", {"items": [_item("scan", {"tracking_no": live_depot.route[0], "session": hh.session})],
                      "ids": [1, 2]})
    reply = hh.recv(timeout=5.0)
    assert reply is not None and reply[0] == "error" and "ids" in reply[1]["detail"]


def test_a_reprovisioned_device_has_its_first_offline_batch_applied(depot):
    """A handheld provisioned again under the same id numbers its offline
    items from the start: the old handheld's high-water mark must not make
    its first batch look seen before."""
    from gateway import registry
    from gateway.handlers import Handlers, Work

    home = depot.home
    handlers = Handlers(home)
    labels = {t: depot.label(t) for t in depot.route[:3]}

    def batch(session, tracking_nos, ids):
        work = Work()
        handlers.begin()
        items = [_item("scan", {"tracking_no": t, "session": session, "label": labels[t]})
                 for t in tracking_nos]
        with home.store.transaction() as tx:
            handlers.dispatch(tx, "HH-1", "batch", {"items": items, "ids": ids}, depot.now, work)
        return work.replies[-1].fields["outcomes"]

    old = bytes.fromhex(depot.session)
    assert batch(old, depot.route[:2], [0, 1]) == [messages.BATCH_OK, messages.BATCH_OK]
    assert batch(old, depot.route[:1], [0]) == [messages.BATCH_SEEN]   # the same handheld re-sending
    # Its registry row goes (as tools/provision.py takes back a failed provisioning) and comes anew.
    home.store.run("DELETE FROM devices WHERE device_id = 'HH-1'")
    registry.add_device(home.store, home.keys.kek, "HH-1", "test")
    registry.set_device_state(home.store, "HH-1", "active")
    with home.store.transaction() as tx:
        new = bytes.fromhex(registry.login(tx, "C-112", "HH-1", depot.now))
    assert batch(new, [depot.route[2]], [0]) == [messages.BATCH_OK]
    assert home.store.one("SELECT COUNT(*) FROM scans WHERE device_id = 'HH-1' AND tracking_no = ?",
                          depot.route[2])[0] == 1


def test_batch_ack_and_resend_on_the_postgresql_store(pg_home, embedded_broker):
    from tests.fixtures.gateway import LiveDepot

    depot = LiveDepot(pg_home, embedded_broker)
    try:
        hh = _ready(depot)
        t = depot.route[2]
        items = [_scan(depot, hh, t), b"\xa1\x00",
                 _item("delivered", {"tracking_no": t, "session": hh.session, "proof": b"1357", "kind": 3})]
        hh.send("batch", {"items": items, "ids": [1, 2, 3]})
        assert _ack(hh)["outcomes"] == [messages.BATCH_OK, MALFORMED, messages.BATCH_OK]
        hh.send("batch", {"items": items, "ids": [1, 2, 3]})
        assert _ack(hh)["outcomes"] == [messages.BATCH_SEEN] * 3
        assert depot.home.store.one("SELECT COUNT(*) FROM audit WHERE action = 'deliver' AND parcel = ?",
                                    t)[0] == 1
    finally:
        depot.close()
