"""Keys the gateway holds: key-encryption keys behind a KeyProvider, per-period
keys that wrap parcels' data keys (destroyed by retention: crypto-shredding
that no copy of the database undoes), and the gateway's own Ed25519 signing
key and HMAC keys.

Two keyrings answer the same calls (`Keyring`): `GatewayKeys` here keeps the
keys in files, created 0600 in a 0700 folder and never printed (the embedded
default, not for production); gateway/keys_pkcs11.py keeps them in a PKCS#11
token as non-extractable objects. docs/keys.md says which to use when."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.errors import ConfigurationError


class KeyUnavailable(ConfigurationError):
    """A key is missing or does not open what it should."""


class KeyProvider(Protocol):
    """Wraps small secrets (data keys, device master secrets) under a
    key-encryption key. A KMS or HSM implements the same three calls; the
    key never has to leave it."""

    def current_id(self) -> str: ...

    def wrap(self, secret: bytes, aad: bytes) -> tuple[str, bytes]: ...

    def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes) -> bytes: ...


class PeriodKeys(Protocol):
    """Per-period keys (one per UTC day) that parcels' data keys are wrapped
    under. `unwrap` opens them too, by the id `period_wrap` returned; once
    retention has `destroy`ed a period's key, nothing wrapped under it opens
    again, whatever copy of the database survives."""

    def period_wrap(self, day: int, secret: bytes, aad: bytes) -> tuple[str, bytes]: ...

    def period_ids(self) -> list[str]: ...

    def own_wrap(self, name: str, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        """Wrap `secret` under a fresh key made for it alone (an incident's
        data key): destroying that key shreds the secret in every copy."""
        ...

    def destroy(self, key_id: str) -> None: ...


class KekProvider(KeyProvider, PeriodKeys, Protocol):
    """What the vault, the registry and `veilpost keys rotate` use."""

    def exists(self) -> bool: ...

    def create(self) -> str: ...

    def ids(self) -> list[str]: ...

    def retire(self, kek_id: str) -> None: ...


class Keyring(Protocol):
    """The gateway's keys as its callers see them; never the key bytes."""

    @property
    def kek(self) -> KekProvider: ...

    label_kid: bytes

    def create(self) -> None: ...

    def exists(self) -> bool: ...

    def sign(self, message: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...

    def person_mac(self, data: bytes) -> bytes: ...

    def label_mac(self, kid: bytes, data: bytes) -> bytes | None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


PERIOD_PREFIX = "p-"
OWN_PREFIX = "o-"  # a key made for one secret (own_wrap), destroyed with it
DAY = 86400


def day_of(t: float) -> int:
    """The UTC day number of an epoch time: the period a parcel's data key is wrapped under."""
    return int(t // DAY)


def period_name(day: int) -> str:
    """"p-20261202" for the day's number: the stem of its period key ids."""
    return PERIOD_PREFIX + time.strftime("%Y%m%d", time.gmtime(day * DAY))


def period_day(key_id: str) -> int | None:
    """The day a period key id stands for, or None for a key-encryption key id."""
    if not key_id.startswith(PERIOD_PREFIX) or len(key_id) < 10:
        return None
    try:
        return calendar.timegm(time.strptime(key_id[2:10], "%Y%m%d")) // DAY
    except ValueError:
        return None


def own_key_id(name: str) -> str:
    """A fresh id for a key of its own: the name (an incident id) and a random tail."""
    safe = "".join(c for c in name if c.isalnum() or c in "-_")[:40]
    return OWN_PREFIX + safe + "-" + secrets.token_hex(4)


def write_secret(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only; refuses to overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalKeyFile:
    """KEKs as 32-byte files `kek/<id>.key` plus a `kek/current` pointer.
    Rotation adds a key and moves the pointer; old keys stay readable until
    every wrapped secret has been re-wrapped and the key is retired."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = Path(keys_dir) / "kek"
        self.periods = self.dir / "periods"
        self._keys: dict[str, AESGCM] = {}
        self._days: dict[int, str] = {}  # day -> its period key's id
        self._lock = threading.Lock()

    def create(self) -> str:
        kek_id = "kek-" + secrets.token_hex(4)
        write_secret(self.dir / (kek_id + ".key"), secrets.token_bytes(32))
        tmp = self.dir / "current.tmp"
        tmp.write_text(kek_id)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.dir / "current")
        return kek_id

    def exists(self) -> bool:
        return (self.dir / "current").exists()

    def current_id(self) -> str:
        try:
            return (self.dir / "current").read_text().strip()
        except FileNotFoundError:
            raise KeyUnavailable("no key-encryption key: run `veilpost init`") from None

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.key"))

    def retire(self, kek_id: str) -> None:
        if kek_id == self.current_id():
            raise KeyUnavailable("cannot retire the current key-encryption key " + kek_id)
        self._erase(self.dir / (kek_id + ".key"), kek_id)

    def _erase(self, path: Path, key_id: str) -> None:
        # Overwritten in place first: on a file system that keeps the blocks,
        # a copy of the disk then finds zeros, not the key.
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
        with self._lock:
            self._keys.pop(key_id, None)

    # Period keys: kek/periods/p-YYYYMMDD-XXXXXXXX.key, one living key per day.

    def period_ids(self) -> list[str]:
        return sorted(p.stem for p in self.periods.glob(PERIOD_PREFIX + "*.key"))

    def _period_id(self, day: int) -> str:
        known = self._days.get(day)
        if known is not None and (self.periods / (known + ".key")).exists():  # not destroyed since
            return known
        name = period_name(day)
        with self._lock:  # two threads wrapping for a new day make one key
            found = sorted(p.stem for p in self.periods.glob(name + "-*.key"))
            if found:
                key_id = found[0]
            else:
                key_id = name + "-" + secrets.token_hex(4)
                write_secret(self.periods / (key_id + ".key"), secrets.token_bytes(32))
            self._days[day] = key_id
            return key_id

    def period_wrap(self, day: int, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        key_id = self._period_id(day)
        nonce = secrets.token_bytes(12)
        return key_id, nonce + self._aead(key_id).encrypt(nonce, secret, aad)

    def own_wrap(self, name: str, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        key_id = own_key_id(name)
        write_secret(self.periods / (key_id + ".key"), secrets.token_bytes(32))
        nonce = secrets.token_bytes(12)
        return key_id, nonce + self._aead(key_id).encrypt(nonce, secret, aad)

    def destroy(self, key_id: str) -> None:
        if period_day(key_id) is None and not key_id.startswith(OWN_PREFIX):
            raise KeyUnavailable("%s is not a period key" % key_id)
        path = self.periods / (key_id + ".key")
        if path.exists():
            self._erase(path, key_id)

    def _aead(self, kek_id: str) -> AESGCM:
        with self._lock:
            aead = self._keys.get(kek_id)
            if aead is None:
                folder = self.periods if kek_id.startswith((PERIOD_PREFIX, OWN_PREFIX)) else self.dir
                try:
                    raw = (folder / (kek_id + ".key")).read_bytes()
                except (FileNotFoundError, NotADirectoryError):
                    raise KeyUnavailable("key " + kek_id + " is missing (destroyed or never made)") from None
                aead = AESGCM(raw)
                self._keys[kek_id] = aead
            return aead

    def wrap(self, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        kek_id = self.current_id()
        nonce = secrets.token_bytes(12)
        return kek_id, nonce + self._aead(kek_id).encrypt(nonce, secret, aad)

    def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes) -> bytes:
        try:
            return self._aead(kek_id).decrypt(wrapped[:12], wrapped[12:], aad)
        except Exception as e:
            if isinstance(e, KeyUnavailable):
                raise
            raise KeyUnavailable("wrapped key does not open under " + kek_id) from None


class GatewayKeys:
    """The gateway's own identity: Ed25519 for audit checkpoints, an HMAC key
    for people's identifiers in the audit log, an HMAC key for label QR codes."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = Path(keys_dir)
        self.kek = LocalKeyFile(self.dir)
        self._signing: Ed25519PrivateKey | None = None
        self._secrets: dict[str, bytes] = {}  # HMAC keys, read once

    def exists(self) -> bool:
        return self.kek.exists()

    def describe(self) -> str:
        return "local key file %s" % self.dir

    def close(self) -> None:
        pass

    def create(self) -> None:
        """Create whatever is missing (idempotent)."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        if not self.kek.exists():
            self.kek.create()
        for name in ("signing.ed25519", "audit.hmac", "label.hmac"):
            if not (self.dir / name).exists():
                write_secret(self.dir / name, secrets.token_bytes(32))

    def _read(self, name: str) -> bytes:
        try:
            return (self.dir / name).read_bytes()
        except FileNotFoundError:
            raise KeyUnavailable("missing key file " + name + ": run `veilpost init`") from None

    def _secret(self, name: str) -> bytes:
        key = self._secrets.get(name)
        if key is None:
            key = self._secrets[name] = self._read(name)
        return key

    # The audit log signs checkpoints and pseudonymises people through these
    # three calls, never through the keys themselves, so a provider that keeps
    # the keys in a token (PKCS#11) answers the same calls.

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of `message` under the gateway's audit signing key."""
        return self._signer().sign(message)

    def public_key(self) -> Ed25519PublicKey:
        """The audit signing key's public half (what verifiers and witnesses hold)."""
        return self._signer().public_key()

    def person_mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of a person's identifier under the people-HMAC key."""
        return hmac.new(self._secret("audit.hmac"), data, hashlib.sha256).digest()

    def _signer(self) -> Ed25519PrivateKey:
        if self._signing is None:
            self._signing = Ed25519PrivateKey.from_private_bytes(self._read("signing.ed25519"))
        return self._signing

    @property
    def label_key(self) -> bytes:
        return self._secret("label.hmac")

    # The label key signs the per-label possession proof (gateway/labels.py).
    # Callers go through `label_mac`, never the key, so a key provider that
    # keeps the key in a token can answer the same call.
    label_kid = b"L1"

    def label_mac(self, kid: bytes, data: bytes) -> bytes | None:
        """HMAC-SHA256 of `data` under the label key named `kid`; None for an unknown kid."""
        if kid != self.label_kid:
            return None
        return hmac.new(self.label_key, data, hashlib.sha256).digest()
