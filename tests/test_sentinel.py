import json

import pytest

from gateway import registry, sentinel


class _Desk:
    """Full-record reveals through the disclosure desk, one transaction each."""

    def __init__(self, depot):
        self.depot, self.desk = depot, depot.desk()

    def handle(self, tracking_nos, now):
        with self.depot.home.store.transaction() as tx:
            return [self.desk.reveal(tx, "HH-1", self.depot.session, t, (1, 2, 3), 1, now)
                    for t in tracking_nos]


def _desk(depot):
    return _Desk(depot)


def _req(depot, t):
    return t


def test_scrape_of_whole_depot_leaks_at_most_three_parcels(depot):
    everything = depot.route + depot.other
    for t in everything:
        depot.scan(t)
    desk = _desk(depot)
    outs = [desk.handle([_req(depot, t)], depot.now + i)[0] for i, t in enumerate(everything)]
    leaked = [o for o in outs if o.values]
    assert len(leaked) <= 3
    alarms = [o.alarm for o in outs if o.alarm]
    assert len(alarms) == 1
    assert registry.courier_state(depot.home.store, "C-112") == "suspended"
    assert registry.device_state(depot.home.store, "HH-1") == "suspended"


def test_many_distinct_parcels_in_a_minute_trips_on_the_fourth(depot):
    for t in depot.route:
        depot.scan(t)
    desk = _desk(depot)
    outs = [desk.handle([_req(depot, t)], depot.now + i)[0] for i, t in enumerate(depot.route[:4])]
    assert [o.decision.granted for o in outs] == [True, True, True, False]
    assert outs[3].alarm is not None and "distinct" in outs[3].alarm.kind


def test_parcels_not_on_route_trip_after_three_strikes(depot):
    desk = _desk(depot)
    picks = [depot.other[0], depot.other[5], depot.other[2]]
    outs = [desk.handle([_req(depot, t)], depot.now + i)[0] for i, t in enumerate(picks)]
    assert outs[0].alarm is None and outs[1].alarm is None and outs[2].alarm is not None


def test_sequential_tracking_numbers_trip(depot):
    desk = _desk(depot)
    depot.home.config.sentinel.strikes = 100
    outs = [desk.handle([_req(depot, t)], depot.now + i)[0] for i, t in enumerate(depot.other[:3])]
    assert outs[2].alarm is not None and "sequential" in outs[2].alarm.kind


def test_incident_lists_exactly_the_parcels_the_account_received(depot):
    for t in depot.route:
        depot.scan(t)
    desk = _desk(depot)
    outs = [desk.handle([_req(depot, t)], depot.now + i)[0] for i, t in enumerate(depot.route[:4])]
    got = {o.ask.tracking_no for o in outs if o.values}
    row = depot.home.store.one("SELECT parcels, courier_id, device_id, state FROM incidents")
    listed = json.loads(row[0])
    assert {p["tracking_no"] for p in listed} == got
    assert all(p["fields"] == [1, 2, 3] for p in listed)
    assert row[1:] == ("C-112", "HH-1", "open")


def test_alarm_carries_no_personal_data(depot):
    for t in depot.route:
        depot.scan(t)
    desk = _desk(depot)
    outs = [desk.handle([_req(depot, t)], depot.now + i)[0] for i, t in enumerate(depot.route[:4])]
    text = json.dumps(outs[3].alarm.as_dict(), ensure_ascii=False)
    assert "C-112" not in text and "測試" not in text and "1700000" not in text


def test_suspended_account_gets_nothing_more(depot):
    for t in depot.route:
        depot.scan(t)
    desk = _desk(depot)
    for i, t in enumerate(depot.route[:4]):
        desk.handle([_req(depot, t)], depot.now + i)
    later = desk.handle([_req(depot, depot.route[0])], depot.now + 3600)[0]
    assert not later.decision.granted and "suspended" in later.decision.reason


def test_only_named_officer_lifts_a_suspension_and_it_is_audited(depot):
    h = depot.home
    with h.store.transaction() as tx:
        sentinel.trip(tx, h.audit, "C-112", "HH-1", "test", depot.now, h.config.sentinel)
    registry.add_officer(h.store, "Officer Testa", "135790")
    with pytest.raises(sentinel.LiftRefused):
        sentinel.lift(h.store, h.audit, "Officer Testa", "000000", depot.now, "checked", courier="C-112")
    with pytest.raises(sentinel.LiftRefused):
        sentinel.lift(h.store, h.audit, "Someone Else", "135790", depot.now, "checked", courier="C-112")
    assert registry.courier_state(h.store, "C-112") == "suspended"
    sentinel.lift(h.store, h.audit, "Officer Testa", "135790", depot.now, "checked", courier="C-112",
                  device="HH-1")
    assert registry.courier_state(h.store, "C-112") == "active"
    assert registry.device_state(h.store, "HH-1") == "active"
    outcomes = [r[0] for r in h.store.all("SELECT outcome FROM audit WHERE action = 'lift-suspension'")]
    assert outcomes == ["refused", "refused", "ok", "ok"]


def test_a_sentinel_suspension_cannot_be_undone_by_an_ordinary_state_change(depot):
    h = depot.home
    with h.store.transaction() as tx:
        sentinel.trip(tx, h.audit, "C-112", "HH-1", "test", depot.now, h.config.sentinel)
    with pytest.raises(registry.RegistryError, match="only a security officer"):
        registry.set_courier_state(h.store, "C-112", "active")
    with pytest.raises(registry.RegistryError, match="only a security officer"):
        registry.set_device_state(h.store, "HH-1", "active")
    registry.add_officer(h.store, "Officer Testa", "135790")
    sentinel.lift(h.store, h.audit, "Officer Testa", "135790", depot.now, "checked", courier="C-112",
                  device="HH-1")
    # The holds end; the incident stays open for its notification duty.
    assert h.store.one("SELECT state FROM incidents")[0] == "open"
    assert {r[0] for r in h.store.all("SELECT state FROM incident_holds")} == {"lifted"}
    registry.set_courier_state(h.store, "C-112", "suspended")  # ordinary suspensions still work
    registry.set_courier_state(h.store, "C-112", "active")
