"""Architecture invariants 1-5 as tests that fail when the invariant breaks
(6 is tests/test_gateway_rented_account.py, 8 tests/test_gateway_bad_input.py)."""

import io
import logging
import time

import pytest

from gateway import audit_query, registry, retention
from gateway.manifest import import_manifest
from gateway.vault import Shredded
from tests.fixtures.gateway import Spy, leaks, manifest_csv


def _session(live_depot):
    hh = live_depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    assert hh.ask("route_request", {"session": hh.session})[0] == "route"
    while hh.recv(timeout=0.3) is not None:  # one route message per route
        pass
    return hh


def _reveal_everything(live_depot, hh):
    grants = []
    for i, t in enumerate(live_depot.route[:3]):
        hh.scan(t)
        name, fields = hh.reveal(t, [1, 2, 3], req=i + 1)
        assert name == "reveal_grant", fields
        grants.append(fields)
    return grants


def test_inv1_a_subscriber_to_everything_sees_no_plaintext(live_depot):
    spy = Spy(live_depot.broker)
    try:
        hh = _session(live_depot)
        grants = _reveal_everything(live_depot, hh)
        opened = hh.channel.open_token(grants[0]["token"], int(time.time()))[3]
        assert opened[2] == "17000001234"  # the device did get the plaintext...
        seen = spy.drain()
    finally:
        spy.close()
    device_traffic = [p for topic, p, _ in seen if topic.startswith("vp/v1/d/")]
    assert len(device_traffic) >= 10
    for topic, payload, _ in seen:
        assert leaks(payload) == [], topic  # ...but the broker never saw it


def test_inv2_no_plaintext_at_rest_in_database_wal_logs_or_audit(live_depot, caplog):
    caplog.set_level(logging.DEBUG)
    home = live_depot.home
    home.config.reveal.ignore_window = True  # the manifest's windows are in 2030
    home.config.sentinel.distinct_per_minute = 10
    data = manifest_csv([("VP0000077701", "R-11", "C-112", 0), ("VP0000077702", "R-11", "C-112", 1),
                         ("VP0000077703", "R-11", "C-112", 2)])
    import_manifest(home.store, home.vault, home.audit, data, home.zone, time.time(), "it:test")
    hh = _session(live_depot)
    hh.labels.update({t: live_depot.label(t) for t in ("VP0000077701", "VP0000077702", "VP0000077703")})
    _reveal_everything(live_depot, hh)
    hh.scan("VP0000077702")
    assert hh.reveal("VP0000077702", [1, 2, 3], req=9)[0] == "reveal_grant"
    exported = io.StringIO()
    audit_query.export(home.store, exported)
    db = home.config.database_path
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert any(p.name.endswith("-wal") for p in files)
    for path in files:
        assert leaks(path.read_bytes()) == [], path.name
    assert leaks(exported.getvalue().encode()) == []
    assert leaks(caplog.text.encode()) == []
    assert "\"event\": \"reveal\"" in caplog.text  # the gateway's own lines were captured


def test_inv3_no_grant_leaves_without_its_audit_entry(live_depot):
    hh = _session(live_depot)
    grants = _reveal_everything(live_depot, hh)
    store = live_depot.home.store
    for g in grants:
        seq = store.one("SELECT audit_seq FROM tokens WHERE cti = ?", g["cti"])[0]
        entry = store.one("SELECT outcome, parcel FROM audit WHERE seq = ?", seq)
        assert entry == ("granted", g["tracking_no"])
    # Fail closed: when the audit log cannot be written, nothing is granted.
    store.run("CREATE TRIGGER audit_down BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'full'); END")
    t = live_depot.route[4]
    hh.scan(t)
    name, fields = hh.reveal(t, [2], req=50)
    assert name == "reveal_denied" and "audit log unavailable" in fields["reason"]
    assert store.one("SELECT COUNT(*) FROM tokens WHERE tracking_no = ?", t)[0] == 0


def test_inv3_token_is_scoped_short_lived_and_names_only_asked_fields(live_depot):
    hh = _session(live_depot)
    t = live_depot.route[0]
    hh.scan(t)
    _, grant = hh.reveal(t, [3])
    tracking_no, _cti, exp, values = hh.channel.open_token(grant["token"], int(time.time()))
    assert tracking_no == t and list(values) == [3]
    assert exp - time.time() <= 61
    from protocol.errors import ProtocolError
    with pytest.raises(ProtocolError):
        hh.channel.open_token(grant["token"], exp + 1)


def test_inv4_sealed_parcel_opens_only_with_two_people(live_depot):
    hh = _session(live_depot)
    home, t = live_depot.home, live_depot.route[1]
    hh.scan(t)
    delivered = {"tracking_no": t, "session": hh.session, "proof": b"482913", "kind": 3}
    assert hh.ask("delivered", delivered)[0] == "seal"
    assert hh.reveal(t, [2], req=2)[0] == "reveal_denied"
    registry.add_officer(home.store, "Officer A", "111111")
    registry.add_officer(home.store, "Officer B", "222222")
    retention.open_case(home.store, home.audit, "CASE-9", t, "complaint", "Agent Z", time.time(),
                        for_account="C-112", fields=(2,))
    retention.approve_case(home.store, home.audit, home.config, "CASE-9", "Officer A", "111111", time.time())
    assert hh.reveal(t, [2], req=3)[0] == "reveal_denied"
    retention.approve_case(home.store, home.audit, home.config, "CASE-9", "Officer B", "222222", time.time())
    hh.scan(t)
    assert hh.reveal(t, [2], req=4)[0] == "reveal_grant"
    actions = [r[0] for r in home.store.all("SELECT action FROM audit WHERE parcel = ? ORDER BY seq", t)]
    assert actions.count("case-approve") == 2 and "deliver" in actions and "case-open" in actions


def test_inv5_after_retention_the_data_key_is_gone_from_disk(gateway_home):
    home = gateway_home
    registry.add_courier(home.store, "C-112", "4321", "D-1")
    import_manifest(home.store, home.vault, home.audit, manifest_csv([("VP0000055501", "R-5", "C-112", 0)]),
                    home.zone, 0.0, "it:test")
    wrapped = bytes(home.store.one("SELECT data_key FROM parcels")[0])
    blob = bytes(home.store.one("SELECT ciphertext FROM parcels")[0])
    with home.store.transaction() as tx:
        retention.deliver(tx, home.audit, "VP0000055501", "C-112", "HH-1", 1, 1000.0)
    assert retention.run_retention(home.store, home.vault, home.audit, home.config, 1000.0 + 31 * 86400)
    with pytest.raises(Shredded):
        home.vault.read(home.store, "VP0000055501", [2])
    db = home.config.database_path
    for path in [p for p in db.parent.iterdir() if p.name.startswith(db.name)]:
        raw = path.read_bytes()
        assert wrapped not in raw and blob[:32] not in raw, path.name
    masked = home.store.one("SELECT masked_receiver_phone, state FROM parcels")
    assert masked[1] == "shredded" and masked[0].startswith("170")
