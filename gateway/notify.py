"""`veilpost incidents notify`: one notice per affected person, through the
notifiers (gateway/notifiers.py). Each person's sealed contact
(gateway/incidents.py) is opened in memory only to hand it to the notifier;
what comes back to the officer, the logs and the audit log is the person's
per-incident number (P-001), the channel and the delivery state.

Idempotent per person: a person whose notice was sent is never sent it again;
a failed one is tried again on the next run. A run interrupted between the
send and its record leaves the person "sending"; the next run sends again
with the same idempotency key (SMS Idempotency-Key header, e-mail
Message-ID), so the SMS gateway or the mail system can drop the duplicate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway import incidents
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.keys import KekProvider
from gateway.logs import log_event
from gateway.notifiers import Notice, Notifier, SendFailed, Templates, load_templates
from gateway.store import Store
from gateway.vault import Vault
from protocol.errors import ConfigurationError

DONE = ("sent", "unreachable")


@dataclass
class NotifyResult:
    incident: str
    people: int = 0
    sent: int = 0  # in this run
    already: int = 0  # sent (or unreachable) before this run
    failed: int = 0
    unreachable: int = 0
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "P-002 sms: sms gateway http 503 after 3 tries"
    state: str = ""

    def count(self, channel: str, state: str) -> None:
        seen = self.by_channel.setdefault(channel, {})
        seen[state] = seen.get(state, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"incident": self.incident, "people": self.people, "sent": self.sent, "already": self.already,
                "failed": self.failed, "unreachable": self.unreachable, "by_channel": self.by_channel,
                "problems": self.problems, "state": self.state}


def language(cfg: Config, depot: str) -> str:
    for item in cfg.notify.depot_languages:
        name, _, lang = item.partition("=")
        if name.strip() == depot:
            return lang.strip()
    return cfg.notify.language


def render(t: Templates, contact: dict[str, Any], incident_id: str, opened: str,
           contact_line: str) -> tuple[str, str, str]:
    """(subject, sms text, e-mail text) for one person."""
    joiner = "、" if t.lang.startswith("zh") else ", "
    names = [t.fields.get(n, n) for n in incidents.field_names(contact.get("fields", []))]
    values = {"name": contact.get("name", ""), "incident": incident_id, "opened": opened,
              "parcels": str(len(contact["parcels"])), "tracking_nos": joiner.join(contact["parcels"]),
              "fields": joiner.join(names), "contact": contact_line}
    return t.subject.substitute(values), t.sms.substitute(values), t.email.substitute(values)


def _channel(wanted: str, contact: dict[str, Any], notifiers: dict[str, Notifier]) -> str | None:
    if wanted == "email" and "email" in notifiers:
        return "email"
    if incidents._is_mobile(str(contact.get("phone", ""))) and "sms" in notifiers:
        return "sms"
    return None


def notify(store: Store, provider: KekProvider, audit: AuditLog, cfg: Config, zone: ZoneInfo,
           incident_id: str, actor: str, notifiers: dict[str, Notifier],
           clock: Callable[[], float] = time.time,
           sleep: Callable[[float], None] = time.sleep) -> NotifyResult:
    """Send every notice of the incident not yet sent; the result holds counts only."""
    current = incidents.stage(store, incident_id)
    if current == "open":
        raise incidents.IncidentError("assign incident %s to an officer first (`veilpost incidents assign`)"
                                      % incident_id)
    if current == "closed":
        raise incidents.IncidentError("incident %s is closed: its contacts were destroyed" % incident_id)
    incidents.seal_if_missing(store, Vault(provider), incident_id)
    folks = incidents.people(store, incident_id)
    if not notifiers and any(p.state not in DONE for p in folks):
        raise ConfigurationError("no notifier configured: set [notify] smtp_host and/or sms_url")
    row = store.one("SELECT opened FROM incidents WHERE incident_id = ?", incident_id)
    assert row is not None
    opened = datetime.fromtimestamp(int(row[0]), zone).strftime("%Y-%m-%d %H:%M")
    result = NotifyResult(incident_id)
    templates: dict[str, Templates] = {}
    for person in folks:
        result.people += 1
        if person.state in DONE:
            result.already += 1
            if person.state == "unreachable":
                result.unreachable += 1
            result.count(person.channel, person.state)
            continue
        contact = incidents.open_contact(store, provider, incident_id, person.person)
        channel = _channel(person.channel, contact, notifiers)
        if channel is None:
            problem = "no configured channel reaches this person (%s wanted)" % person.channel
            _record(store, audit, incident_id, person.person, person.channel, "failed", 0, problem, actor,
                    clock())
            result.failed += 1
            result.problems.append("%s: %s" % (person.person, problem))
            result.count(person.channel, "failed")
            continue
        lang = language(cfg, str(contact.get("depot", "")))
        if lang not in templates:
            templates[lang] = load_templates(lang)
        subject, sms, email = render(templates[lang], contact, incident_id, opened, cfg.notify.contact)
        to = contact["email"] if channel == "email" else contact["phone"]
        notice = Notice(to, subject, email if channel == "email" else sms, "%s/%s" % (incident_id,
                                                                                      person.person))
        del contact
        store.run("UPDATE incident_people SET state = 'sending', channel = ?, lang = ? WHERE incident_id = ?"
                  " AND person = ?", channel, lang, incident_id, person.person)
        tries, problem = 0, ""
        while tries < cfg.notify.attempts:
            tries += 1
            try:
                notifiers[channel].send(notice)
                problem = ""
                break
            except SendFailed as e:
                problem = str(e)
                log_event("notice-failed", incident=incident_id, person=person.person, channel=channel,
                          attempt=tries, problem=problem)
                if e.permanent:
                    break
                if tries < cfg.notify.attempts:
                    sleep(cfg.notify.retry_seconds)
        del notice
        state = "failed" if problem else "sent"
        _record(store, audit, incident_id, person.person, channel, state, person.attempts + tries,
                problem and "%s after %d tries" % (problem, tries), actor, clock())
        log_event("notice-" + state, incident=incident_id, person=person.person, channel=channel, tries=tries)
        result.count(channel, state)
        if problem:
            result.failed += 1
            result.problems.append("%s %s: %s after %d tries" % (person.person, channel, problem, tries))
        else:
            result.sent += 1
    if result.failed == 0:
        with store.transaction() as tx:
            incidents.advance(tx, audit, incident_id, "notified", actor, clock(),
                              "%d people: %d sent now, %d before, %d unreachable" % (
                                  result.people, result.sent, result.already - result.unreachable,
                                  result.unreachable))
    result.state = incidents.stage(store, incident_id)
    return result


def _record(store: Store, audit: AuditLog, incident_id: str, person: str, channel: str, state: str,
            attempts: int, problem: str, actor: str, now: float) -> None:
    with store.transaction() as tx:
        tx.run("UPDATE incident_people SET state = ?, attempts = ?, problem = ?, sent_at = ? WHERE"
               " incident_id = ? AND person = ?", state, attempts, problem,
               int(now) if state == "sent" else None, incident_id, person)
        audit.append(tx, now, actor, "", "incident-notice", "", state,
                     "%s; %s via %s%s" % (incident_id, person, channel, "; " + problem if problem else ""))
