"""The channels a notice goes out on: e-mail over SMTP (smtplib) and SMS
through an HTTP SMS gateway (POST JSON), and the notice templates, which
are data (gateway/notices/LANG.toml). A notifier is handed one person's
address and text and nothing else; what it reports back (a `SendFailed`)
never holds the address, so that it can go in the audit log and on screen."""

from __future__ import annotations

import json
import smtplib
import ssl
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from string import Template
from typing import Protocol

from gateway.config import Config, NotifyConfig
from protocol.errors import ConfigurationError, VeilpostError

NOTICES = Path(__file__).resolve().parent / "notices"
LANGUAGES = ("zh-Hans", "zh-Hant", "en")
PLACEHOLDERS = {"name", "incident", "opened", "parcels", "tracking_nos", "fields", "contact"}
SMS_MAX = 500  # characters of one SMS notice (several segments); longer is a template error


class SendFailed(VeilpostError):
    """A notice was not delivered. `permanent`: trying again now will not help."""

    def __init__(self, why: str, permanent: bool = False) -> None:
        super().__init__(why)
        self.permanent = permanent


@dataclass(frozen=True)
class Notice:
    to: str  # the person's e-mail address or phone, in memory only
    subject: str
    text: str
    key: str  # idempotency key: incident/person, the same on every retry


class Notifier(Protocol):
    channel: str

    def send(self, notice: Notice) -> None: ...


# --- templates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    lang: str
    subject: Template
    sms: Template
    email: Template
    fields: dict[str, str]


class TemplateError(ConfigurationError):
    pass


def load_templates(lang: str, folder: Path = NOTICES) -> Templates:
    """The notice texts for `lang`, checked: every part present, only known
    placeholders ($name, $incident, ...)."""
    if lang not in LANGUAGES:
        raise TemplateError("no notice language %r (one of %s)" % (lang, ", ".join(LANGUAGES)))
    path = folder / (lang + ".toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise TemplateError("notice template %s cannot be read: %s" % (path.name, e)) from None
    parts = {}
    for part in ("subject", "sms", "email"):
        text = data.get(part)
        if not isinstance(text, str) or not text.strip():
            raise TemplateError("notice template %s has no %s text" % (path.name, part))
        template = Template(text)
        unknown = set(template.get_identifiers()) - PLACEHOLDERS
        if unknown or not template.is_valid():
            raise TemplateError("notice template %s, %s: unknown placeholder(s) %s (known: %s)" % (
                path.name, part, ", ".join(sorted(unknown)) or "(invalid $)",
                ", ".join(sorted(PLACEHOLDERS))))
        parts[part] = template
    fields = data.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise TemplateError("notice template %s: [fields] maps field names to words" % path.name)
    return Templates(lang, parts["subject"], parts["sms"], parts["email"], dict(fields))


# --- e-mail --------------------------------------------------------------------------------


def _secret_line(cfg: Config, name: str, what: str) -> str:
    if not name:
        return ""
    path = cfg.home / name
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigurationError("[notify] %s = \"%s\" is readable by others: chmod 600 %s"
                                     % (what, name, path))
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError("[notify] %s = \"%s\": cannot be read (%s)" % (what, name, e)) from None
    return lines[0].strip() if lines else ""


class SmtpNotifier:
    """E-mail notices, one SMTP session per notice (a failure never strands the next)."""

    channel = "email"

    def __init__(self, cfg: NotifyConfig, password: str = "") -> None:
        self.host, self.port, self.sender = cfg.smtp_host, cfg.smtp_port, cfg.sender
        self.starttls, self.username, self.password = cfg.smtp_starttls, cfg.smtp_username, password
        self.timeout = cfg.timeout

    def send(self, notice: Notice) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, notice.to, notice.subject
        msg["Date"] = formatdate(localtime=False)
        # The same Message-ID on every retry: a receiving system can drop a duplicate.
        msg["Message-ID"] = "<%s@%s>" % (notice.key.replace("/", "."), self.sender.rpartition("@")[2])
        msg.set_content(notice.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls == "on" or (self.starttls == "auto" and smtp.has_extn("starttls")):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused:
            raise SendFailed("smtp: recipient refused", permanent=True) from None
        except smtplib.SMTPResponseException as e:
            raise SendFailed("smtp %d" % e.smtp_code, permanent=500 <= e.smtp_code < 600) from None
        except (smtplib.SMTPException, OSError) as e:
            raise SendFailed("smtp %s:%d unreachable (%s)" % (self.host, self.port,
                                                              type(e).__name__)) from None


# --- SMS -----------------------------------------------------------------------------------


class SmsNotifier:
    """SMS notices through an HTTP gateway: POST {"to", "text", "id"} as JSON,
    a bearer token if configured, an Idempotency-Key header; any 2xx is sent."""

    channel = "sms"

    def __init__(self, cfg: NotifyConfig, token: str = "") -> None:
        self.url, self.token, self.timeout = cfg.sms_url, token, cfg.timeout

    def send(self, notice: Notice) -> None:
        body = json.dumps({"to": notice.to, "text": notice.text, "id": notice.key},
                          ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": notice.key}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310 - URL from config
                reply.read(4096)
        except urllib.error.HTTPError as e:
            raise SendFailed("sms gateway http %d" % e.code,
                             permanent=400 <= e.code < 500 and e.code not in (408, 429)) from None
        except (TimeoutError, urllib.error.URLError, OSError) as e:
            why = getattr(e, "reason", e)
            raise SendFailed("sms gateway unreachable (%s)" % type(why).__name__) from None


def notifiers_from(cfg: Config) -> dict[str, Notifier]:
    """The channels the config sets up (none: notify refuses, saying what to set)."""
    out: dict[str, Notifier] = {}
    n = cfg.notify
    if n.smtp_host:
        out["email"] = SmtpNotifier(n, _secret_line(cfg, n.smtp_password_file, "smtp_password_file"))
    if n.sms_url:
        out["sms"] = SmsNotifier(n, _secret_line(cfg, n.sms_token_file, "sms_token_file"))
    return out
