"""Who may talk to the gateway: handheld devices and their lifecycle, couriers
and their PINs, security officers, and courier sessions on devices. Shared
with device provisioning; every function takes the store it works on."""

from __future__ import annotations

import hmac
import re
import secrets
import time

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gateway.keys import KeyProvider
from gateway.store import Handle, Store
from gateway.vault import device_aad
from protocol.errors import PolicyDenied
from protocol.topics import ID_RULE, valid_id

DEVICE_STATES = ("provisioned", "active", "suspended", "revoked")
COURIER_ID = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
SHIFT = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d\Z")


class RegistryError(PolicyDenied):
    """A registry operation the caller can fix (unknown id, bad PIN format...)."""


class InvalidDeviceId(RegistryError, ValueError):
    """A device id that cannot name a handheld, a topic or a broker account."""


def check_device_id(device_id: str) -> str:
    """`device_id` if protocol.topics.valid_id accepts it (the one rule, shared
    with the handheld), else InvalidDeviceId naming it."""
    if not valid_id(device_id):
        raise InvalidDeviceId("device id %r is not %s" % (device_id, ID_RULE))
    return device_id


def _pin_hash(pin: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(pin.encode())


def add_device(store: Store, provider: KeyProvider, device_id: str, model: str, fw: str = "",
               now: float | None = None) -> bytes:
    """Register a handheld; returns its 32-byte master secret (shown once, for
    provisioning). The gateway keeps it only wrapped by the KEK."""
    check_device_id(device_id)
    secret = secrets.token_bytes(32)
    kek_id, wrapped = provider.wrap(secret, device_aad(device_id))
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM devices WHERE device_id = ?", device_id):
            raise RegistryError("device %s already exists" % device_id)
        tx.run(
            "INSERT INTO devices (device_id, model, fw, state, last_seen, secret_kek, secret_wrapped,"
            " up_window, down_seq, created) VALUES (?, ?, ?, 'provisioned', NULL, ?, ?, '', 0, ?)",
            device_id, model, fw, kek_id, wrapped, time.time() if now is None else now,
        )
        # A handheld provisioned under this id again numbers its offline items afresh.
        tx.run("DELETE FROM meta WHERE key = ?", batch_upto_key(device_id))
    return secret


def batch_upto_key(device_id: str) -> str:
    """The meta row holding the highest offline-batch item id applied for the device."""
    return "batch-upto:" + device_id


def device_secret(store: Store | Handle, provider: KeyProvider, device_id: str) -> bytes | None:
    row = store.one("SELECT secret_kek, secret_wrapped FROM devices WHERE device_id = ?", device_id)
    if row is None:
        return None
    return provider.unwrap(row[0], bytes(row[1]), device_aad(device_id))


def device_state(store: Store | Handle, device_id: str) -> str | None:
    row = store.one("SELECT state FROM devices WHERE device_id = ?", device_id)
    return None if row is None else str(row[0])


def _sentinel_hold(tx: Store | Handle, kind: str, ident: str) -> str | None:
    """The incident whose suspension of this courier or device still holds, if any."""
    row = tx.one("SELECT incident_id FROM incident_holds WHERE kind = ? AND ident = ? AND state = 'held'",
                 kind, ident)
    return None if row is None else str(row[0])


def _set_state(tx: Store | Handle, kind: str, table: str, column: str, ident: str, state: str) -> None:
    # Reactivation is refused while a sentinel incident holds the account or device.
    if state == "active":
        held = _sentinel_hold(tx, kind, ident)
        if held:
            raise RegistryError("%s %s was suspended by the sentinel (incident %s); only a security"
                                " officer can lift that: veilpost suspension lift" % (kind, ident, held))
    if tx.run("UPDATE %s SET state = ? WHERE %s = ?" % (table, column), state, ident) == 0:
        raise RegistryError("no %s %s" % (kind, ident))


def set_device_state(tx: Store | Handle, device_id: str, state: str) -> None:
    if state not in DEVICE_STATES:
        raise RegistryError("device state must be one of " + ", ".join(DEVICE_STATES))
    _set_state(tx, "device", "devices", "device_id", device_id, state)


def add_courier(store: Store, badge: str, pin: str, depot: str, shift: str = "07:00-21:00",
                now: float | None = None) -> None:
    """A courier is known by badge id (the manifest's courier_id)."""
    if not COURIER_ID.match(badge):
        raise RegistryError("badge id must be 1-32 of A-Z a-z 0-9 _ -: %r" % badge)
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise RegistryError("PIN must be 4 to 12 digits")
    if not SHIFT.match(shift):
        raise RegistryError('shift must look like "07:00-21:00": %r' % shift)
    salt = secrets.token_bytes(16)
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM couriers WHERE courier_id = ?", badge):
            raise RegistryError("courier %s already exists" % badge)
        tx.run(
            "INSERT INTO couriers (courier_id, depot, shift, pin_salt, pin_hash, state, created)"
            " VALUES (?, ?, ?, ?, ?, 'active', ?)",
            badge, depot, shift, salt, _pin_hash(pin, salt), time.time() if now is None else now,
        )


def verify_pin(store: Store | Handle, badge: str, pin: str) -> bool:
    row = store.one("SELECT pin_salt, pin_hash FROM couriers WHERE courier_id = ?", badge)
    if row is None:
        _pin_hash(pin, b"\0" * 16)  # same cost whether or not the badge exists
        return False
    return hmac.compare_digest(_pin_hash(pin, bytes(row[0])), bytes(row[1]))


def courier_state(store: Store | Handle, badge: str) -> str | None:
    row = store.one("SELECT state FROM couriers WHERE courier_id = ?", badge)
    return None if row is None else str(row[0])


def set_courier_state(tx: Store | Handle, badge: str, state: str) -> None:
    if state not in ("active", "suspended"):
        raise RegistryError("courier state must be active or suspended")
    _set_state(tx, "courier", "couriers", "courier_id", badge, state)


def add_officer(store: Store, name: str, pin: str, now: float | None = None) -> None:
    """A named security officer: lifts suspensions and approves complaint cases."""
    if not (1 <= len(name) <= 64) or not name.isprintable():
        raise RegistryError("officer name must be 1-64 printable characters")
    if not (pin.isdigit() and 6 <= len(pin) <= 12):
        raise RegistryError("officer PIN must be 6 to 12 digits")
    salt = secrets.token_bytes(16)
    with store.transaction() as tx:
        if tx.one("SELECT 1 FROM officers WHERE name = ?", name):
            raise RegistryError("officer %s already exists" % name)
        tx.run(
            "INSERT INTO officers (name, pin_salt, pin_hash, created) VALUES (?, ?, ?, ?)",
            name, salt, _pin_hash(pin, salt), time.time() if now is None else now,
        )


def verify_officer(store: Store | Handle, name: str, pin: str) -> bool:
    row = store.one("SELECT pin_salt, pin_hash FROM officers WHERE name = ?", name)
    if row is None:
        _pin_hash(pin, b"\0" * 16)
        return False
    return hmac.compare_digest(_pin_hash(pin, bytes(row[0])), bytes(row[1]))


def login(tx: Handle, courier_id: str, device_id: str, now: float) -> str:
    """Open a courier session on a device, closing any earlier one on it."""
    tx.run("UPDATE sessions SET ended = ? WHERE device_id = ? AND ended IS NULL", now, device_id)
    tx.run("UPDATE sessions SET ended = ? WHERE courier_id = ? AND ended IS NULL", now, courier_id)
    session_id = secrets.token_hex(8)
    tx.run(
        "INSERT INTO sessions (session_id, courier_id, device_id, started, ended) VALUES (?, ?, ?, ?, NULL)",
        session_id, courier_id, device_id, now,
    )
    return session_id


def logout(tx: Handle, device_id: str, now: float) -> int:
    return tx.run("UPDATE sessions SET ended = ? WHERE device_id = ? AND ended IS NULL", now, device_id)


def session_on(tx: Store | Handle, device_id: str) -> tuple[str, str] | None:
    """(session_id, courier_id) logged in on the device, if any."""
    row = tx.one(
        "SELECT session_id, courier_id FROM sessions WHERE device_id = ? AND ended IS NULL", device_id
    )
    return None if row is None else (str(row[0]), str(row[1]))


def set_pin(tx: Store | Handle, badge: str, pin: str) -> None:
    """A new PIN for a courier (4 to 12 digits), stored as a salted scrypt hash."""
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise RegistryError("PIN must be 4 to 12 digits")
    salt = secrets.token_bytes(16)
    if tx.run("UPDATE couriers SET pin_salt = ?, pin_hash = ? WHERE courier_id = ?",
              salt, _pin_hash(pin, salt), badge) == 0:
        raise RegistryError("no courier " + badge)


# ---- key rotation (docs/wire.md, "Key rotation")
#
# A rotation row holds the next master secret until the handheld takes it
# ("switched"), then the previous one, accepted on the way up for `grace`
# seconds after the switch. Secrets stay wrapped by the KEK.

ROTATION_GRACE = 3600.0


def _password_aad(device_id: str) -> bytes:
    return device_aad(device_id) + b"/mqtt-password"


def begin_rotation(store: Store, provider: KeyProvider, device_id: str, password: str | None = None,
                   grace: float = ROTATION_GRACE, now: float | None = None) -> int:
    """Start rotating a device's master secret (and, when given, its broker
    password). Returns the id of the config command the gateway will send."""
    if grace < 0:
        raise RegistryError("the grace period cannot be negative")
    now = time.time() if now is None else now
    secret = secrets.token_bytes(32)
    kek_id, wrapped = provider.wrap(secret, device_aad(device_id))
    pw_kek, pw_wrapped = (provider.wrap(password.encode(), _password_aad(device_id)) if password
                          else (None, None))
    command_id = secrets.randbits(31)
    with store.transaction() as tx:
        state = device_state(tx, device_id)
        if state is None:
            raise RegistryError("no device " + device_id)
        if state == "revoked":
            raise RegistryError("device %s is revoked: a revoked handheld gets no new keys" % device_id)
        if state == "suspended":
            raise RegistryError("device %s is suspended: resume it before rotating its keys" % device_id)
        row = tx.one("SELECT started FROM key_rotations WHERE device_id = ? AND switched IS NULL", device_id)
        if row is not None:
            raise RegistryError("a key rotation of %s is already waiting for the handheld (started %s)"
                                % (device_id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row[0]))))
        tx.run("DELETE FROM key_rotations WHERE device_id = ?", device_id)
        tx.run("INSERT INTO key_rotations (device_id, command_id, next_kek, next_wrapped, password_kek,"
               " password_wrapped, prev_kek, prev_wrapped, prev_window, grace, started, sent, switched,"
               " password_set) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, NULL, NULL, NULL)",
               device_id, command_id, kek_id, wrapped, pw_kek, pw_wrapped, grace, now)
    return command_id


class Rotation:
    """One device's rotation row, as the gateway reads it."""

    def __init__(self, row: tuple) -> None:  # type: ignore[type-arg]
        (self.device_id, self.command_id, self.next_kek, self.next_wrapped, self.password_kek,
         self.password_wrapped, self.prev_kek, self.prev_wrapped, self.prev_window, self.grace,
         self.started, self.sent, self.switched, self.password_set) = row

    @property
    def pending(self) -> bool:
        return self.switched is None

    def next_secret(self, provider: KeyProvider) -> bytes:
        return provider.unwrap(self.next_kek, bytes(self.next_wrapped), device_aad(self.device_id))

    def prev_secret(self, provider: KeyProvider) -> bytes:
        return provider.unwrap(self.prev_kek, bytes(self.prev_wrapped), device_aad(self.device_id))

    def password(self, provider: KeyProvider) -> str | None:
        if self.password_wrapped is None:
            return None
        raw = provider.unwrap(self.password_kek, bytes(self.password_wrapped), _password_aad(self.device_id))
        return raw.decode()


_ROTATION_COLUMNS = ("device_id, command_id, next_kek, next_wrapped, password_kek, password_wrapped,"
                     " prev_kek, prev_wrapped, prev_window, grace, started, sent, switched, password_set")


def rotation(tx: Store | Handle, device_id: str) -> Rotation | None:
    row = tx.one("SELECT " + _ROTATION_COLUMNS + " FROM key_rotations WHERE device_id = ?", device_id)
    return None if row is None else Rotation(row)


def rotations_to_send(tx: Store | Handle) -> list[Rotation]:
    """Rotations whose command has not gone out, of devices that may still get one."""
    columns = ", ".join("r." + c.strip() for c in _ROTATION_COLUMNS.split(","))
    return [Rotation(r) for r in tx.all("SELECT " + columns + " FROM key_rotations r JOIN devices d"
                                        " ON d.device_id = r.device_id WHERE r.sent IS NULL"
                                        " AND r.switched IS NULL AND d.state IN ('provisioned', 'active')")]


def complete_rotation(tx: Handle, device_id: str, new_window: str, now: float) -> None:
    """The handheld has the new secret: it becomes the device's secret, with a
    fresh replay window and down sequence (a new key, so no nonce repeats); the
    old one is kept, with its window, for the grace period."""
    row = tx.one("SELECT d.secret_kek, d.secret_wrapped, d.up_window, r.next_kek, r.next_wrapped"
                 " FROM devices d JOIN key_rotations r ON r.device_id = d.device_id"
                 " WHERE d.device_id = ? AND r.switched IS NULL", device_id)
    if row is None:
        raise RegistryError("no key rotation of %s is waiting" % device_id)
    tx.run("UPDATE devices SET secret_kek = ?, secret_wrapped = ?, up_window = ?, down_seq = 0"
           " WHERE device_id = ?", row[3], row[4], new_window, device_id)
    tx.run("UPDATE key_rotations SET prev_kek = ?, prev_wrapped = ?, prev_window = ?, next_kek = NULL,"
           " next_wrapped = NULL, switched = ? WHERE device_id = ?", row[0], row[1], row[2], now, device_id)


def retire_old_secrets(tx: Handle, now: float) -> list[str]:
    """Forget previous secrets whose grace period is over; returns those devices."""
    rows = tx.all("SELECT device_id FROM key_rotations WHERE switched IS NOT NULL"
                  " AND prev_wrapped IS NOT NULL AND switched + grace <= ?", now)
    for (device_id,) in rows:
        tx.run("UPDATE key_rotations SET prev_kek = NULL, prev_wrapped = NULL, prev_window = NULL"
               " WHERE device_id = ?", device_id)
    return [str(r[0]) for r in rows]
