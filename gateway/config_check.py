"""`veilpost config check`: what a configuration will meet when the gateway
starts. The values themselves are checked by gateway/config.py when the file
is loaded; this looks further: private files, the broker (reached and logged
into, or the embedded broker's port free), the database, the key provider.

`check(cfg)` returns findings, each "ok", "warn" or "fail" with one line of
text; the gateway runs `check(cfg, reach=False)` at start (it is about to
reach the broker and the database itself) and refuses on any "fail".
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway import config as config_mod
from gateway.broker_accounts import read_endpoint
from gateway.config import Config
from gateway.keys import GatewayKeys
from gateway.notifiers import notifiers_from
from gateway.permissions import loose_secrets, tighten
from gateway.store import MIGRATIONS
from protocol.errors import VeilpostError

OK, WARN, FAIL = "ok", "warn", "fail"
TIMEOUT = 5.0


@dataclass(frozen=True)
class Finding:
    topic: str  # "config", "files", "broker", "database", "keys"
    level: str  # OK, WARN or FAIL
    text: str

    def __str__(self) -> str:
        return "%-4s %-8s %s" % (self.level, self.topic, self.text)


def check(cfg: Config, reach: bool = True) -> list[Finding]:
    """Every finding for `cfg`; with `reach`, also connect to the broker and database."""
    problems = config_mod.validate(cfg)
    out = [Finding("config", FAIL, p) for p in problems] or [
        Finding("config", OK, "%s: every key valid, time zone %s, broker password from %s"
                % (config_mod.CONFIG_NAME, cfg.timezone, config_mod.password_source(cfg)))]
    out.append(_files(cfg))
    out.append(_keys(cfg))
    out.append(_audit(cfg))
    out.append(_notify(cfg, reach))
    if reach:
        out.append(_broker(cfg))
        out.append(_database(cfg))
    return out


def _audit(cfg: Config) -> Finding:
    """Where the audit log's checkpoints go (docs/audit.md)."""
    a = cfg.audit
    where = ("and POSTed to %d witness URL%s" % (len(a.witness_urls), "s" if len(a.witness_urls) > 1 else "")
             if a.witness_urls else "only (no witness_urls: run `veilpost audit witness` on another host)")
    return Finding("audit", OK, "signed checkpoints every %d s on vp/v1/audit/checkpoint (retained) %s"
                   % (a.checkpoint_interval, where))


def _notify(cfg: Config, reach: bool) -> Finding:
    """Whether incidents can notify people (docs/incidents.md). A notifier
    out of reach is a warning, not a failure: the gateway still decides
    releases without it, and `incidents notify` retries later."""
    n = cfg.notify
    if not n.smtp_host and not n.sms_url:
        return Finding("notify", WARN, "no notifier: incidents cannot notify the people affected; set"
                       " [notify] smtp_host and/or sms_url (docs/incidents.md)")
    try:
        channels = notifiers_from(cfg)
    except VeilpostError as e:
        return Finding("notify", FAIL, str(e))
    targets = []
    if n.smtp_host:
        targets.append(("e-mail", n.smtp_host, n.smtp_port))
    if n.sms_url:
        url = urlsplit(n.sms_url)
        targets.append(("SMS", url.hostname or "", url.port or (443 if url.scheme == "https" else 80)))
    shown = ", ".join("%s via %s:%d" % t for t in targets)
    if reach:
        for what, host, port in targets:
            try:
                socket.create_connection((host, port), timeout=TIMEOUT).close()
            except OSError as e:
                return Finding("notify", WARN, "%s notifier %s:%d not reachable (%s): `incidents notify`"
                               " would fail for now" % (what, host, port, e.strerror or e))
    return Finding("notify", OK, "notices by %s (%d channel%s)" % (shown, len(channels),
                                                                 "s" if len(channels) > 1 else ""))


def failures(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == FAIL]


def secret_files(cfg: Config) -> list[Path]:
    """Secrets of this home (and its folders) that others may read."""
    extra = [cfg.home / cfg.mqtt.password_file] if cfg.mqtt.password_file else []
    if cfg.keys.pin_file:
        extra.append(cfg.home / cfg.keys.pin_file)
    extra += [cfg.home / name for name in (cfg.notify.smtp_password_file, cfg.notify.sms_token_file) if name]
    if config_mod.password_source(cfg) == config_mod.CONFIG_NAME:
        extra.append(cfg.home / config_mod.CONFIG_NAME)
    return loose_secrets(cfg.home, tuple(p for p in extra if p.exists()))


def _shown(cfg: Config, paths: list[Path]) -> str:
    names = ", ".join(str(p.relative_to(cfg.home)) if cfg.home in p.parents else str(p) for p in paths[:3])
    return names + (" and %d more" % (len(paths) - 3) if len(paths) > 3 else "")


def _files(cfg: Config) -> Finding:
    if not cfg.home.exists():
        return Finding("files", FAIL, "%s does not exist: run `veilpost init`" % cfg.home)
    loose = secret_files(cfg)
    if loose:
        return Finding("files", FAIL, "secrets readable by others: %s (`veilpost init` or the gateway's"
                       " start makes them owner-only)" % _shown(cfg, loose))
    return Finding("files", OK, "every secret under %s is owner-only (0600, folders 0700)" % cfg.home)


def tighten_home(cfg: Config) -> tuple[list[Path], list[Path]]:
    """What the gateway does at start: make loose secrets owner-only.
    Returns (tightened, stuck), stuck being what it does not own."""
    loose = secret_files(cfg)
    stuck = tighten(loose)
    return [p for p in loose if p not in stuck], stuck


def _keys(cfg: Config) -> Finding:
    if cfg.keys.provider == "pkcs11":
        return _token(cfg)
    keys = GatewayKeys(cfg.keys_path)
    if not keys.kek.exists():
        return Finding("keys", FAIL, "no key-encryption key in %s: run `veilpost init`" % cfg.keys_path)
    return Finding("keys", WARN, "key provider: local key file %s, NOT for production: a copy of this"
                   " disk opens the vault and reverses the audit log's pseudonyms; keep the keys in an"
                   " HSM ([keys] provider = \"pkcs11\", docs/keys.md)" % keys.kek.dir)


def _token(cfg: Config) -> Finding:
    """Module loads, token found, PIN right, mechanisms there, objects made and non-extractable."""
    from gateway.keys_pkcs11 import TokenError, TokenKeys, required_mechanisms

    k = cfg.keys
    try:
        keys = TokenKeys.open(cfg.home, k.module, k.token_label, k.pin_file, k.pin_env)
    except TokenError as e:
        return Finding("keys", FAIL, "PKCS#11: %s" % e)
    try:
        have = keys.token.mechanisms()
        lacking = ["%s (%s)" % (m.name, why) for m, why in required_mechanisms().items() if m not in have]
        if lacking:
            return Finding("keys", FAIL, "PKCS#11 token \"%s\" lacks %s"
                           % (k.token_label, ", ".join(lacking)))
        missing = keys.missing()
        if missing:
            return Finding("keys", FAIL, "PKCS#11 token \"%s\" has no %s: run `veilpost init`"
                           % (k.token_label, ", ".join(missing)))
        loose = keys.exportable()
        if loose:
            return Finding("keys", FAIL, "PKCS#11 token \"%s\": %s can leave the token (extractable or"
                           " not sensitive): make new keys" % (k.token_label, ", ".join(loose)))
        left = _local_key_files(cfg)
        periods = len(keys.kek.period_ids())
        text = ("key provider: %s; %d key-encryption keys, %d period keys; AES-GCM, EdDSA, SHA256-HMAC"
                " in the token" % (keys.describe(), len(keys.kek.ids()), periods))
        if left:
            return Finding("keys", WARN, text + "; but local key files are still in %s (%s): they open"
                           " what they wrapped; shred them once nothing uses them"
                           % (cfg.keys_path, _shown(cfg, left)))
        return Finding("keys", OK, text)
    finally:
        keys.close()


def _local_key_files(cfg: Config) -> list[Path]:
    folder = cfg.keys_path
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _broker(cfg: Config) -> Finding:
    m = cfg.mqtt
    if m.broker == "embedded":
        return _embedded_port(cfg)
    return _login(cfg)


def _embedded_port(cfg: Config) -> Finding:
    port = cfg.mqtt.embedded_port
    if port == 0:
        return Finding("broker", WARN, "embedded broker on a new free port at each start: handhelds"
                       " cannot find it again after a restart; set [mqtt] embedded_port")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker's listener: TIME_WAIT is free
        try:
            s.bind(("127.0.0.1", port))
            return Finding("broker", OK, "embedded broker: 127.0.0.1:%d is free" % port)
        except OSError:
            pass
    endpoint = read_endpoint(cfg.home)
    if endpoint is not None and endpoint[1] == port:
        return Finding("broker", OK, "embedded broker: a gateway of this home runs it on 127.0.0.1:%d" % port)
    return Finding("broker", FAIL, "embedded broker: 127.0.0.1:%d is in use by another program: stop it or"
                   " set [mqtt] embedded_port" % port)


def _login(cfg: Config) -> Finding:
    """Connect and log in as the gateway, under a client id of its own (so a
    running gateway's session is not taken over)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    m = cfg.mqtt
    where = "%s:%d" % (m.broker, m.port)
    answered = threading.Event()
    result: list[str] = []

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        result.append(str(reason) if getattr(reason, "is_failure", False) else "")
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=m.client_id + "-check",
                         protocol=mqtt.MQTTv311, reconnect_on_failure=False)
    if m.username:
        client.username_pw_set(m.username, m.password or None)
    ca = cfg.home / "broker" / "ca.crt"
    if m.port == 8883 and ca.exists():
        client.tls_set(ca_certs=str(ca))
    client.on_connect = on_connect
    try:
        client.connect(m.broker, m.port, keepalive=10)
    except (OSError, ValueError) as e:
        return Finding("broker", FAIL, "%s not reachable: %s" % (where, e))
    client.loop_start()
    try:
        if not answered.wait(TIMEOUT):
            return Finding("broker", FAIL, "%s: no answer to CONNECT within %g s" % (where, TIMEOUT))
    finally:
        client.disconnect()
        client.loop_stop()
    who = m.username or "(no username)"
    if result and result[0]:
        return Finding("broker", FAIL, "%s refused %s: %s" % (where, who, result[0]))
    return Finding("broker", OK, "%s: logged in as %s" % (where, who))


def _database(cfg: Config) -> Finding:
    latest = len(MIGRATIONS)
    if cfg.store:
        return _postgres(cfg.store, latest)
    path: Path = cfg.database_path
    if not path.exists():
        return Finding("database", OK, "SQLite %s will be created at the first start" % path)
    try:
        conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=TIMEOUT)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as e:
        return Finding("database", FAIL, "SQLite %s cannot be read: %s" % (path, e))
    return _schema("SQLite %s" % path, int(row[0]) if row else 0, latest)


def _postgres(url: str, latest: int) -> Finding:
    import psycopg

    shown = url.split("@")[-1]
    try:
        with psycopg.connect(url, connect_timeout=int(TIMEOUT)) as conn:
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
    except psycopg.Error as e:
        return Finding("database", FAIL, "PostgreSQL %s: %s" % (shown, str(e).strip().splitlines()[0]))
    return _schema("PostgreSQL %s" % shown, int(row[0]) if row else 0, latest)


def _schema(what: str, version: int, latest: int) -> Finding:
    if version > latest:
        return Finding("database", FAIL, "%s has schema %d, newer than this veilpost (%d): upgrade veilpost"
                       % (what, version, latest))
    if version < latest:
        return Finding("database", OK, "%s reachable, schema %d (migrated to %d at the next start)"
                       % (what, version, latest))
    return Finding("database", OK, "%s reachable, schema %d" % (what, version))
