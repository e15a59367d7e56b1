"""Keys the gateway holds: key-encryption keys behind a KeyProvider, and the
gateway's own Ed25519 signing key and HMAC keys. Files are created 0600 in a
0700 folder and never printed."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
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
        self._keys: dict[str, AESGCM] = {}
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
        path = self.dir / (kek_id + ".key")
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
        with self._lock:
            self._keys.pop(kek_id, None)

    def _aead(self, kek_id: str) -> AESGCM:
        with self._lock:
            aead = self._keys.get(kek_id)
            if aead is None:
                try:
                    raw = (self.dir / (kek_id + ".key")).read_bytes()
                except FileNotFoundError:
                    raise KeyUnavailable("key-encryption key " + kek_id + " is missing") from None
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
        self._person_key: bytes | None = None

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
        if self._person_key is None:
            self._person_key = self._read("audit.hmac")
        return hmac.new(self._person_key, data, hashlib.sha256).digest()

    def _signer(self) -> Ed25519PrivateKey:
        if self._signing is None:
            self._signing = Ed25519PrivateKey.from_private_bytes(self._read("signing.ed25519"))
        return self._signing

    @property
    def label_key(self) -> bytes:
        return self._read("label.hmac")

    # The label key signs the per-label possession proof (gateway/labels.py).
    # Callers go through `label_mac`, never the key, so a key provider that
    # keeps the key in a token can answer the same call.
    label_kid = b"L1"

    def label_mac(self, kid: bytes, data: bytes) -> bytes | None:
        """HMAC-SHA256 of `data` under the label key named `kid`; None for an unknown kid."""
        if kid != self.label_kid:
            return None
        return hmac.new(self.label_key, data, hashlib.sha256).digest()
