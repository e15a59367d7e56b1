"""What a configuration value must be, beyond its type: bounds of numbers,
choices of strings, and formats (time zone, shift, ids, URLs), keyed by
"table.key". gateway/config.py reads the type from the dataclass annotation
and calls `check_value`; a key not listed here is still type-checked, and a
number not listed must be zero or more, so a new key needs no code here
unless it has a tighter rule."""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Bounds of numeric keys, inclusive (None: no bound). A number not listed
# here must be zero or more.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "mqtt.port": (1, 65535),
    "mqtt.embedded_port": (0, 65535),
    "mqtt.session_expiry": (0, 2**32 - 1),
    "mqtt.max_payload": (256, 1 << 20),
    "mqtt.device_port": (0, 65535),
    "metrics.port": (0, 65535),
    "reveal.scan_fresh_minutes": (1, 24 * 60),
    "reveal.token_seconds": (5, 3600),
    "sentinel.per_minute": (1, None),
    "sentinel.distinct_per_minute": (1, None),
    "sentinel.per_shift": (1, None),
    "sentinel.lookback_hours": (1, 24 * 90),
    "sentinel.depot_window_minutes": (1, 24 * 60),
    "sentinel.depot_factor": (1.0, None),
    "sentinel.depot_baseline_hours": (1, 24 * 7),
    "sentinel.pin_failures": (1, None),
    "sentinel.lockout_minutes": (1, 24 * 60),
    "sentinel.lockouts_to_suspend": (1, None),
    "retention.days_after_delivery": (1, 3650),
    "retention.case_open_minutes": (1, 24 * 60),
    "notify.smtp_port": (1, 65535),
    "notify.attempts": (1, 20),
    "notify.retry_seconds": (0.0, 600.0),
    "notify.timeout": (0.5, 120.0),
    "audit.checkpoint_interval": (1, 3600),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "durability": ("full", "normal"),
    "mqtt.version": ("auto", "5", "3.1.1"),
    "mqtt.device_tls": ("auto", "on", "off"),
    "keys.provider": ("local", "pkcs11"),
    "notify.smtp_starttls": ("auto", "on", "off"),
    "notify.language": ("zh-Hans", "zh-Hant", "en"),
}
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")  # safe in an MQTT topic and a client id
_SHIFT = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]\Z")


def _zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not an IANA time zone (e.g. \"Asia/Shanghai\", \"UTC\")"
    return None


def _reasons(value: list[int]) -> str | None:
    from protocol.messages import REASONS

    unknown = [c for c in value if c not in REASONS]
    if unknown or not value:
        return "must be a non-empty list of reason codes %s" % sorted(REASONS)
    return None


_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\Z")


def _depot_languages(value: list[str]) -> str | None:
    for item in value:
        depot, _, lang = item.partition("=")
        if not depot.strip() or lang.strip() not in ("zh-Hans", "zh-Hant", "en"):
            return 'each entry must be "DEPOT=LANG" with LANG zh-Hans, zh-Hant or en, not "%s"' % item[:40]
    return None


def _host(value: str) -> str | None:
    """Empty, a host name, or an IP address; never with a port."""
    if not value:
        return None
    if ":" in value:
        try:
            ipaddress.IPv6Address(value)
            return None
        except ValueError:
            return "must be a host name or address without a port (the port is device_port)"
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
        return "must be empty, a host name or an IP address"
    return None


def _store(value: str) -> str | None:
    if value and not value.startswith(("postgresql://", "postgres://")):
        return 'must be empty (SQLite) or a "postgresql://..." URL'
    return None


# Formats beyond the type, by key: a message when the value is wrong.
FORMATS: dict[str, Callable[[Any], str | None]] = {
    "timezone": _zone,
    "gateway_id": lambda v: None if _ID.match(v) else "must be 1-64 of A-Z a-z 0-9 _ . -",
    "mqtt.client_id": lambda v: None if _ID.match(v) else "must be 1-64 of A-Z a-z 0-9 _ . -",
    "mqtt.broker": lambda v: None if v.strip() and " " not in v else '"embedded" or a host name',
    "mqtt.device_host": _host,
    "database": lambda v: None if v.strip() else "must name a file",
    "keys_dir": lambda v: None if v.strip() else "must name a folder",
    "store": _store,
    "reveal.default_shift": lambda v: None if _SHIFT.match(v) else 'must be "HH:MM-HH:MM"',
    "reveal.reason_codes": _reasons,
    "keys.pin_env": lambda v: None if not v or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", v)
    else "must be the name of an environment variable",
    "audit.witness_urls": lambda v: None if all(u.startswith(("http://", "https://")) for u in v)
    else "must be a list of http(s) URLs",
    "sentinel.webhook_url": lambda v: None if not v or v.startswith(("http://", "https://"))
    else "must be empty or an http(s) URL",
    "notify.sms_url": lambda v: None if not v or v.startswith(("http://", "https://"))
    else "must be empty or an http(s) URL",
    "notify.smtp_host": _host,
    "notify.sender": lambda v: None if _EMAIL.match(v) else "must be an e-mail address",
    "notify.depot_languages": lambda v: _depot_languages(v),
}


def _kind(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if typing.get_origin(hint) is list:
        return "a list of " + _kind(typing.get_args(hint)[0]).replace("an ", "").replace("a ", "") + "s"
    return names.get(hint, str(hint))


def _fits(hint: Any, value: Any) -> bool:
    """Whether a TOML value has the type a dataclass field is annotated with."""
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(item, v) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else '"%s"' % value
    return text if len(text) <= 40 else text[:37] + "..."


def _where(name: str) -> str:
    table, _, key = name.rpartition(".")
    return "[%s] %s" % (table, key) if table else key


def check_value(name: str, hint: Any, value: Any) -> str | None:
    where = "%s = %s" % (_where(name), show(value))
    if not _fits(hint, value):
        return "%s: must be %s" % (where, _kind(hint))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = RANGES.get(name, (0, None))
        if (low is not None and value < low) or (high is not None and value > high):
            span = ("%s to %s" % (low, high) if high is not None else "%s or more" % low)
            return "%s: must be %s" % (where, span)
    if name in CHOICES and value not in CHOICES[name]:
        return "%s: must be one of %s" % (where, ", ".join('"%s"' % c for c in CHOICES[name]))
    check = FORMATS.get(name)
    problem = check(value) if check is not None else None
    return "%s: %s" % (where, problem) if problem else None


