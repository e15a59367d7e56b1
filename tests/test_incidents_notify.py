"""The duty to notify, end to end: a rented account attacks over a real
broker, the sentinel opens an incident, and `veilpost incidents notify`
sends exactly one notice per affected person to a real SMTP server
(aiosmtpd) and an HTTP SMS endpoint that the test starts on 127.0.0.1.
The officer's output, the gateway's logs and the audit log hold no name,
phone, address or e-mail of the fixture; a re-run sends nothing twice."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway import config as config_mod
from gateway import registry
from gateway.vault import RECEIVER_EMAIL, RECEIVER_PHONE
from tests.fixtures.gateway import FAKE_PEOPLE, LiveDepot, leaks
from tools.cli import main
from tools.testbed.depot import FAKE_EMAILS
from tools.testbed.notify import SmsSink, SmtpSink

OFFICER, PIN = "Officer Testa", "135790"


@pytest.fixture
def sinks() -> Iterator[tuple[SmtpSink, SmsSink]]:
    smtp, sms = SmtpSink(), SmsSink(fail_first=1)  # the SMS gateway's first answer is a 503: retried
    yield smtp, sms
    smtp.close()
    sms.close()


def cli(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(folder), *args])
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


def attack(depot: LiveDepot) -> str:
    """A courier account reveals every parcel it holds a label of, as fast
    as it can, until the sentinel stops it; returns the incident."""
    thief = depot.handheld()
    assert thief.login("C-112", "4321")["ok"]
    order = [depot.route[i] for i in (0, 3, 1, 4, 2, 5)]  # two parcels of the same person first
    for t in order:
        thief.scan(t)
    for i, t in enumerate(order, 1):
        thief.reveal(t, [1, 2, 3], req=i)
        if registry.courier_state(depot.home.store, "C-112") == "suspended":
            break
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = depot.home.store.one("SELECT incident_id FROM incidents WHERE kind = 'sentinel'")
        if row:
            return str(row[0])
        time.sleep(0.05)
    raise AssertionError("the attack opened no incident")


def expected_people(depot: LiveDepot, incident_id: str) -> dict[str, list[str]]:
    """Phone -> parcels, from the vault (the test may look; the officer may not)."""
    listed = json.loads(depot.home.store.one("SELECT parcels FROM incidents WHERE incident_id = ?",
                                             incident_id)[0])
    out: dict[str, list[str]] = {}
    for p in listed:
        phone = depot.home.vault.read(depot.home.store, p["tracking_no"], [RECEIVER_PHONE])[RECEIVER_PHONE]
        out.setdefault(phone, []).append(p["tracking_no"])
    return out


def test_notify_sends_one_notice_per_person_and_nobody_sees_their_data(
        live_depot: LiveDepot, sinks: tuple[SmtpSink, SmsSink], caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    depot, home = live_depot, live_depot.home
    smtp, sms = sinks
    folder = home.config.home
    incident_id = attack(depot)
    people = expected_people(depot, incident_id)
    assert len(people) >= 2 and any(len(v) > 1 for v in people.values()), people  # grouping is exercised
    emails = {FAKE_PEOPLE[i][1]: e for i, e in FAKE_EMAILS.items()}
    config_mod.set_values(folder, {"notify.smtp_host": smtp.host, "notify.smtp_port": smtp.port,
                                   "notify.sms_url": sms.url, "notify.retry_seconds": 0.05,
                                   "notify.smtp_starttls": "off"})
    registry.add_officer(home.store, OFFICER, PIN)
    output = ""
    for step, args in enumerate((["incidents", "notify", incident_id, "--as", OFFICER],
                                  # not assigned yet: refused
                 ["incidents", "assign", incident_id, "--to", OFFICER, "--as", OFFICER],
                 ["incidents", "notify", incident_id, "--as", OFFICER],
                 ["incidents", "notify", incident_id, "--as", OFFICER],  # again: nothing sent twice
                 ["incidents", "show", incident_id], ["incidents", "export", incident_id],
                 ["incidents", "list"], ["incidents", "note", incident_id, "called the depot", "--as",
                                         OFFICER],
                 ["incidents", "report", incident_id, "-o", str(folder / "reports"), "--as", OFFICER],
                 ["incidents", "close", incident_id, "--reason", "notified and reported", "--as", OFFICER])):
        code, out = cli(folder, *args)
        output += out
        if step == 0:
            assert code == 1 and "assign incident" in out, out
        else:
            assert code == 0, (args, out)
    by_email = [p for p in people if p in emails]
    by_sms = [p for p in people if p not in emails]
    assert sorted(to for _f, tos in smtp.envelopes for to in tos) == sorted(emails[p] for p in by_email)
    assert sorted(m["to"] for m in sms.received) == sorted(by_sms)
    assert sms.posts == len(by_sms) + 1  # one 503, retried once
    for m in sms.received:  # the notice names the person's own parcels
        assert all(t in m["text"] for t in people[m["to"]])
    assert "sent now" in output and "0 sent now" in output  # the second run sent nothing
    # No plaintext anywhere the officer or an administrator looks.
    report = b"".join(p.read_bytes() for p in (folder / "reports").iterdir())
    audit = "\n".join(repr(r) for r in home.store.all("SELECT * FROM audit")).encode()
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    stored = "\n".join(repr(r) for t in ("incidents", "incident_steps", "incident_people")
                       for r in home.store.all("SELECT * FROM " + t)).encode()
    for what, blob in (("CLI output", output.encode()), ("audit log", audit), ("gateway logs", logs),
                       ("report", report), ("incident tables", stored)):
        assert leaks(blob) == [], "%s shows %s" % (what, leaks(blob))
    # Closing destroyed the incident's key and its sealed contacts.
    assert home.store.one("SELECT COUNT(*) FROM incident_keys")[0] == 0
    assert home.store.one("SELECT COUNT(*) FROM incident_people WHERE sealed IS NOT NULL")[0] == 0
    notices = home.store.all("SELECT outcome FROM audit WHERE action = 'incident-notice'")
    assert sorted(n[0] for n in notices) == ["sent"] * len(people)
    actors = {r[0] for r in home.store.all("SELECT actor FROM audit WHERE action LIKE 'incident-%'")}
    assert OFFICER not in actors and home.audit.person("officer", OFFICER) in actors


def test_the_fixture_email_is_kept_in_the_vault_as_receiver_email(depot: Any) -> None:
    got = depot.home.vault.read(depot.home.store, depot.route[1], [RECEIVER_EMAIL])
    assert got == {RECEIVER_EMAIL: FAKE_EMAILS[1]}
