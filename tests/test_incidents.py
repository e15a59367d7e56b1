"""Incidents without a broker (also run on PostgreSQL by
tests/test_pg_gateway_suite.py): the life cycle and its refusals, the
contacts fixed at opening that retention cannot take away, retries and
idempotent re-runs, a revoked handheld's incident, the escaped report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import incident_report, incidents, notify, provision, registry, retention, sentinel
from gateway.keys import OWN_PREFIX, KeyUnavailable
from gateway.notifiers import SmsNotifier, SmtpNotifier, load_templates
from tests.fixtures.gateway import leaks
from tools.testbed.notify import SmsSink, SmtpSink

ACTOR = "officer:test"


def _trip(depot: Any, why: str = "test trip") -> str:
    h = depot.home
    for i, t in enumerate(depot.route[:4]):  # a minute apart: no budget trips on its own
        depot.scan(t, at=depot.now + i * 61)
        assert depot.reveal(t, (1, 2, 3), now=depot.now + i * 61).decision.granted
    with h.store.transaction() as tx:
        alarm = sentinel.trip(tx, h.audit, "C-112", "HH-1", why, depot.now + 300, h.config.sentinel,
                              vault=h.vault)
    return alarm.incident_id


@pytest.fixture
def sms() -> Iterator[SmsSink]:
    sink = SmsSink()
    yield sink
    sink.close()


def _notifiers(depot: Any, sms: SmsSink, smtp: SmtpSink | None = None) -> dict[str, Any]:
    cfg = depot.home.config.notify
    cfg.sms_url, cfg.retry_seconds, cfg.attempts = sms.url, 0.0, 2
    out: dict[str, Any] = {"sms": SmsNotifier(cfg)}
    if smtp is not None:
        cfg.smtp_host, cfg.smtp_port, cfg.smtp_starttls = smtp.host, smtp.port, "off"
        out["email"] = SmtpNotifier(cfg)
    return out


def _notify(depot: Any, incident_id: str, notifiers: dict[str, Any]) -> notify.NotifyResult:
    h = depot.home
    return notify.notify(h.store, h.keys.kek, h.audit, h.config, h.zone, incident_id, ACTOR, notifiers,
                         sleep=lambda _s: None)


def test_an_incident_groups_parcels_per_person_and_seals_their_contacts(depot: Any) -> None:
    incident_id = _trip(depot)
    h = depot.home
    people = incidents.people(h.store, incident_id)
    assert sorted(p.parcels for p in people) == [1, 1, 2]  # route[0] and route[3] are the same person
    assert {p.channel for p in people} == {"sms", "email"}
    sealed = b"".join(bytes(r[0]) for r in h.store.all("SELECT sealed FROM incident_people"))
    assert leaks(sealed) == []
    shown = incidents.describe(h.store, incident_id, h.zone)
    assert shown["opened"].startswith("20") and "T" in shown["opened"]
    assert all(p["fields"] == ["receiver_name", "receiver_phone",
                               "receiver_address"] for p in shown["parcels"])
    assert all(p["devices"] == ["HH-1"] for p in shown["parcels"])
    assert leaks(json.dumps(shown, ensure_ascii=False).encode()) == []


def test_shredding_after_the_incident_opened_does_not_prevent_the_notice(depot: Any, sms: SmsSink) -> None:
    incident_id = _trip(depot)
    h = depot.home
    with h.store.transaction() as tx:
        for t in depot.route:
            h.vault.shred(tx, t, depot.now + 10)
    incidents.assign(h.store, h.audit, incident_id, ACTOR, "Officer Testa", depot.now)
    result = _notify(depot, incident_id, _notifiers(depot, sms))  # no e-mail channel: SMS for everyone
    assert result.sent == 3 and result.failed == 0 and result.state == "notified"
    assert len({m["to"] for m in sms.received}) == 3 == len(sms.received)


def test_a_failed_notice_is_reported_and_a_rerun_sends_only_what_is_missing(depot: Any) -> None:
    incident_id = _trip(depot)
    h = depot.home
    incidents.assign(h.store, h.audit, incident_id, ACTOR, "Officer Testa", depot.now)
    failing = SmsSink(fail_first=4)  # two people x two attempts: both SMS fail
    smtp = SmtpSink()
    try:
        first = _notify(depot, incident_id, _notifiers(depot, failing, smtp))
        assert (first.sent, first.failed) == (1, 2) and first.state == "assigned"
        assert all("http 503 after 2 tries" in p for p in first.problems)
        assert leaks("\n".join(first.problems).encode()) == []
        second = _notify(depot, incident_id, _notifiers(depot, failing, smtp))
        third = _notify(depot, incident_id, _notifiers(depot, failing, smtp))
    finally:
        failing.close()
        smtp.close()
    assert (second.sent, second.already, second.failed, second.state) == (2, 1, 0, "notified")
    assert (third.sent, third.already) == (0, 3)
    assert len(failing.received) == 2 and len(smtp.messages) == 1  # nobody was sent a notice twice


def test_the_life_cycle_goes_in_order_and_says_what_is_missing(depot: Any, tmp_path: Any,
                                                               sms: SmsSink) -> None:
    incident_id = _trip(depot)
    h = depot.home
    with pytest.raises(incidents.IncidentError, match="first assign it, notify"):
        incidents.close(h.store, h.audit, h.vault.provider, incident_id, ACTOR, "done", depot.now)
    with pytest.raises(incidents.IncidentError, match="notify the people first"):
        incident_report.write(h.store, h.audit, h.config, h.zone, incident_id, ACTOR, tmp_path, depot.now)
    with pytest.raises(incidents.IncidentError, match="1-2000 printable"):
        incidents.note(h.store, h.audit, incident_id, ACTOR, "\x1b[2J", depot.now)
    with pytest.raises(incidents.IncidentError, match="no incident INC-NOPE"):
        incidents.assign(h.store, h.audit, "INC-NOPE", ACTOR, "x", depot.now)
    incidents.note(h.store, h.audit, incident_id, ACTOR, "looked at the handheld", depot.now)
    incidents.assign(h.store, h.audit, incident_id, ACTOR, "Officer Testa", depot.now)
    _notify(depot, incident_id, _notifiers(depot, sms))
    incident_report.write(h.store, h.audit, h.config, h.zone, incident_id, ACTOR, tmp_path, depot.now)
    # What a backup (or a dead row on PostgreSQL) keeps of the incident's key and contacts:
    kept_key = h.store.one("SELECT kek_id, wrapped FROM incident_keys WHERE incident_id = ?", incident_id)
    assert kept_key is not None and str(kept_key[0]).startswith(OWN_PREFIX)
    assert incidents.open_contact(h.store, h.vault.provider, incident_id, "P-001")["parcels"]
    gone = incidents.close(h.store, h.audit, h.vault.provider, incident_id, ACTOR, "done", depot.now)
    assert gone == 3
    with pytest.raises(KeyUnavailable):  # the key went with the incident, in the provider too
        h.vault.provider.unwrap(str(kept_key[0]), bytes(kept_key[1]), incidents._aad(incident_id))
    with pytest.raises(incidents.IncidentError, match="closed"):
        _notify(depot, incident_id, _notifiers(depot, sms))
    steps = [r[0] for r in h.store.all("SELECT step FROM incident_steps ORDER BY seq")]
    assert steps == ["open", "note", "assigned", "notified", "reported", "closed"]
    audited = [r[0] for r in h.store.all("SELECT action FROM audit WHERE action LIKE 'incident-%'"
                                         " ORDER BY seq")]
    assert audited.count("incident-notice") == 3 and "incident-closed" in audited
    notes = [r[0] for r in h.store.all("SELECT detail FROM audit WHERE action = 'incident-note'")]
    assert notes and all("looked at" not in n for n in notes)  # the note's digest, not its words


def test_the_report_escapes_what_it_shows(depot: Any, tmp_path: Any, sms: SmsSink) -> None:
    incident_id = _trip(depot, why="<script>alert(1)</script> & more")
    h = depot.home
    incidents.assign(h.store, h.audit, incident_id, ACTOR, "Officer Testa", depot.now)
    _notify(depot, incident_id, _notifiers(depot, sms))
    as_json, as_html = incident_report.write(h.store, h.audit, h.config, h.zone, incident_id, ACTOR, tmp_path,
                                             depot.now)
    page = as_html.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    report = json.loads(as_json.read_text(encoding="utf-8"))
    assert (report["people"], report["records"]) == (3, 4)
    assert sorted(report["categories"]) == ["name", "phone number", "postal address"]
    assert [s["step"] for s in report["timeline"]] == ["open", "assigned", "notified", "reported"]
    assert leaks(as_json.read_bytes() + page.encode()) == []


def test_a_revoked_handheld_opens_an_incident_of_what_it_received(depot: Any) -> None:
    h = depot.home
    for t in depot.route[:2]:
        depot.scan(t)
        depot.reveal(t, (2,))
    report = provision.revoke(h, None, "HH-1", "lost on the tram", now=depot.now + 60, lost=True,
                              actor="it:test")
    shown = incidents.describe(h.store, report.incident, h.zone)
    assert shown["kind"] == "device-lost" and shown["devices"] == ["HH-1"]
    assert sorted(p["tracking_no"] for p in shown["parcels"]) == sorted(depot.route[:2])
    assert shown["people"]["total"] == 2
    assert registry.device_state(h.store, "HH-1") == "revoked"


def test_a_lookback_of_one_hour_leaves_out_older_releases(depot: Any) -> None:
    h = depot.home
    depot.scan(depot.route[0])
    depot.reveal(depot.route[0], (2,))
    h.config.sentinel.lookback_hours = 1
    report = provision.revoke(h, None, "HH-1", "lost", now=depot.now + 7200, actor="it:test")
    assert incidents.describe(h.store, report.incident, h.zone)["parcels"] == []


def test_templates_exist_in_three_languages_and_name_only_known_placeholders() -> None:
    for lang in ("zh-Hans", "zh-Hant", "en"):
        t = load_templates(lang)
        contact = {"name": "測試", "parcels": ["VP1"], "fields": [2]}
        subject, sms_text, email = notify.render(t, contact, "INC-1", "2030-01-02 08:00", "DPO")
        assert "INC-1" in subject and "VP1" in sms_text and "DPO" in email
    with pytest.raises(Exception, match="no notice language"):
        load_templates("fr")


def test_a_closed_case_of_retention_still_leaves_the_incident(depot: Any) -> None:
    """Retention's shred runs on the parcels; the incident's sealed copy is its own."""
    incident_id = _trip(depot)
    h = depot.home
    h.store.run("UPDATE parcels SET state = 'delivered', delivered_at = ?", depot.now - 40 * 86400)
    shredded = retention.run_retention(h.store, h.vault, h.audit, h.config, depot.now)
    assert set(depot.route[:4]) <= set(shredded)
    people = incidents.people(h.store, incident_id)
    contact = incidents.open_contact(h.store, h.keys.kek, incident_id, people[0].person)
    assert contact["parcels"] and contact["phone"].startswith("170")


def test_the_cli_refuses_with_one_line_and_the_documented_exit_code(depot: Any) -> None:
    from click.testing import CliRunner

    from gateway import operators
    from tools.cli import main

    incident_id = _trip(depot)
    h = depot.home
    registry.add_officer(h.store, "Officer Testa", "135790")
    operators.add(h.store, "Agent Z", "agent")
    folder = str(h.config.home)

    def cli(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--home", folder, *args])
        assert isinstance(result.exception, (SystemExit, type(None))), result.exception
        return result.exit_code, result.output

    code, out = cli("incidents", "assign", incident_id, "--to", "Officer Testa", "--as", "Agent Z")
    assert code == 1 and "not on the list as security officer" in out and len(out.strip().splitlines()) == 1
    code, out = cli("incidents", "assign", incident_id, "--to", "Agent Z", "--as", "Officer Testa")
    assert code == 1 and "Agent Z" in out
    code, out = cli("incidents", "assign", "INC-NOPE", "--to", "Officer Testa", "--as", "Officer Testa")
    assert code == 1 and "no incident INC-NOPE" in out
    assert cli("incidents", "assign", incident_id, "--to", "Officer Testa", "--as", "Officer Testa")[0] == 0
    code, out = cli("incidents", "notify", incident_id, "--as", "Officer Testa")
    assert code == 3 and "no notifier configured" in out  # [notify] has neither smtp_host nor sms_url
    code, out = cli("incidents", "show", incident_id, "--json")
    shown = json.loads(out)
    assert shown["assignee"] == "Officer Testa" and shown["people"]["total"] == 3
    assert leaks(out.encode()) == []


class _BrokenProvider:
    """A key provider that can unwrap (the vault reads) but not wrap: an HSM session gone mid-trip."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def current_id(self) -> str:
        return str(self.real.current_id())

    def wrap(self, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        raise KeyUnavailable("token not logged in")

    def own_wrap(self, name: str, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        raise KeyUnavailable("token not logged in")

    def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes) -> bytes:
        return bytes(self.real.unwrap(kek_id, wrapped, aad))


def test_a_provider_failure_still_suspends_and_notify_seals_the_people_later(depot: Any,
                                                                             sms: SmsSink) -> None:
    from gateway.vault import Vault

    h = depot.home
    for i, t in enumerate(depot.route[:2]):
        depot.scan(t, at=depot.now + i * 61)
        assert depot.reveal(t, (2,), now=depot.now + i * 61).decision.granted
    with h.store.transaction() as tx:
        alarm = sentinel.trip(tx, h.audit, "C-112", "HH-1", "test", depot.now + 300, h.config.sentinel,
                              vault=Vault(_BrokenProvider(h.keys.kek)))  # type: ignore[arg-type]
    assert registry.courier_state(h.store, "C-112") == "suspended"
    assert incidents.people(h.store, alarm.incident_id) == []
    incidents.assign(h.store, h.audit, alarm.incident_id, ACTOR, "Officer Testa", depot.now)
    result = _notify(depot, alarm.incident_id, _notifiers(depot, sms))
    assert (result.people, result.sent) == (2, 2)


def test_a_notifier_secret_readable_by_others_is_refused(depot: Any) -> None:
    from gateway.notifiers import notifiers_from
    from protocol.errors import ConfigurationError

    cfg = depot.home.config
    secret = cfg.home / "sms.secret"
    secret.write_text("token-1\n", encoding="utf-8")
    secret.chmod(0o644)
    cfg.notify.sms_url, cfg.notify.sms_token_file = "http://127.0.0.1:9/sms", "sms.secret"
    with pytest.raises(ConfigurationError, match="readable by others: chmod 600"):
        notifiers_from(cfg)
    secret.chmod(0o600)
    assert notifiers_from(cfg)["sms"].token == "token-1"  # type: ignore[attr-defined]
    cfg.notify.sms_token_file = "missing.secret"
    with pytest.raises(ConfigurationError, match="cannot be read"):
        notifiers_from(cfg)


def test_a_refused_sms_token_fails_at_once_and_the_right_one_sends(depot: Any) -> None:
    incident_id = _trip(depot)
    h = depot.home
    incidents.assign(h.store, h.audit, incident_id, ACTOR, "Officer Testa", depot.now)
    sink = SmsSink(token="sms-token-1")
    try:
        wrong = _notifiers(depot, sink)
        wrong["sms"].token = "wrong"
        first = _notify(depot, incident_id, wrong)
        assert first.failed == 3 and sink.posts == 3  # a 401 is not retried
        assert all("http 401 after 1 tries" in p for p in first.problems)
        right = _notifiers(depot, sink)
        right["sms"].token = "sms-token-1"
        second = _notify(depot, incident_id, right)
    finally:
        sink.close()
    assert second.sent == 3 and len(sink.received) == 3


def test_a_report_that_cannot_be_written_leaves_the_incident_notified(depot: Any, tmp_path: Any,
                                                                        sms: SmsSink) -> None:
    from protocol.errors import ConfigurationError

    incident_id = _trip(depot)
    h = depot.home
    incidents.assign(h.store, h.audit, incident_id, ACTOR, "Officer Testa", depot.now)
    _notify(depot, incident_id, _notifiers(depot, sms))
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="cannot write the report to"):
        incident_report.write(h.store, h.audit, h.config, h.zone, incident_id, ACTOR, blocked / "x",
                              depot.now)
    assert incidents.stage(h.store, incident_id) == "notified"
