"""People who act by name (gateway/operators.py, `veilpost operator`): the
list, who may do what, and `--as NAME` on the IT and staff commands: each
audit entry names the person's pseudonym, never a bare "operator", and a
name not on the list, or without the role, is refused with one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateway import operators, registry
from gateway.operators import NotAnOperator
from tools.cli import main


def _cli(home, *args, input=None, env=None):
    result = CliRunner().invoke(main, ["--home", str(home.config.home), *args], input=input, env=env or {})
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


def test_add_list_remove_and_roles(gateway_home):
    store = gateway_home.store
    assert operators.add(store, " Ivy Test ", "it") == operators.Operator("Ivy Test", "it")
    assert operators.add(store, "Ivy Test", "it").role == "it"  # twice is once
    operators.add(store, "Dana Test", "staff")
    registry.add_officer(store, "Officer Test", "135790")
    with pytest.raises(NotAnOperator, match="already on the list as IT"):
        operators.add(store, "Ivy Test", "staff")
    with pytest.raises(NotAnOperator, match="officer add"):
        operators.add(store, "Olga Test", "officer")
    for bad in ("", " ", "x" * 65, "tab\there"):
        with pytest.raises(NotAnOperator, match="1-64 printable"):
            operators.add(store, bad, "it")
    assert [(p.name, p.role) for p in operators.listing(store)] == [
        ("Ivy Test", "it"), ("Dana Test", "staff"), ("Officer Test", "officer")]
    assert operators.remove(store, "Dana Test") is True
    assert operators.remove(store, "Dana Test") is False
    assert [p.name for p in operators.listing(store)] == ["Ivy Test", "Officer Test"]


def test_require_checks_the_name_and_the_role(gateway_home):
    store = gateway_home.store
    operators.add(store, "Ivy Test", "it")
    operators.add(store, "Dana Test", "staff")
    registry.add_officer(store, "Officer Test", "135790")
    assert operators.require(store, "Ivy Test", ("it",)).role == "it"
    assert operators.require(store, "Officer Test", ("it",)).kind == "officer"  # an officer may do IT's work
    assert operators.require(store, "Officer Test", ("staff",)).role == "officer"
    with pytest.raises(NotAnOperator, match="--as NAME"):
        operators.require(store, None, ("it",))
    with pytest.raises(NotAnOperator, match="Dana Test is not on the list as IT"):
        operators.require(store, "Dana Test", ("it",))
    with pytest.raises(NotAnOperator, match="Nobody Test is not on the list"):
        operators.require(store, "Nobody Test", ("it", "staff"))
    with pytest.raises(NotAnOperator):
        operators.require(store, "Officer Test", ("agent",))  # seeing case data is the agent's alone
    operators.remove(store, "Ivy Test")
    with pytest.raises(NotAnOperator):
        operators.require(store, "Ivy Test", ("it",))


def test_operator_cli_first_person_then_only_it_or_an_officer_adds(gateway_home):
    home = gateway_home
    code, out = _cli(home, "operator", "list")
    assert code == 0 and "nobody yet" in out
    code, out = _cli(home, "operator", "add", "Ivy Test", "--role", "it")
    assert code == 0 and "Ivy Test added as IT" in out
    code, out = _cli(home, "operator", "add", "Dana Test", "--role", "staff")
    assert code == 1 and "--as NAME" in out
    assert _cli(home, "operator", "add", "Dana Test", "--role", "staff", "--as", "Ivy Test")[0] == 0
    code, out = _cli(home, "operator", "add", "Eve Test", "--role", "it", "--as", "Dana Test")
    assert code == 1 and "Dana Test is not on the list" in out
    code, out = _cli(home, "operator", "add", "Eve Test", "--role", "it", env={"VEILPOST_AS": "Ivy Test"})
    assert code == 0
    code, out = _cli(home, "--json", "operator", "list")
    assert json.loads(out) == [{"name": "Eve Test", "role": "it"}, {"name": "Ivy Test", "role": "it"},
                               {"name": "Dana Test", "role": "staff"}]
    assert _cli(home, "operator", "remove", "Eve Test", "--as", "Ivy Test")[0] == 0
    code, out = _cli(home, "operator", "remove", "Eve Test", "--as", "Ivy Test")
    assert code == 1 and "not on the list" in out
    entries = home.store.all("SELECT actor, action, detail FROM audit ORDER BY seq")
    ivy = home.audit.person("it", "Ivy Test")
    assert [(a, act) for a, act, _d in entries] == [(ivy, "operator-add"), (ivy, "operator-add"),
                                                   (ivy, "operator-add"), (ivy, "operator-remove")]
    assert "Dana Test" not in str(entries) and home.audit.person("staff", "Dana Test") in entries[1][2]


def test_it_commands_name_the_person_and_refuse_anyone_else(gateway_home):
    home = gateway_home
    operators.add(home.store, "Ivy Test", "it")
    operators.add(home.store, "Dana Test", "staff")
    code, out = _cli(home, "courier", "add", "C-300", "--pin", "2468", "--depot", "D-1")
    assert code == 1 and "say who you are with --as NAME" in out
    assert registry.courier_state(home.store, "C-300") is None  # refused before anything was done
    code, out = _cli(home, "courier", "add", "C-300", "--pin", "2468", "--depot", "D-1", "--as", "Dana Test")
    assert code == 0, out
    code, out = _cli(home, "courier", "suspend", "C-300", "--reason", "test", "--as", "Dana Test")
    assert code == 1 and "not on the list as IT" in out  # depot staff register couriers; IT suspends them
    assert _cli(home, "courier", "suspend", "C-300", "--reason", "badge lost", "--as", "Ivy Test")[0] == 0
    code, out = _cli(home, "device", "provision", "HH-7", "--as", "Dana Test")
    assert code == 1 and "not on the list as IT" in out
    assert registry.device_state(home.store, "HH-7") is None
    code, out = _cli(home, "device", "provision", "HH-7", "--as", "Ivy Test")
    assert code == 0, out
    code, out = _cli(home, "device", "suspend", "HH-7", "--reason", "under review", "--as", "Ivy Test")
    assert code == 0, out
    rows = home.store.all("SELECT actor, action, detail FROM audit ORDER BY seq")
    ivy, dana = home.audit.person("it", "Ivy Test"), home.audit.person("staff", "Dana Test")
    assert [(a, act) for a, act, _d in rows] == [(dana, "courier-add"), (ivy, "courier-suspend"),
                                                 (ivy, "device-provision"), (ivy, "device-suspend")]
    courier = home.audit.person("courier", "C-300")
    assert json.loads(rows[1][2]) == {"courier": courier, "reason": "badge lost"}
    assert all(a != "operator" for a, _act, _d in rows) and "C-300" not in str(rows)
