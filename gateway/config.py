"""The gateway's configuration: one TOML file under VEILPOST_HOME, every key
documented in DEFAULT_TOML, secure by default, nothing required for a demo.

`load()` refuses a bad file with one line naming the key: unknown tables and
keys, wrong types (read from the dataclass annotations, so a new key is
checked without more code), values out of range (RANGES, and non-negative
numbers by default), and formats (time zone, shift, URL, ids). `validate()`
runs the same checks on a Config built in code. gateway/config_check.py
goes further (broker, database, key provider) for `veilpost config check`.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gateway.config_rules import check_value, show
from gateway.permissions import write_private
from protocol.errors import ConfigurationError

CONFIG_NAME = "veilpost.toml"
EMBEDDED_PORT = 18830  # the embedded broker's default port (1883 is often a system Mosquitto)

DEFAULT_TOML = """\
# veilpost gateway configuration. Every key is optional; the value shown is
# the default. Paths are relative to this file's folder (VEILPOST_HOME).

# Name of this gateway, used in its status topic vp/v1/gw/{gateway_id}/status.
gateway_id = "gw-1"

# IANA time zone that delivery windows without an offset and courier shifts
# are read in.
timezone = "Asia/Shanghai"

# SQLite database file (WAL mode).
database = "veilpost.db"

# Shared store for several gateways, e.g. "postgresql://veilpost@db/veilpost";
# empty: the SQLite file above.
store = ""

# How hard a commit waits for the disk: "full" survives power loss,
# "normal" survives a crash of the gateway process but not of the machine.
durability = "full"

# Folder holding the key-encryption keys, the gateway's Ed25519 signing key
# and its HMAC keys. Created by `veilpost init` with mode 0700, files 0600.
keys_dir = "keys"

[mqtt]
# "embedded" starts an in-process broker on 127.0.0.1:embedded_port; anything
# else is a host name of an external broker (Mosquitto, EMQX, ...).
broker = "embedded"
# Port of an external broker.
port = 1883
# Port the embedded broker listens on, on 127.0.0.1 (fixed, so handhelds and
# `veilpost device ...` find it after a restart; 0 picks a free one each start).
embedded_port = 18830
# Credentials the gateway uses on an external broker (empty: none).
username = ""
# The password here makes this file a secret: it must then be mode 0600. Or
# name a file (mode 0600) that holds it, relative to this folder; the
# environment variable VEILPOST_MQTT_PASSWORD overrides both.
password = ""
password_file = ""
# MQTT protocol: "auto" tries 5 then 3.1.1; or "5", or "3.1.1".
version = "auto"
# Seconds the broker keeps this gateway's session (its subscription and the
# QoS 1 requests queued for it) while the gateway is away (MQTT 5).
session_expiry = 3600
# Client id; a stable id keeps the persistent session across restarts.
client_id = "veilpost-gateway-1"
# Subscribe through a shared subscription so several gateways share the load.
shared = true
# Largest payload accepted from a device, in bytes; larger is dropped.
max_payload = 4096
# Where handhelds connect, as `veilpost device provision` writes it into their
# bundles: the host name or address of the broker's listener for handhelds
# (empty: the broker above; for the embedded broker 127.0.0.1, which only a
# handheld simulator on this machine can reach).
device_host = ""
# Its port; 0: 8883 with TLS, else the gateway's own (port, or embedded_port).
device_port = 0
# TLS for handhelds: "auto" when broker/ca.crt is in this folder (make-depot.sh
# --veilpost-home puts it there), "on" (then it must be), or "off".
device_tls = "auto"

[reveal]
# Minutes since this device scanned the parcel's label (a checked label proof)
# for an online reveal to count as "parcel in hand".
scan_fresh_minutes = 10
# Lifetime of a reveal token in seconds.
token_seconds = 60
# Reason codes a courier may give for a reveal (ids of protocol/messages.py
# REASONS: 1 recipient-not-reachable, 2 address-unclear, 3 call-before-delivery,
# 4 access-code, 5 recipient-requested-call, 6 label-damaged).
reason_codes = [1, 2, 3, 4, 5, 6]
# Shift used for couriers registered without one, local time "HH:MM-HH:MM".
default_shift = "07:00-21:00"
# Ignore the delivery window (for a demo run at night); never in production.
ignore_window = false
# Parcels per courier and shift that may be revealed with reason 6
# (label-damaged) without a label proof; each use is flagged for the officer.
damaged_per_shift = 2
# Distinct parcels per courier and shift that may get pre-issued offline tokens.
offline_per_shift = 30
# Minutes before its delivery window opens that a parcel may get an offline token.
preissue_lead_minutes = 60

[sentinel]
# New releases (grants of fields the courier did not hold yet this shift) per
# courier, and per device, per minute. Grants of what the courier already
# holds do not count.
per_minute = 6
# Distinct parcels with new releases per courier per minute; more looks like scraping.
distinct_per_minute = 3
# (parcel, field) releases per courier per shift, every path (online, offline,
# damaged label, complaint case).
per_shift = 400
# Distinct parcels released per courier per shift, relative to the route:
# route size * this + 5.
route_share = 0.6
# Suspicious requests (label not proven, not on route, off shift) tolerated in
# ten minutes before suspension.
strikes = 3
# Consecutive tracking numbers requested in a row that count as a sweep.
sequential_run = 3
# Parcels revealed per shift may exceed reveal_ratio * parcels delivered by
# at most ratio_slack; more is a sign (reveals without deliveries).
reveal_ratio = 0.5
ratio_slack = 10
# Parcels released to a courier whose delivery window ended without a delivery.
undelivered_limit = 8
# Depot-wide: distinct parcels released in the last depot_window_minutes across
# every courier and device, against depot_factor times the depot's own
# baseline (the same window's mean over the preceding depot_baseline_hours,
# and at this time of day over the past week), never below depot_floor nor
# depot_per_courier for each courier logged in at the depot (a busy morning
# with no history yet is not an attack).
depot_window_minutes = 10
depot_factor = 3.0
depot_floor = 6
depot_per_courier = 1.5
depot_baseline_hours = 3
# Wrong PINs per badge (twice as many per device) within lockout_minutes
# before a lockout; each lockout raises an alarm, and lockouts_to_suspend
# lockouts in a day suspend the badge (a security officer lifts it).
pin_failures = 5
lockout_minutes = 15
lockouts_to_suspend = 3
# Hours of history an incident lists (whose data the accounts received; a
# revoked or lost handheld's incident looks back as far).
lookback_hours = 24
# Optional webhook (http or https URL) that receives each alarm as JSON.
webhook_url = ""

[retention]
# Days after delivery when a parcel's data key is destroyed.
days_after_delivery = 30
# Minutes a complaint case keeps a sealed parcel open once approved.
case_open_minutes = 30

[metrics]
# Prometheus metrics endpoint on 127.0.0.1; 0 disables it.
port = 0

[keys]
# Where the gateway's keys live (docs/keys.md). "local": files in keys_dir,
# the embedded default, NOT for production (a copy of this disk opens every
# record). "pkcs11": a PKCS#11 token (an HSM; SoftHSM2 for tests) holds them
# as non-extractable objects, and wraps, signs and MACs inside it.
provider = "local"
# The PKCS#11 module (shared library) of the token, e.g.
# "/usr/lib/softhsm/libsofthsm2.so".
module = ""
# Label of the token the keys are in.
token_label = ""
# The token's user PIN: a file (mode 0600, relative to this folder) whose
# first line it is, or the name of an environment variable that holds it.
# Never the PIN itself in this file.
pin_file = ""
pin_env = ""

[notify]
# Notices to the people whose data an incident exposed (docs/incidents.md).
# SMTP server for e-mail notices; empty: no e-mail (people are sent an SMS).
smtp_host = ""
smtp_port = 25
# STARTTLS before sending: "auto" (when the server offers it), "on" or "off".
smtp_starttls = "auto"
smtp_username = ""
# File in the home folder holding the SMTP password (first line, mode 600).
smtp_password_file = ""
# From address of e-mail notices.
sender = "privacy@example.invalid"
# HTTP SMS gateway: POST JSON {"to", "text", "id"} to this URL; empty: no SMS.
sms_url = ""
# File in the home folder holding the SMS gateway's bearer token (first line).
sms_token_file = ""
# Language of notices: zh-Hans, zh-Hant or en; depot_languages overrides it
# per depot, as "DEPOT=LANG" (e.g. ["D-9=zh-Hant"]).
language = "zh-Hans"
depot_languages = []
# Tries per notice before it is reported as failed, and seconds between tries.
attempts = 3
retry_seconds = 1.0
# Seconds to wait for the SMTP server or the SMS gateway.
timeout = 10.0
# The data protection contact named in notices and in the authorities' report.
contact = "Data protection officer, privacy@example.invalid"

[audit]
# Seconds between signed checkpoints of the audit log's head, published on the
# retained topic vp/v1/audit/checkpoint and POSTed to each witness below (one
# is also made when the gateway stops). docs/audit.md.
checkpoint_interval = 30
# Witnesses that receive each checkpoint as an HTTP POST, e.g.
# ["http://witness.example.com:8470/checkpoint"] (`veilpost audit witness --listen`).
witness_urls = []
"""


@dataclass
class MqttConfig:
    broker: str = "embedded"
    port: int = 1883
    embedded_port: int = 18830
    version: str = "auto"
    session_expiry: int = 3600
    username: str = ""
    password: str = ""
    password_file: str = ""
    client_id: str = "veilpost-gateway-1"
    shared: bool = True
    max_payload: int = 4096
    device_host: str = ""
    device_port: int = 0
    device_tls: str = "auto"


@dataclass
class RevealConfig:
    scan_fresh_minutes: int = 10
    token_seconds: int = 60
    reason_codes: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    default_shift: str = "07:00-21:00"
    ignore_window: bool = False
    damaged_per_shift: int = 2
    offline_per_shift: int = 30
    preissue_lead_minutes: int = 60


@dataclass
class SentinelConfig:
    per_minute: int = 6
    distinct_per_minute: int = 3
    per_shift: int = 400
    route_share: float = 0.6
    strikes: int = 3
    sequential_run: int = 3
    reveal_ratio: float = 0.5
    ratio_slack: int = 10
    undelivered_limit: int = 8
    depot_window_minutes: int = 10
    depot_factor: float = 3.0
    depot_floor: int = 6
    depot_per_courier: float = 1.5
    depot_baseline_hours: int = 3
    pin_failures: int = 5
    lockout_minutes: int = 15
    lockouts_to_suspend: int = 3
    lookback_hours: int = 24
    webhook_url: str = ""


@dataclass
class RetentionConfig:
    days_after_delivery: int = 30
    case_open_minutes: int = 30


@dataclass
class MetricsConfig:
    port: int = 0


@dataclass
class KeysConfig:
    provider: str = "local"
    module: str = ""
    token_label: str = ""
    pin_file: str = ""
    pin_env: str = ""


@dataclass
class NotifyConfig:
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: str = "auto"
    smtp_username: str = ""
    smtp_password_file: str = ""
    sender: str = "privacy@example.invalid"
    sms_url: str = ""
    sms_token_file: str = ""
    language: str = "zh-Hans"
    depot_languages: list[str] = field(default_factory=list)
    attempts: int = 3
    retry_seconds: float = 1.0
    timeout: float = 10.0
    contact: str = "Data protection officer, privacy@example.invalid"


@dataclass
class AuditConfig:
    checkpoint_interval: int = 30
    witness_urls: list[str] = field(default_factory=list)


@dataclass
class Config:
    home: Path
    gateway_id: str = "gw-1"
    timezone: str = "Asia/Shanghai"
    database: str = "veilpost.db"
    store: str = ""
    durability: str = "full"
    keys_dir: str = "keys"
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    reveal: RevealConfig = field(default_factory=RevealConfig)
    sentinel: SentinelConfig = field(default_factory=SentinelConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)

    @property
    def database_path(self) -> Path:
        return self.home / self.database

    @property
    def keys_path(self) -> Path:
        return self.home / self.keys_dir


_SECTIONS: dict[str, type] = {
    "mqtt": MqttConfig,
    "reveal": RevealConfig,
    "sentinel": SentinelConfig,
    "retention": RetentionConfig,
    "metrics": MetricsConfig,
    "keys": KeysConfig,
    "notify": NotifyConfig,
    "audit": AuditConfig,
}
PASSWORD_ENV = "VEILPOST_MQTT_PASSWORD"

class ConfigError(ConfigurationError):
    """What is wrong with the configuration, one line per problem."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = " (did you mean %s?)" % close[0] if close else ""
    return "unknown %s %s%s" % (kind, name, hint)


def validate(cfg: Config) -> list[str]:
    """Every problem with the values of `cfg`, one line each (empty: fine)."""
    problems: list[str] = []
    top = _hints(Config)
    for f in fields(Config):
        if f.name == "home":
            continue
        value = getattr(cfg, f.name)
        if f.name in _SECTIONS:
            hints = _hints(_SECTIONS[f.name])
            for sf in fields(_SECTIONS[f.name]):
                problem = check_value(f.name + "." + sf.name, hints[sf.name], getattr(value, sf.name))
                if problem:
                    problems.append(problem)
        else:
            problem = check_value(f.name, top[f.name], value)
            if problem:
                problems.append(problem)
    return problems + _keys_problems(cfg.keys)


def _keys_problems(k: KeysConfig) -> list[str]:
    """A PKCS#11 provider needs its module, its token and one source of its PIN."""
    if k.provider != "pkcs11":
        return []
    problems = ["[keys] %s: needed with provider = \"pkcs11\"" % name
                for name in ("module", "token_label") if not getattr(k, name)]
    if bool(k.pin_file) == bool(k.pin_env):
        problems.append("[keys] pin_file or pin_env: give the token's PIN from exactly one of them"
                        " (never the PIN in this file)")
    return problems


def password_source(cfg: Config) -> str:
    """Where the broker password comes from, for `veilpost config check`."""
    if os.environ.get(PASSWORD_ENV):
        return "environment " + PASSWORD_ENV
    if cfg.mqtt.password_file:
        return "file " + str(cfg.home / cfg.mqtt.password_file)
    return CONFIG_NAME if cfg.mqtt.password else "none"


def _readable_by_others(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def _resolve_password(cfg: Config, path: Path) -> None:
    """Take the broker password from the environment or the password file."""
    m = cfg.mqtt
    if m.password and m.password_file:
        raise ConfigError("give the broker password once: [mqtt] password or [mqtt] password_file, not both")
    if m.password and path.exists() and _readable_by_others(path):
        raise ConfigError("%s holds the broker password and is readable by others: chmod 600 %s (or move"
                          " the password to [mqtt] password_file or %s)" % (path.name, path, PASSWORD_ENV))
    env = os.environ.get(PASSWORD_ENV)
    if env:
        m.password = env
        return
    if not m.password_file:
        return
    secret = cfg.home / m.password_file
    where = "[mqtt] password_file = \"%s\": %s" % (m.password_file, secret)
    try:
        if _readable_by_others(secret):
            raise ConfigError("%s is readable by others: chmod 600 it" % where)
        text = secret.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where + ": no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("%s: cannot be read (%s)" % (where, e)) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ConfigError(where + " is empty")
    m.password = lines[0].strip()


def parse(data: dict[str, Any], home: Path) -> Config:
    """A Config from parsed TOML, or ConfigError listing every problem."""
    problems: list[str] = []
    top = [f.name for f in fields(Config) if f.name != "home" and f.name not in _SECTIONS]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                problems.append("%s = %s: must be a table [%s]" % (key, show(value), key))
                continue
            cls = _SECTIONS[key]
            known = [f.name for f in fields(cls)]
            tables = ["[%s]" % t for t in _SECTIONS]
            good = {}
            for sub, sub_value in value.items():
                if sub in known:
                    good[sub] = sub_value
                elif isinstance(sub_value, dict):
                    problems.append(_unknown("table", "[%s.%s]" % (key, sub), tables))
                else:
                    keys = ["[%s] %s" % (key, k) for k in known]
                    problems.append(_unknown("key", "[%s] %s" % (key, sub), keys))
            kwargs[key] = cls(**good)
        elif key in top:
            kwargs[key] = value
        elif isinstance(value, dict):
            problems.append(_unknown("table", "[%s]" % key, ["[%s]" % t for t in _SECTIONS]))
        else:
            problems.append(_unknown("key", key, top))
    cfg = Config(home=Path(home), **kwargs)
    problems += validate(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def load(home: Path) -> Config:
    """The config in `home`, or the defaults when there is no file yet."""
    path = Path(home) / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("%s is not valid TOML: %s" % (path.name, e)) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("%s cannot be read: %s" % (path, e)) from None
    try:
        cfg = parse(data, Path(home))
    except ConfigError as e:
        raise ConfigError(["%s: %s" % (CONFIG_NAME, p) for p in e.problems]) from None
    _resolve_password(cfg, path)
    return cfg


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError("cannot write %r to TOML" % (value,))


def set_values(home: Path, values: dict[str, Any]) -> Config:
    """Change keys ("mqtt.port", "gateway_id") in the home's veilpost.toml,
    keeping its comments and layout; refuses (ConfigError) a result that would
    not load. Returns the new config."""
    path = Path(home) / CONFIG_NAME
    lines = (path.read_text(encoding="utf-8") if path.exists() else DEFAULT_TOML).splitlines()
    for name, value in values.items():
        table, _, key = name.rpartition(".")
        header = "[%s]" % table if table else None
        start = 0 if header is None else next(
            (i + 1 for i, line in enumerate(lines) if line.strip() == header), -1)
        if start < 0:
            lines += ["", header or "", "%s = %s" % (key, _toml_value(value))]
            continue
        end = next((i for i in range(start, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        pattern = re.compile(r"\s*%s\s*=" % re.escape(key))
        found = next((i for i in range(start, end) if pattern.match(lines[i])), None)
        entry = "%s = %s" % (key, _toml_value(value))
        if found is not None:
            lines[found] = entry
        else:
            lines.insert(end, entry)
    text = "\n".join(lines) + "\n"
    try:
        parse(tomllib.loads(text), Path(home))
    except (ConfigError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("%s not changed: %s" % (CONFIG_NAME, e)) from None
    write_private(path, text)
    return load(Path(home))


def write_default(home: Path) -> Path:
    """Write the documented default config unless one exists."""
    path = Path(home) / CONFIG_NAME
    if not path.exists():
        write_private(path, DEFAULT_TOML)  # it may come to hold the broker password
    return path
