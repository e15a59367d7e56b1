"""Enrolling handhelds and cutting them off: the operations behind
`veilpost device ...` (tools/cli/device.py holds the commands).

Each operation touches three places in a fixed order and writes the audit
entry first: the gateway registry (gateway/registry.py), the broker's
credentials (a BrokerAdmin: Mosquitto's dynsec or the embedded broker's
accounts file) and, for revocation, a retained wipe command sealed with the
device's own Channel so that only that handheld can open it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway import config as config_mod
from gateway import incidents, registry
from gateway.aead import CryptographyAEAD
from gateway.broker_access import BrokerAdmin, BrokerAdminError, new_password
from gateway.broker_accounts import ACCOUNTS_FILE, AccountsFileAdmin, endpoint_alive, read_endpoint
from gateway.bundles import shred, shred_bundle  # noqa: F401  (callers use provision.shred*)
from gateway.deploy.depot import read_admin_secret
from gateway.home import Home
from gateway.permissions import private_dir, write_private
from protocol import messages, topics
from protocol.errors import ConfigurationError, ProtocolError, VeilpostError
from protocol.session import GATEWAY, MAX_SEQ, Channel

BROKER_DIR = "broker"  # under the home: admin.secret and ca.crt (make-depot.sh), operator.secret
OPERATOR = "vp-operator"
ACK_WAIT = 0.25  # seconds a connected handheld gets to acknowledge its wipe before the kick
TLS_PORT = 8883


class ProvisionError(VeilpostError):
    """An operation on a handheld could not be done; the message says what
    to fix (the CLI exits 1: refused or not done)."""


@dataclass
class BrokerLink:
    """How this home reaches its broker: the admin for credentials, where the
    operator posts commands (host, port; TLS with `ca_file` on 8883), and
    what handhelds are told to connect to (device_host, device_port, TLS
    with `device_ca`), which comes from the config, never from a running
    broker's port."""

    admin: BrokerAdmin
    host: str
    port: int
    ca_file: Path | None = None  # the depot CA, for the operator's TLS on 8883
    device_host: str = ""
    device_port: int = 0
    operator_file: Path | None = None
    device_ca: Path | None = None  # the depot CA that bundles carry (None: handhelds use plain MQTT)

    def close(self) -> None:
        self.admin.close()


def open_broker(home: Home, admin_secret: Path | None = None, device_broker: str | None = None) -> BrokerLink:
    """The broker named in the home's config: the embedded one through its
    accounts file (which the broker reads when it starts: the gateway need
    not run), or an external Mosquitto through dynamic security."""
    cfg = home.config
    folder = private_dir(cfg.home / BROKER_DIR)
    ca = folder / "ca.crt"
    ca_file = ca if ca.exists() else None
    m = cfg.mqtt
    if m.broker == "embedded":
        endpoint = read_endpoint(cfg.home) if endpoint_alive(cfg.home) else None
        port = endpoint[1] if endpoint else m.embedded_port
        stable = m.embedded_port or port
        if not stable:
            raise ConfigurationError("[mqtt] embedded_port = 0 gives the embedded broker a new port at each"
                                     " start, which no bundle can name: set [mqtt] embedded_port (the"
                                     " default is %d)" % config_mod.EMBEDDED_PORT)
        link = BrokerLink(AccountsFileAdmin(cfg.home / ACCOUNTS_FILE), "127.0.0.1", port or stable, None)
        if m.device_tls == "on":
            raise ConfigurationError('[mqtt] device_tls = "on", but the embedded broker has no TLS listener:'
                                     ' use Mosquitto (gateway/deploy/make-depot.sh) or set it to "off"')
        device_ca, own_port = None, stable
    else:
        from gateway.dynsec import DynsecAdmin

        secret_file = admin_secret or folder / "admin.secret"
        if not secret_file.exists():
            raise ConfigurationError(f"no broker admin credentials at {secret_file}: copy admin.secret "
                                     "from make-depot.sh there, or pass --admin-secret")
        user, password = read_admin_secret(secret_file)
        tls_ca = str(ca_file) if ca_file is not None and m.port == TLS_PORT else None
        # An unreachable broker is a BrokerAdminError (the CLI exits 4).
        admin = DynsecAdmin(m.broker, m.port, user, password, ca_file=tls_ca)
        link = BrokerLink(admin, m.broker, m.port, ca_file)
        if m.device_tls == "on" and ca_file is None:
            link.close()
            raise ConfigurationError(f'[mqtt] device_tls = "on", but there is no depot CA at {ca}: copy the'
                                     " ca.crt of make-depot.sh there (--veilpost-home does)")
        device_ca = None if m.device_tls == "off" else ca_file
        own_port = m.port
    link.operator_file = folder / "operator.secret"
    link.device_ca = device_ca
    if device_broker:
        host, _, port_text = device_broker.rpartition(":")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            link.close()
            raise ConfigurationError(f"--device-broker {device_broker!r} is not HOST:PORT")
        link.device_host, link.device_port = host, int(port_text)
    else:
        link.device_host = m.device_host or link.host
        link.device_port = m.device_port or (TLS_PORT if device_ca is not None else own_port)
    return link


# --- provisioning ---------------------------------------------------------------------


def provision(home: Home, link: BrokerLink, device_id: str, out_dir: Path, model: str = "handheld",
              fw: str = "", lang: str = "zh-Hans", now: float | None = None, *, actor: str) -> Path:
    """Register the handheld, give it broker credentials and write its bundle
    (provision.json with the master secret, and the depot CA) to
    out_dir/DEVICE_ID, owner-only. Returns the bundle folder. A step that
    fails takes back the steps before it. `actor`: the audit pseudonym of
    the person doing it (tools/cli/common.acting)."""
    now = time.time() if now is None else now
    try:
        secret = registry.add_device(home.store, home.keys.kek, device_id, model, fw, now)
    except registry.RegistryError as e:
        raise ProvisionError(f"{device_id}: {e}") from None
    operator_credentials(link)  # ready before this handheld's first revoke
    password = new_password()
    try:
        link.admin.add_device(device_id, password)
    except BrokerAdminError as e:
        # The broker said no: take the registry back to where it was.
        home.store.run("DELETE FROM devices WHERE device_id = ? AND state = 'provisioned'", device_id)
        raise ProvisionError(f"{device_id}: {e}") from None
    with home.store.transaction() as tx:
        home.audit.append(tx, now, actor, device_id, "device-provision", "", "ok", {"model": model, "fw": fw})
    try:
        return _write_bundle(link, out_dir / device_id, device_id, secret, password, lang)
    except OSError as e:
        undo(home, link, device_id, out_dir / device_id, now, "bundle not written", actor=actor)
        raise ProvisionError(f"{device_id}: its bundle cannot be written to {out_dir / device_id}:"
                             f" {e.strerror or e}") from None


def undo(home: Home, link: BrokerLink, device_id: str, bundle: Path, now: float, why: str, *,
         actor: str) -> None:
    """Take a provisioned handheld back: registry row, broker account, bundle (audited)."""
    with contextlib.suppress(BrokerAdminError):
        link.admin.remove(device_id)
    with home.store.transaction() as tx:
        tx.run("DELETE FROM devices WHERE device_id = ? AND state = 'provisioned'", device_id)
        home.audit.append(tx, now, actor, device_id, "device-provision-undone", "", "ok", {"why": why})
    if bundle.is_dir():
        shred_bundle(bundle)


def _write_bundle(link: BrokerLink, bundle: Path, device_id: str, secret: bytes, password: str,
                  lang: str = "zh-Hans") -> Path:
    """provision.json (master secret, broker address and credentials) and the
    depot CA, as `veilpost firmware deploy` copies them to /vp on the
    handheld: files 0600 in folders 0700, whatever the umask."""
    private_dir(bundle.parent)
    private_dir(bundle)
    mqtt_cfg: dict[str, object] = {"host": link.device_host, "port": link.device_port,
                                   "username": device_id, "password": password}
    if link.device_ca is not None:
        write_private(bundle / "ca.crt", link.device_ca.read_bytes())
        mqtt_cfg["tls"] = {"cafile": "/vp/ca.crt"}
    doc = {"device_id": device_id, "master_secret": secret.hex(), "mqtt": mqtt_cfg, "lang": lang}
    write_private(bundle / "provision.json", (json.dumps(doc, indent=1) + "\n").encode())
    return bundle


# --- commands to a handheld -------------------------------------------------------------


def operator_credentials(link: BrokerLink) -> tuple[str, str]:
    """The operator's broker account, created on first use; its password is
    kept in the home (mode 0600) so that a revoke needs no extra round trip."""
    assert link.operator_file is not None
    if link.operator_file.exists():
        return OPERATOR, link.operator_file.read_text(encoding="utf-8").strip()
    password = new_password()
    try:
        link.admin.add_operator(OPERATOR, password)
    except BrokerAdminError:
        link.admin.set_password(OPERATOR, password)  # the account exists, its secret file was lost
    write_private(link.operator_file, password + "\n")
    return OPERATOR, password


class Operator:
    """A short-lived MQTT session that posts a sealed command to one handheld
    and waits for its sealed acknowledgement."""

    def __init__(self, link: BrokerLink, device_id: str, timeout: float = 5.0) -> None:
        self.device_id = device_id
        self.acks: list[bytes] = []
        self._acked = threading.Event()
        self._ready = threading.Event()
        self._puback = threading.Event()
        self._refused: str | None = None
        username, password = operator_credentials(link)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vp-op-" + secrets.token_hex(4),
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.client.username_pw_set(username, password)
        if link.ca_file is not None and link.port == TLS_PORT:
            self.client.tls_set(ca_certs=str(link.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.on_publish = lambda *_a: self._puback.set()
        deadline = time.monotonic() + timeout
        while True:  # the embedded broker takes up a new account within its poll interval
            self._refused = None
            self.client.connect(link.host, link.port, keepalive=30)
            self.client.loop_start()
            if self._ready.wait(max(0.0, deadline - time.monotonic())) and self._refused is None:
                return
            self.client.loop_stop()
            if time.monotonic() >= deadline:
                raise ProvisionError(f"operator could not reach the broker at {link.host}:{link.port}"
                                     + (f" ({self._refused})" if self._refused else ""))
            time.sleep(0.05)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
            self._ready.set()
            return
        client.subscribe(topics.up(self.device_id), qos=0)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        self.acks.append(bytes(message.payload))
        self._acked.set()

    def post(self, payload: bytes, timeout: float = 5.0) -> None:
        self.client.publish(topics.cmd(self.device_id), payload, qos=1, retain=True)
        if not self._puback.wait(timeout):
            raise ProvisionError(f"the broker did not acknowledge the command for {self.device_id}")

    def wait_ack(self, channel: Channel, command_id: int, timeout: float) -> bool:
        """True once the handheld acknowledged command `command_id`."""
        deadline = time.monotonic() + timeout
        while True:
            for payload in self.acks:
                try:
                    name, fields, _seq = channel.unwrap(payload, int(time.time()))
                except ProtocolError:
                    continue
                if name == "command_ack" and fields.get("id") == command_id:
                    return True
            self.acks.clear()
            left = deadline - time.monotonic()
            if left <= 0 or not self._acked.wait(left):
                return False
            self._acked.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wipe_command(secret: bytes, device_id: str, command_id: int, now: float) -> tuple[bytes, Channel]:
    """The sealed wipe, and the channel that opens the handheld's answer. It
    uses the last sequence number the channel has: the running gateway never
    reaches it, so no nonce is used twice, and afterwards the handheld's
    replay window refuses everything older, as a revoked device should."""
    channel = Channel(secret, device_id, GATEWAY, aead=CryptographyAEAD(), send_seq=MAX_SEQ)
    payload = channel.wrap("command", {"id": command_id, "cmd": messages.CMD_WIPE}, int(now))
    return bytes(payload), channel


# --- revoke, suspend, resume ---------------------------------------------------------------


@dataclass
class RevokeReport:
    """What a revocation did and how long each step took (milliseconds from the command)."""

    device_id: str
    denied_ms: float = 0.0  # registry says revoked: the gateway refuses its messages
    wipe_posted_ms: float = 0.0  # retained wipe accepted by the broker
    wipe_acked: bool = False  # the handheld confirmed it (it was online)
    kicked_ms: float = 0.0  # broker credentials disabled, session kicked
    incident: str = ""  # the incident it opened (gateway/incidents.py)
    quarantined: bool = False  # not acknowledged: the account may only fetch the wipe, for now
    problems: list[str] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return max(self.denied_ms, self.wipe_posted_ms, self.kicked_ms)


def revoke(home: Home, link: BrokerLink | None, device_id: str, reason: str, now: float | None = None,
           ack_wait: float = ACK_WAIT, clock: Callable[[], float] = time.monotonic, *,
           actor: str, lost: bool = False) -> RevokeReport:
    """Cut a handheld off: deny-list it, post a retained sealed wipe (which a
    connected handheld receives at once), then disable its broker client,
    which kicks the session; when the wipe was not acknowledged (the handheld
    is offline) the client is quarantined instead, so that whenever it comes
    back it can fetch the wipe and nothing else, until end_quarantines()
    disables it. Each step runs even if an earlier one failed, and the
    deny-list even with no broker at all (`link` None): the report lists what
    did not work."""
    t0 = clock()
    now = time.time() if now is None else now
    report = RevokeReport(device_id)
    state = registry.device_state(home.store, device_id)
    if state is None:
        raise ProvisionError(f"no device {device_id}")
    if not reason.strip():
        raise ProvisionError("a revocation needs a reason")
    secret = registry.device_secret(home.store, home.keys.kek, device_id)
    with home.store.transaction() as tx:
        home.audit.append(tx, now, actor, device_id, "device-revoke", "", "ok", {"reason": reason})
        registry.set_device_state(tx, device_id, "revoked")
        # Whose data the handheld and its accounts received: an incident, people sealed for the notice.
        report.incident, _ = incidents.open_for_device(tx, home.vault, home.audit, home.config.sentinel,
                                                       device_id, reason, now, lost)
        registry.logout(tx, device_id, now)
    report.denied_ms = (clock() - t0) * 1000
    if link is None:
        report.problems.append("broker unreachable: no wipe posted, broker client not disabled")
        return report
    command_id = secrets.randbits(31)
    operator = None
    try:
        operator = Operator(link, device_id)
        assert secret is not None
        payload, channel = wipe_command(secret, device_id, command_id, now)
        operator.post(payload)
        report.wipe_posted_ms = (clock() - t0) * 1000
        report.wipe_acked = operator.wait_ack(channel, command_id, ack_wait)
    except (ProvisionError, BrokerAdminError, OSError) as e:
        report.problems.append(f"wipe command not posted: {e}")
    finally:
        if operator is not None:
            operator.close()
    try:
        if report.wipe_posted_ms and not report.wipe_acked:
            link.admin.quarantine(device_id)
            report.quarantined = True
        else:
            link.admin.disable(device_id)
        report.kicked_ms = (clock() - t0) * 1000
    except BrokerAdminError as e:
        what = 'quarantined' if report.wipe_posted_ms and not report.wipe_acked else 'disabled'
        report.problems.append(f"broker client not {what}: {e}")
    with home.store.transaction() as tx:
        detail = {"kicked_ms": round(report.kicked_ms), "problems": report.problems,
                  "wipe": "acknowledged" if report.wipe_acked else "posted" if report.wipe_posted_ms
                  else "not posted", "quarantined": report.quarantined}
        home.audit.append(tx, time.time(), actor, device_id, "device-revoked", "",
                          "ok" if not report.problems else "partial", detail)
    return report


QUARANTINE_SECONDS = 7 * 86400  # how long a revoked, offline handheld may still fetch its wipe


def end_quarantines(home: Home, link: BrokerLink, now: float | None = None,
                    after: float = QUARANTINE_SECONDS, *, actor: str) -> list[str]:
    """Disable the broker client of every revoked handheld quarantined at
    least `after` seconds ago (its wipe had that long to be fetched); the
    ones disabled, audited."""
    now = time.time() if now is None else now
    done = []
    rows = home.store.all("SELECT device, MAX(at) FROM audit WHERE action = 'device-revoke' GROUP BY device")
    for device_id, revoked_at in rows:
        if registry.device_state(home.store, str(device_id)) != "revoked" or now - float(revoked_at) < after:
            continue
        try:
            if link.admin.is_disabled(str(device_id)):
                continue
            link.admin.disable(str(device_id))
        except BrokerAdminError:
            continue
        with home.store.transaction() as tx:
            home.audit.append(tx, now, actor, str(device_id), "device-quarantine-end", "", "ok",
                              {"after_s": round(now - float(revoked_at))})
        done.append(str(device_id))
    return done


def suspend(home: Home, link: BrokerLink, device_id: str, reason: str, now: float | None = None, *,
            actor: str) -> None:
    """Disable the handheld for now (kicked, refused) without wiping it."""
    now = time.time() if now is None else now
    _need_state(home, device_id, ("provisioned", "active"), "suspend")
    with home.store.transaction() as tx:
        home.audit.append(tx, now, actor, device_id, "device-suspend", "", "ok", {"reason": reason})
        registry.set_device_state(tx, device_id, "suspended")
        registry.logout(tx, device_id, now)
    link.admin.disable(device_id)


def resume(home: Home, link: BrokerLink, device_id: str, now: float | None = None, *, actor: str) -> None:
    now = time.time() if now is None else now
    _need_state(home, device_id, ("suspended",), "resume")
    link.admin.enable(device_id)
    with home.store.transaction() as tx:
        home.audit.append(tx, now, actor, device_id, "device-resume", "", "ok", {})
        registry.set_device_state(tx, device_id, "active")


def _need_state(home: Home, device_id: str, allowed: tuple[str, ...], verb: str) -> None:
    state = registry.device_state(home.store, device_id)
    if state is None:
        raise ProvisionError(f"no device {device_id}")
    if state not in allowed:
        raise ProvisionError(f"cannot {verb} {device_id}: it is {state}")


def rotate_broker_password(home: Home, link: BrokerLink, device_id: str, out_dir: Path,
                           now: float | None = None, *, actor: str) -> Path:
    """A new broker password for a live handheld. Both brokers end the
    session that used the old one at once; the handheld's persistent session
    and every message queued in it stay for its reconnect with the new
    password, which goes out in a fresh bundle at out_dir/DEVICE_ID."""
    now = time.time() if now is None else now
    _need_state(home, device_id, ("provisioned", "active"), "rotate the keys of")
    password = new_password()
    with home.store.transaction() as tx:
        home.audit.append(tx, now, actor, device_id, "device-rotate-broker-password", "", "ok", {})
    link.admin.set_password(device_id, password)
    secret = registry.device_secret(home.store, home.keys.kek, device_id)
    assert secret is not None
    return _write_bundle(link, out_dir / device_id, device_id, secret, password)

