import pytest

from gateway import registry, retention


def _ask(depot, t, now):
    depot.scan(t, at=now)
    return depot.reveal(t, (2,), 1, now=now)


def _deliver(depot, t, now):
    h = depot.home
    with h.store.transaction() as tx:
        return retention.deliver(tx, h.audit, t, "C-112", "HH-1", 1, now)


def test_reveal_after_delivery_is_refused_and_holders_are_told(depot):
    t = depot.route[0]
    assert _ask(depot, t, depot.now).decision.granted
    assert _deliver(depot, t, depot.now + 5) == ["HH-1"]
    out = _ask(depot, t, depot.now + 10)
    assert not out.decision.granted and "sealed after delivery" in out.decision.reason


def test_complaint_case_needs_two_different_people(depot):
    h, t = depot.home, depot.route[1]
    _deliver(depot, t, depot.now)
    registry.add_officer(h.store, "Officer A", "111111")
    registry.add_officer(h.store, "Officer B", "222222")
    retention.open_case(h.store, h.audit, "CASE-1", t, "receiver says parcel missing", "Agent Z", depot.now,
                        for_account="C-112", fields=(2,))
    first = retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer A", "111111", depot.now)
    assert first.open_until is None
    with pytest.raises(retention.CaseError, match="second person"):
        retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer A", "111111", depot.now)
    assert not _ask(depot, t, depot.now + 1).decision.granted
    second = retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer B", "222222", depot.now)
    assert second.open_until == depot.now + 30 * 60
    assert _ask(depot, t, depot.now + 2).decision.granted
    assert not _ask(depot, t, depot.now + 31 * 60).decision.granted


def test_retention_shreds_delivered_parcels_after_n_days(depot):
    h = depot.home
    _deliver(depot, depot.route[0], depot.now)
    assert retention.run_retention(h.store, h.vault, h.audit, h.config, depot.now + 29 * 86400) == []
    gone = retention.run_retention(h.store, h.vault, h.audit, h.config, depot.now + 31 * 86400)
    assert gone == [depot.route[0]]
    row = h.store.one("SELECT data_key, ciphertext, state, masked_receiver_name FROM parcels"
                      " WHERE tracking_no = ?", depot.route[0])
    assert row == (None, None, "shredded", "*")
    assert h.store.one("SELECT COUNT(*) FROM audit WHERE action = 'shred'")[0] == 1
