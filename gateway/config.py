"""The gateway's configuration: one TOML file under VEILPOST_HOME, every key
documented in DEFAULT_TOML, secure by default, nothing required for a demo."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from protocol.errors import ConfigurationError

CONFIG_NAME = "veilpost.toml"

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
# "embedded" starts an in-process broker on a free local port; anything else
# is a host name of an external broker (Mosquitto, EMQX, ...).
broker = "embedded"
# Port of an external broker.
port = 1883
# Port the embedded broker listens on, on 127.0.0.1; 0 picks a free one.
embedded_port = 0
# Credentials the gateway uses on an external broker (empty: none).
username = ""
password = ""
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
# Hours of history an incident lists (whose data the accounts received).
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
"""


@dataclass
class MqttConfig:
    broker: str = "embedded"
    port: int = 1883
    embedded_port: int = 0
    version: str = "auto"
    session_expiry: int = 3600
    username: str = ""
    password: str = ""
    client_id: str = "veilpost-gateway-1"
    shared: bool = True
    max_payload: int = 4096


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
}


class ConfigError(ConfigurationError):
    pass


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError("unknown config key %s.%s" % (where, key))
    return cls(**data)


def load(home: Path) -> Config:
    """The config in `home`, or the defaults when there is no file yet."""
    path = Path(home) / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("%s: %s" % (path.name, e)) from e
    top = {f.name for f in fields(Config)} - {"home"} - set(_SECTIONS)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError("config key %s must be a table" % key)
            kwargs[key] = _section(_SECTIONS[key], value, key)
        elif key in top:
            kwargs[key] = value
        else:
            raise ConfigError("unknown config key " + key)
    cfg = Config(home=Path(home), **kwargs)
    if cfg.durability not in ("full", "normal"):
        raise ConfigError('durability must be "full" or "normal"')
    return cfg


def write_default(home: Path) -> Path:
    """Write the documented default config unless one exists."""
    path = Path(home) / CONFIG_NAME
    if not path.exists():
        path.write_text(DEFAULT_TOML, encoding="utf-8")
    return path
