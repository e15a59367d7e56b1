"""Two gateways on one PostgreSQL store, sharing `$share/veilpost/vp/v1/d/+/up`
on Mosquitto. The gateway's end-to-end tests run again on that pair (the
`live_depot` fixture is swapped for one with two services), then the
properties only a pair can break: single use of a token, budgets, replay
windows and the audit chain across instances."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import audit
from gateway.audit import AuditLog
from gateway.home import Home
from gateway.store_pg import PgStore
from gateway.vault import Vault
from tests import test_gateway_bad_input, test_gateway_rented_account, test_gateway_service, test_invariants
from tests.fixtures.gateway import Handheld, LiveDepot, start_gateway

SINGLE_ONLY = {
    "test_inv2_no_plaintext_at_rest_in_database_wal_logs_or_audit",  # greps the SQLite file
    "test_inv5_after_retention_the_data_key_is_gone_from_disk",  # greps the SQLite file
    "test_inv3_no_grant_leaves_without_its_audit_entry",  # SQLite trigger; PostgreSQL version below
    "test_a_storm_of_random_bytes_never_stops_the_gateway",  # counts one service's messages; each takes half
}

for _module in (test_gateway_service, test_invariants, test_gateway_bad_input, test_gateway_rented_account):
    _short = _module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    for _name in dir(_module):
        if _name.startswith("test_") and _name not in SINGLE_ONLY:
            globals()["test_two_gateways_%s__%s" % (_short, _name[5:])] = getattr(_module, _name)


def twin(home: Home) -> Home:
    """A second gateway process's view: its own connection and caches, the
    same config object (so a test's config change reaches both) and keys."""
    store = PgStore(home.store.url)  # type: ignore[attr-defined]
    return Home(home.config, home.keys, store, Vault(home.keys.kek),
                AuditLog(home.keys))


class PacedHandheld(Handheld):
    """A handheld at a courier's pace: a reveal follows its scan once the scan
    is stored. Two gateways do not keep one device's messages in order, so a
    reveal sent within milliseconds of its scan could meet "scan first"
    (docs/scale-out.md); a person never presses that fast."""

    store: Any = None

    def scan(self, tracking_no: str, label: bytes | None = None) -> None:
        t = int(time.time())
        super().scan(tracking_no, label)
        if label is None and tracking_no not in self.labels:
            return  # refused: nothing will be stored to wait for
        _wait_for(lambda: self.store.one("SELECT 1 FROM scans WHERE device_id = ? AND tracking_no = ?"
                                         " AND at >= ?", self.device_id, tracking_no, t) is not None)


class TwoGatewayDepot(LiveDepot):
    def __init__(self, home: Home, broker: Any) -> None:
        super().__init__(home, broker)
        self.other_home = twin(home)
        self.second = start_gateway(self.other_home, broker)
        self.services = [self.service, self.second]

    def handheld(self, device_id: str = "HH-1", secret: bytes | None = None,
                 labels: dict[str, bytes] | None = None) -> Handheld:
        held = {t: self.labels[t] for t in self.route} if labels is None else labels
        hh = PacedHandheld(self.broker, device_id, self.secret if secret is None else secret, labels=held)
        hh.store = self.home.store
        self.handhelds.append(hh)
        return hh

    def close(self) -> None:
        super().close()
        self.second.stop()
        self.other_home.close()


@pytest.fixture
def gateway_home(pg_home: Home) -> Home:
    return pg_home


@pytest.fixture
def live_depot(pg_home: Home, mosquitto_broker: Any) -> Iterator[TwoGatewayDepot]:
    depot = TwoGatewayDepot(pg_home, mosquitto_broker)
    yield depot
    depot.close()


def _logged_in(depot: TwoGatewayDepot) -> Any:
    hh = depot.handheld()
    assert hh.login("C-112", "4321")["ok"]
    return hh


def _outcomes(store: Any, action: str) -> list[str]:
    return [r[0] for r in store.all("SELECT outcome FROM audit WHERE action = ? ORDER BY seq", action)]


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_both_gateways_take_a_share_of_the_work(live_depot: TwoGatewayDepot) -> None:
    hh = _logged_in(live_depot)
    for i in range(20):
        assert hh.ask("route_request", {"session": hh.session})[0] == "route", i
    assert all(s.processed > 0 for s in live_depot.services), [s.processed for s in live_depot.services]


def test_a_token_used_many_times_through_both_gateways_counts_once(live_depot: TwoGatewayDepot) -> None:
    hh = _logged_in(live_depot)
    t = live_depot.route[0]
    hh.scan(t)
    name, grant = hh.reveal(t, [2])
    assert name == "reveal_grant", grant
    for _ in range(12):
        hh.send("token_use", {"cti": grant["cti"], "tracking_no": t, "used_at": int(time.time())})
    store = live_depot.home.store
    assert _wait_for(lambda: len(_outcomes(store, "token-use")) == 12)
    assert sorted(_outcomes(store, "token-use")) == ["ok"] + ["reused"] * 11


def test_per_minute_budget_holds_across_gateways(live_depot: TwoGatewayDepot) -> None:
    cfg = live_depot.home.config.sentinel
    cfg.per_minute, cfg.distinct_per_minute = 3, 100
    hh = _logged_in(live_depot)
    for t in live_depot.route:
        hh.scan(t)
    for i, t in enumerate(live_depot.route):  # new releases, fired at both gateways at once
        hh.send("reveal_request", {"req": i + 1, "tracking_no": t, "fields": [2], "reason": 1,
                                   "session": hh.session})
    replies = [hh.recv(timeout=10) for _ in live_depot.route]
    names = [r[0] for r in replies if r is not None]
    assert names.count("reveal_grant") == cfg.per_minute, names
    store = live_depot.home.store
    released = store.one("SELECT COUNT(DISTINCT tracking_no) FROM releases WHERE account = 'C-112'")
    assert released is not None and released[0] == cfg.per_minute


def test_a_message_replayed_to_the_other_gateway_is_refused(live_depot: TwoGatewayDepot) -> None:
    hh = _logged_in(live_depot)
    t = live_depot.route[2]
    hh.scan(t)
    payload = hh.channel.wrap("reveal_request", {"req": 41, "tracking_no": t, "fields": [2], "reason": 1,
                                                 "session": hh.session}, int(time.time()))
    hh.send_raw(payload)
    assert hh.recv()[0] == "reveal_grant"  # type: ignore[index]
    for _ in range(6):  # round robin: at least one copy reaches each gateway
        hh.send_raw(payload)
    assert hh.recv(timeout=1.5) is None
    assert _outcomes(live_depot.home.store, "reveal") == ["granted"]


def test_audit_chain_stays_whole_under_both_gateways(live_depot: TwoGatewayDepot) -> None:
    live_depot.home.config.sentinel.per_minute = 1000
    live_depot.home.config.sentinel.distinct_per_minute = 1000
    hh = _logged_in(live_depot)
    for t in live_depot.route:
        hh.scan(t)
    sent = 0
    for _round in range(5):
        for t in live_depot.route:
            sent += 1
            hh.send("reveal_request", {"req": sent, "tracking_no": t, "fields": [2], "reason": 1,
                                       "session": hh.session})
    got = [hh.recv(timeout=10) for _ in range(sent)]
    assert all(g is not None and g[0] == "reveal_grant" for g in got), got
    store = live_depot.home.store
    verdict = audit.verify(store, live_depot.home.keys.public_key())
    assert verdict.ok, verdict.problem
    assert len(_outcomes(store, "reveal")) == sent
    assert all(s.processed > 0 for s in live_depot.services)


def test_no_grant_leaves_either_gateway_without_its_audit_entry(live_depot: TwoGatewayDepot) -> None:
    hh = _logged_in(live_depot)
    store = live_depot.home.store
    t = live_depot.route[0]
    hh.scan(t)
    name, grant = hh.reveal(t, [2])
    assert name == "reveal_grant"
    seq = store.one("SELECT audit_seq FROM tokens WHERE cti = ?", grant["cti"])[0]  # type: ignore[index]
    assert store.one("SELECT outcome, parcel FROM audit WHERE seq = ?", seq) == ("granted", t)
    # Fail closed on both gateways: the audit table refuses every insert.
    with store.transaction() as tx:
        tx.run("CREATE FUNCTION audit_full() RETURNS trigger LANGUAGE plpgsql AS"
               " 'BEGIN RAISE EXCEPTION ''disk full''; END'")
        tx.run("CREATE TRIGGER audit_down BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_full()")
    others = live_depot.route[1:5]
    for i, t in enumerate(others):
        hh.scan(t)
        name, fields = hh.reveal(t, [2], req=60 + i)
        assert name == "reveal_denied" and "audit log unavailable" in fields["reason"], fields
    assert store.one("SELECT COUNT(*) FROM tokens")[0] == 1  # type: ignore[index]
    assert all(s.processed > 0 for s in live_depot.services)
