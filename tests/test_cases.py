"""Complaint cases that work (also run on PostgreSQL by
tests/test_pg_gateway_suite.py): a named complaint agent sees what an
approved case names, only in its window, each view audited; a courier named
by a case gets the sealed parcel back in the manifest after a fresh login,
and the gate grants it to that courier only."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cases, operators, registry, retention
from tests.fixtures.gateway import FAKE_PEOPLE, Wire
from tools.cli import main


def _approved(depot: Any, tracking_no: str, for_account: str, fields: tuple[int, ...] = (2,)) -> None:
    h = depot.home
    with h.store.transaction() as tx:
        retention.deliver(tx, h.audit, tracking_no, "C-112", "HH-1", 1, depot.now)
    for name, pin in (("Officer A", "111111"), ("Officer B", "222222")):
        if h.store.one("SELECT 1 FROM officers WHERE name = ?", name) is None:
            registry.add_officer(h.store, name, pin)
    retention.open_case(h.store, h.audit, "CASE-1", tracking_no, "receiver says parcel missing", "Staff S",
                        depot.now, for_account=for_account, fields=fields)
    retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer A", "111111", depot.now)
    retention.approve_case(h.store, h.audit, h.config, "CASE-1", "Officer B", "222222", depot.now)


def test_an_agent_sees_what_the_case_names_only_in_its_window(depot: Any) -> None:
    h, t = depot.home, depot.route[0]
    operators.add(h.store, "Agent Z", "agent")
    operators.add(h.store, "Agent Y", "agent")
    desk = depot.desk()
    retention.open_case(h.store, h.audit, "CASE-0", depot.route[1], "pending", "Staff S", depot.now,
                        for_account="agent:Agent Z")
    with pytest.raises(retention.CaseError, match="not approved yet"):
        cases.view(h.store, desk, "CASE-0", "Agent Z", depot.now, h.zone)
    _approved(depot, t, "agent:Agent Z")
    assert cases.view(h.store, desk, "CASE-1", "Agent Z", depot.now + 60, h.zone) == \
        {"receiver_phone": FAKE_PEOPLE[0][1]}
    with pytest.raises(retention.CaseError, match="not for complaint agent Agent Y"):
        cases.view(h.store, desk, "CASE-1", "Agent Y", depot.now + 60, h.zone)
    with pytest.raises(retention.CaseError, match="closed at"):
        cases.view(h.store, desk, "CASE-1", "Agent Z", depot.now + 31 * 60, h.zone)
    with pytest.raises(retention.CaseError, match="no case"):
        cases.view(h.store, desk, "CASE-9", "Agent Z", depot.now, h.zone)
    views = h.store.all("SELECT actor, outcome, parcel FROM audit WHERE action = 'case-view'")
    assert views == [(h.audit.person("agent", "Agent Z"), "granted", t)]


def test_case_view_through_the_cli_needs_the_agent_it_names(depot: Any) -> None:
    h, t = depot.home, depot.route[0]
    operators.add(h.store, "Agent Z", "agent")
    operators.add(h.store, "Staffer", "staff")
    h.store.run("UPDATE parcels SET delivered_at = NULL")
    _approved(depot, t, "agent:Agent Z", fields=(1, 2))
    h.store.run("UPDATE cases SET open_until = ?", 4e9)  # the CLI reads the real clock
    folder = str(h.config.home)
    ok = CliRunner().invoke(main, ["--home", folder, "case", "view", "CASE-1", "--as", "Agent Z"])
    assert ok.exit_code == 0, ok.output
    assert "receiver_phone: " + FAKE_PEOPLE[0][1] in ok.output and FAKE_PEOPLE[0][0] in ok.output
    for who in ("Staffer", "Nobody"):
        refused = CliRunner().invoke(main, ["--home", folder, "case", "view", "CASE-1", "--as", who])
        assert refused.exit_code == 1 and "complaint agent" in refused.output, refused.output
        assert FAKE_PEOPLE[0][1] not in refused.output


def test_a_case_for_a_courier_puts_the_sealed_parcel_back_on_the_route_for_that_courier_only(
        depot: Any) -> None:
    h, t = depot.home, depot.route[0]
    label = depot.label(t)  # printed before delivery
    _approved(depot, t, "C-112", fields=(2,))
    now = depot.now + 60
    hh = Wire(h, "HH-1", depot.secret, clock=lambda: now)
    assert hh.login("C-112", "4321", now)["ok"]  # a fresh login
    route = [f for name, f in hh.send("route_request", {"session": hh.session}, now) if name == "route"]
    listed = {p["tracking_no"]: p for r in route for p in r["parcels"]}
    assert listed[t]["case_until"] == int(depot.now + 30 * 60)
    assert all("case_until" not in p for tn, p in listed.items() if tn != t)
    hh.send("scan", {"tracking_no": t, "session": hh.session, "label": label}, now)
    name, grant = hh.send("reveal_request", {"req": 1, "tracking_no": t, "fields": [2], "reason": 1,
                                             "session": hh.session}, now)[0]
    assert name == "reveal_grant", grant
    name, denied = hh.send("reveal_request", {"req": 2, "tracking_no": t, "fields": [3], "reason": 1,
                                              "session": hh.session}, now)[0]
    assert name == "reveal_denied"  # only the fields the case names
    # Another courier on another handheld: the case is not theirs.
    secret = registry.add_device(h.store, h.keys.kek, "HH-2", "test")
    registry.set_device_state(h.store, "HH-2", "active")
    other = Wire(h, "HH-2", secret, clock=lambda: now)
    other.handlers = hh.handlers
    assert other.login("C-200", "5555", now)["ok"]
    route = [f for name, f in other.send("route_request", {"session": other.session}, now) if name == "route"]
    assert t not in {p["tracking_no"] for r in route for p in r["parcels"]}
    other.send("scan", {"tracking_no": t, "session": other.session, "label": label}, now)
    name, _f = other.send("reveal_request", {"req": 1, "tracking_no": t, "fields": [2], "reason": 1,
                                             "session": other.session}, now)[0]
    assert name == "reveal_denied"
    # Once the case closes, the parcel leaves the route again.
    later = depot.now + 31 * 60
    route = [f for name, f in hh.send("route_request", {"session": hh.session}, later) if name == "route"]
    assert t not in {p["tracking_no"] for r in route for p in r["parcels"]}
