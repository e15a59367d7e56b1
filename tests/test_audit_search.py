"""Officer queries and export: `veilpost audit search` by courier badge,
named person, device, parcel, action, outcome and time range (--json), and
`veilpost audit export` as JSON lines with ISO times and field names. The
log holds pseudonyms only; the badge is turned into one by the gateway."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gateway import audit_query, operators, registry
from tools.cli import main

T0 = 1_900_000_000.0  # 2030-03-17T17:46:40Z


def _cli(home, *args):
    result = CliRunner().invoke(main, ["--home", str(home.config.home), *args])
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


def _log(home):
    log = home.audit
    c112, c200 = log.person("courier", "C-112"), log.person("courier", "C-200")
    with home.store.transaction() as tx:
        log.append(tx, T0, c112, "HH-1", "login", "", "ok", "")
        log.append(tx, T0 + 60, c112, "HH-1", "reveal", "VP0000000001", "granted", {"fields": [2]})
        log.append(tx, T0 + 120, c112, "HH-1", "reveal", "VP0000000002", "denied", {"reason": "not on route"})
        log.append(tx, T0 + 3600, c200, "HH-2", "reveal", "VP0000000001", "granted", {"fields": [1, 2]})
        log.append(tx, T0 + 7200, "sentinel", "HH-2", "suspend", "", "suspended", {"sign": "rate"})


def test_search_by_badge_device_parcel_action_outcome_and_time(gateway_home):
    home = gateway_home
    _log(home)
    c112 = home.audit.person("courier", "C-112")

    def seqs(**q):
        return [e["seq"] for e in audit_query.search(home.store, audit_query.Query(**q))]

    assert seqs(actor=c112) == [1, 2, 3]
    assert seqs(device="HH-2") == [4, 5]
    assert seqs(parcel="VP0000000001") == [2, 4]
    assert seqs(action="reveal", outcome="granted") == [2, 4]
    assert seqs(since=T0 + 60, until=T0 + 3600) == [2, 3]
    assert seqs(actor=c112, action="reveal", limit=1) == [2]
    assert seqs(actor="courier:nobody") == []


def test_search_cli_computes_the_pseudonym_and_prints_json(gateway_home):
    home = gateway_home
    _log(home)
    code, out = _cli(home, "audit", "search", "--courier", "C-112", "--action", "reveal", "--json")
    assert code == 0, out
    found = json.loads(out)
    assert [e["seq"] for e in found] == [2, 3]
    assert found[0]["at"] == "2030-03-17T17:47:40.000Z" and found[0]["detail"] == {"fields": [2]}
    assert "C-112" not in out  # the badge is never in the log nor in what it prints
    code, out = _cli(home, "audit", "search", "--device", "HH-2", "--since", str(T0 + 7000))
    assert code == 0 and out.count("\n") == 1 and "suspend" in out and '"sign": "rate"' in out
    code, out = _cli(home, "audit", "search", "--parcel", "VP9999999999")
    assert code == 0 and "no entries match" in out
    code, out = _cli(home, "audit", "search", "--since", "yesterday-ish")
    assert code == 2 and "--since" in out


def test_search_by_a_named_operator(gateway_home):
    home = gateway_home
    operators.add(home.store, "Ivy Test", "it")
    registry.add_officer(home.store, "Officer Test", "135790")
    with home.store.transaction() as tx:
        home.audit.append(tx, T0, home.audit.person("it", "Ivy Test"), "HH-1", "device-revoke", "", "ok",
                          {"reason": "lost"})
        home.audit.append(tx, T0 + 1, home.audit.person("officer", "Officer Test"), "", "case-approve",
                          "VP0000000001", "ok", {})
    code, out = _cli(home, "--json", "audit", "search", "--by", "Ivy Test")
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["device-revoke"]
    code, out = _cli(home, "--json", "audit", "search", "--by", "Officer Test")
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["case-approve"]
    code, out = _cli(home, "audit", "search", "--by", "Nobody Test")
    assert code == 3 and "not on" in out


def test_export_writes_json_lines_with_iso_times_and_field_names(gateway_home, tmp_path):
    home = gateway_home
    _log(home)
    target = tmp_path / "audit.jsonl"
    code, out = _cli(home, "audit", "export", "-o", str(target))
    assert code == 0 and "exported 5 entries" in out
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5]
    assert set(lines[0]) == {"v", "seq", "at", "at_ms", "actor", "device", "action", "parcel", "outcome",
                             "detail", "prev_hash", "hash"}
    assert lines[0]["at"] == "2030-03-17T17:46:40.000Z" and lines[0]["v"] == 2 and lines[0]["detail"] == {}
    assert lines[1]["prev_hash"] == lines[0]["hash"]


def test_verify_json_and_key(gateway_home):
    home = gateway_home
    _log(home)
    code, out = _cli(home, "audit", "verify", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["entries"] == 5 and report["versions"] == {"2": 5}
    code, out = _cli(home, "audit", "key")
    assert code == 0 and len(out.strip()) == 64 and bytes.fromhex(out.strip())
    code, out = _cli(home, "audit", "verify", "--witness", str(home.config.home / "no-such-witness"))
    assert code == 3 and "cannot read the witness" in out
