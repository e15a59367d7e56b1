from protocol import messages as m
from tests.fixtures.gateway import Wire


def _ask(depot, tracking_no, fields=(2,), reason=1, device="HH-1", session=None, now=None):
    return depot.reveal(tracking_no, tuple(fields), reason, device, session, now)


def test_scanned_parcel_on_route_is_granted_with_only_named_fields(depot):
    depot.scan(depot.route[0])
    out = _ask(depot, depot.route[0], fields=(2,))
    assert out.decision.granted, out.decision.reason
    assert out.values == {2: "17000001234"}
    assert len(out.cti) == 8 and out.exp == int(depot.now) + 60


def test_grant_is_audited_in_the_same_commit_as_the_token(depot):
    depot.scan(depot.route[0])
    out = _ask(depot, depot.route[0])
    seq = depot.home.store.one("SELECT audit_seq FROM tokens WHERE cti = ?", out.cti)[0]
    entry = depot.home.store.one("SELECT action, parcel, outcome FROM audit WHERE seq = ?", seq)
    assert entry == ("reveal", depot.route[0], "granted")


def test_parcel_not_on_route_is_denied_with_readable_reason(depot):
    depot.scan(depot.other[0])
    out = _ask(depot, depot.other[0])
    assert not out.decision.granted and out.values == {}
    assert out.decision.reason == (
        "reveal denied: parcel %s is not on route R-07 of courier C-112" % depot.other[0])


def test_unscanned_parcel_is_denied(depot):
    out = _ask(depot, depot.route[1])
    assert out.decision.code == m.DENY_SCAN_FIRST and "scan the label of parcel" in out.decision.reason


def test_stale_scan_is_denied(depot):
    depot.scan(depot.route[1], at=depot.now - 11 * 60)
    assert _ask(depot, depot.route[1]).decision.code == m.DENY_SCAN_FIRST


def test_scan_by_another_device_does_not_count(depot):
    depot.scan(depot.route[1], device="HH-2")
    assert not _ask(depot, depot.route[1]).decision.granted


def test_wrong_session_is_not_logged_in(depot):
    depot.scan(depot.route[0])
    out = _ask(depot, depot.route[0], session="00" * 8)
    assert out.decision.code == m.DENY_NOT_LOGGED_IN


def test_inactive_device_is_denied(depot):
    from gateway import registry
    registry.set_device_state(depot.home.store, "HH-1", "revoked")
    depot.scan(depot.route[0])
    out = _ask(depot, depot.route[0])
    assert out.decision.code == m.DENY_DEVICE and "revoked" in out.decision.reason


def test_invalid_reason_and_fields_are_denied(depot):
    depot.scan(depot.route[0])
    assert _ask(depot, depot.route[0], reason=99).decision.code == m.DENY_FIELD
    assert _ask(depot, depot.route[0], fields=(4,)).decision.code == m.DENY_FIELD
    assert _ask(depot, depot.route[0], fields=()).decision.code == m.DENY_FIELD


def test_outside_delivery_window_is_denied(depot):
    depot.home.store.run("UPDATE parcels SET window_end = ? WHERE tracking_no = ?", depot.now - 1,
                         depot.route[0])
    depot.scan(depot.route[0])
    out = _ask(depot, depot.route[0])
    assert out.decision.kind == "window"


def test_off_shift_is_denied(depot):
    depot.home.store.run("UPDATE couriers SET shift = '00:00-00:01'")
    depot.scan(depot.route[0])
    out = _ask(depot, depot.route[0], now=depot.now)
    assert out.decision.code == m.DENY_OFF_SHIFT


def test_audit_failure_denies(depot):
    depot.scan(depot.route[0])
    depot.home.store.run("CREATE TRIGGER no_audit BEFORE INSERT ON audit"
                         " BEGIN SELECT RAISE(ABORT, 'disk'); END")
    wire = Wire(depot.home, "HH-1", depot.secret)
    replies = wire.send("reveal_request", {"req": 1, "tracking_no": depot.route[0], "fields": [2],
                                           "reason": 1, "session": bytes.fromhex(depot.session)}, depot.now)
    assert [name for name, _ in replies] == ["reveal_denied"]
    assert replies[0][1]["code"] == m.DENY_UNAVAILABLE and "audit log unavailable" in replies[0][1]["reason"]
    assert depot.home.store.one("SELECT COUNT(*) FROM tokens")[0] == 0
    assert depot.home.store.one("SELECT COUNT(*) FROM releases")[0] == 0
