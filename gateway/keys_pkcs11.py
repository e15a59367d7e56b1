"""The gateway's keys in a PKCS#11 token (an HSM; SoftHSM2 in tests), as
sensitive, non-extractable token objects. Every operation happens in the
token; the process only ever holds handles:

- key-encryption keys and per-period keys: AES-256, used with CKM_AES_GCM
  (encrypt/decrypt of the small secrets they wrap, with the same AAD and
  layout as the local key file: nonce || ciphertext || tag);
- the audit signing key: an Ed25519 key pair, CKM_EDDSA (pure Ed25519, so
  signatures verify with any Ed25519 library);
- the people-HMAC and label-HMAC keys: 32-byte generic secrets, CKM_SHA256_HMAC.

Objects are found by label ("veilpost:..."). The current key-encryption key
is the newest: its id carries its creation time. docs/keys.md says what an
operator sets up in production."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.keys import OWN_PREFIX, PERIOD_PREFIX, KeyUnavailable, own_key_id, period_day, period_name
from protocol.errors import ConfigurationError

PREFIX = "veilpost:"
SIGNING = PREFIX + "audit-sign"
PEOPLE = PREFIX + "people-hmac"
LABELS = PREFIX + "label-hmac"
ED25519_PARAMS = bytes.fromhex("06032b6570")  # DER of OID 1.3.101.112 (id-Ed25519), RFC 8410


def required_mechanisms() -> dict[Any, str]:
    """Each mechanism the gateway needs of a token, and what for."""
    from pkcs11 import Mechanism

    return {
        Mechanism.AES_KEY_GEN: "making key-encryption and period keys",
        Mechanism.AES_GCM: "wrapping data keys and device secrets",
        Mechanism.EC_EDWARDS_KEY_PAIR_GEN: "making the audit signing key",
        Mechanism.EDDSA: "signing audit checkpoints",
        Mechanism.GENERIC_SECRET_KEY_GEN: "making the HMAC keys",
        Mechanism.SHA256_HMAC: "pseudonyms and label proofs",
    }


class TokenError(ConfigurationError):
    """The PKCS#11 module, token or PIN is not what the configuration says."""


def read_pin(home: Path, pin_file: str, pin_env: str) -> str:
    """The token's user PIN from its file (owner-only) or environment variable."""
    if pin_env:
        pin = os.environ.get(pin_env, "")
        if not pin:
            raise TokenError("[keys] pin_env = \"%s\": that environment variable is not set" % pin_env)
        return pin
    path = Path(home) / pin_file
    where = "[keys] pin_file = \"%s\": %s" % (pin_file, path)
    try:
        if path.stat().st_mode & 0o077:
            raise TokenError("%s is readable by others: chmod 600 it" % where)
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TokenError(where + ": no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TokenError("%s: cannot be read (%s)" % (where, e)) from None
    if not lines or not lines[0].strip():
        raise TokenError(where + " is empty")
    return lines[0].strip()


class _Login:
    """A logged-in session on one token, shared by every Token of this process
    that names it: PKCS#11 logs an application in per token, not per
    session, and closing a logged-in session logs every session out."""

    def __init__(self, lib: Any, token: Any, session: Any, pin: str) -> None:
        self.lib, self.token, self.session = lib, token, session
        self.pin_digest = hashlib.sha256(pin.encode()).digest()
        self.users = 1
        self.lock = threading.RLock()


_logins: dict[tuple[str, str], _Login] = {}
_logins_lock = threading.Lock()


def _log_in(module: str, token_label: str, pin: str) -> _Login:
    import pkcs11
    from pkcs11 import exceptions as e

    if not Path(module).is_file():
        raise TokenError("[keys] module = \"%s\": no such file (install the token's PKCS#11 library)"
                         % module)
    with _logins_lock:
        known = _logins.get((module, token_label))
        if known is not None:
            if not hmac.compare_digest(known.pin_digest, hashlib.sha256(pin.encode()).digest()):
                raise TokenError("the PIN for token \"%s\" is wrong" % token_label)
            known.users += 1
            return known
        try:
            lib = pkcs11.lib(module)
        except e.PKCS11Error as err:
            raise TokenError("[keys] module = \"%s\" does not load: %s"
                             % (module, err or type(err).__name__)) from None
        try:
            token = lib.get_token(token_label=token_label)
            session = token.open(rw=True, user_pin=pin)
        except BaseException as err:
            if not any(_logins_of(module)):
                lib.finalize()
            raise _token_error(err, token_label, module) from None
        login = _Login(lib, token, session, pin)
        _logins[(module, token_label)] = login
        return login


def _logins_of(module: str) -> list[_Login]:
    return [v for (m, _), v in _logins.items() if m == module]


def _token_error(err: BaseException, token_label: str, module: str) -> BaseException:
    from pkcs11 import exceptions as e

    if isinstance(err, e.NoSuchToken):
        return TokenError("no token labelled \"%s\" in %s" % (token_label, module))
    if isinstance(err, e.MultipleTokensReturned):
        return TokenError("several tokens are labelled \"%s\": give each its own label" % token_label)
    if isinstance(err, (e.PinIncorrect, e.PinLenRange)):
        return TokenError("the PIN for token \"%s\" is wrong" % token_label)
    if isinstance(err, e.PinLocked):
        return TokenError("token \"%s\" is locked after wrong PINs: its security officer must reset"
                          " the user PIN" % token_label)
    if isinstance(err, e.PKCS11Error):
        return TokenError("token \"%s\" cannot be opened: %s" % (token_label, type(err).__name__))
    return err


def _log_out(module: str, token_label: str, login: _Login) -> None:
    with _logins_lock:
        if _logins.get((module, token_label)) is not login:
            return  # close_all() ended it already
        login.users -= 1
        if login.users > 0:
            return
        del _logins[(module, token_label)]
        with login.lock:
            try:
                login.session.close()
            except Exception:
                pass
        if not _logins_of(module):  # the next open reads the module's configuration afresh
            try:
                login.lib.finalize()
            except Exception:
                pass


def close_all() -> None:
    """Log out of every token and finalize every module: at the end of a
    process, or between tests that each bring a token of their own (a module
    reads its configuration when it is initialised)."""
    with _logins_lock:
        logins = list(_logins.values())
        _logins.clear()
    for login in logins:
        with login.lock:
            try:
                login.session.close()
            except Exception:
                pass
        try:
            login.lib.finalize()
        except Exception:
            pass


class Token:
    """The gateway's handle on its token. The gateway's threads share one
    session; calls are serialised (PKCS#11 allows one operation at a time
    per session)."""

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        self.module, self.label = module, token_label
        self._login = _log_in(module, token_label, pin)
        self.token, self.session, self.lock = self._login.token, self._login.session, self._login.lock
        self._closed = False

    def mechanisms(self) -> set[Any]:
        return set(self.token.slot.get_mechanisms())

    def find(self, label: str, cls: Any) -> Any | None:
        from pkcs11 import Attribute

        with self.lock:
            found = list(self.session.get_objects({Attribute.LABEL: label, Attribute.CLASS: cls}))
        if len(found) > 1:
            raise KeyUnavailable("token \"%s\" holds %d objects labelled %s"
                                 % (self.label, len(found), label))
        return found[0] if found else None

    def secret_labels(self, prefix: str) -> list[str]:
        from pkcs11 import Attribute, ObjectClass

        with self.lock:
            objects = list(self.session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
            labels = [o.label for o in objects]
        return sorted(label[len(PREFIX):] for label in labels if label.startswith(PREFIX + prefix))

    def new_secret(self, label: str, key_type: Any, bits: int, use: Any) -> Any:
        """A sensitive, non-extractable token object that never leaves the token."""
        from pkcs11 import Attribute

        with self.lock:
            return self.session.generate_key(
                key_type, bits, label=label, id=label.encode(), store=True, capabilities=use,
                template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.TOKEN: True,
                          Attribute.PRIVATE: True, Attribute.MODIFIABLE: False})

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _log_out(self.module, self.label, self._login)


class TokenKek:
    """Key-encryption keys and period keys in the token: the KeyProvider the
    vault and the registry use."""

    def __init__(self, token: Token) -> None:
        self.token = token
        self._handles: dict[str, Any] = {}
        self._days: dict[int, str] = {}  # day -> its period key's id

    # -- key-encryption keys

    def ids(self) -> list[str]:
        return self.token.secret_labels("kek-")

    def exists(self) -> bool:
        return bool(self.ids())

    def current_id(self) -> str:
        ids = self.ids()
        if not ids:
            raise KeyUnavailable("no key-encryption key in token \"%s\": run `veilpost init`"
                                 % self.token.label)
        return ids[-1]

    def create(self) -> str:
        from pkcs11 import KeyType, MechanismFlag

        # The id is its creation time in microseconds: the newest is current.
        now = time.time_ns() // 1000
        last = [int(k[4:]) for k in self.ids() if k[4:].isdigit()]
        kek_id = "kek-%020d" % max([now, *(n + 1 for n in last)])
        self._handles[kek_id] = self.token.new_secret(
            PREFIX + kek_id, KeyType.AES, 256, MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
        return kek_id

    def retire(self, kek_id: str) -> None:
        if kek_id == self.current_id():
            raise KeyUnavailable("cannot retire the current key-encryption key " + kek_id)
        self._destroy(kek_id)

    # -- period keys

    def period_ids(self) -> list[str]:
        return self.token.secret_labels(PERIOD_PREFIX)

    def _period_id(self, day: int) -> str:
        from pkcs11 import KeyType, MechanismFlag

        known = self._days.get(day)
        if known is not None:
            return known
        name = period_name(day)
        with self.token.lock:  # two threads wrapping for a new day make one key
            key_id = next((k for k in self.period_ids() if k.startswith(name + "-")), None)
            if key_id is None:
                key_id = name + "-" + secrets.token_hex(4)
                self._handles[key_id] = self.token.new_secret(
                    PREFIX + key_id, KeyType.AES, 256, MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
            self._days[day] = key_id
            return key_id

    def period_wrap(self, day: int, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        from pkcs11.exceptions import PKCS11Error

        key_id = self._period_id(day)
        try:
            return key_id, self._encrypt(key_id, secret, aad)
        except (PKCS11Error, KeyUnavailable):
            # Destroyed by another gateway on the same token since we looked: find or make it again.
            self._forget(key_id)
            key_id = self._period_id(day)
            return key_id, self._encrypt(key_id, secret, aad)

    def _forget(self, key_id: str) -> None:
        self._handles.pop(key_id, None)
        self._days = {d: k for d, k in self._days.items() if k != key_id}

    def own_wrap(self, name: str, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        from pkcs11 import KeyType, MechanismFlag

        key_id = own_key_id(name)
        with self.token.lock:
            self._handles[key_id] = self.token.new_secret(
                PREFIX + key_id, KeyType.AES, 256, MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
        return key_id, self._encrypt(key_id, secret, aad)

    def destroy(self, key_id: str) -> None:
        if period_day(key_id) is None and not key_id.startswith(OWN_PREFIX):
            raise KeyUnavailable("%s is not a period key" % key_id)
        self._destroy(key_id)

    # -- wrapping, in the token

    def wrap(self, secret: bytes, aad: bytes) -> tuple[str, bytes]:
        kek_id = self.current_id()
        return kek_id, self._encrypt(kek_id, secret, aad)

    def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.mechanisms import GCMParams

        key = self._key(kek_id)
        if len(wrapped) < 12 + 16:
            raise KeyUnavailable("wrapped key does not open under " + kek_id)
        try:
            with self.token.lock:
                return bytes(key.decrypt(wrapped[12:], mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(wrapped[:12], aad)))
        except PKCS11Error:
            raise KeyUnavailable("wrapped key does not open under " + kek_id) from None

    def _encrypt(self, key_id: str, secret: bytes, aad: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        key = self._key(key_id)
        nonce = secrets.token_bytes(12)
        with self.token.lock:
            return nonce + bytes(key.encrypt(secret, mechanism=Mechanism.AES_GCM,
                                             mechanism_param=GCMParams(nonce, aad)))

    def _key(self, key_id: str) -> Any:
        from pkcs11 import ObjectClass

        key = self._handles.get(key_id)
        if key is None:
            key = self.token.find(PREFIX + key_id, ObjectClass.SECRET_KEY)
            if key is None:
                raise KeyUnavailable("key %s is not in token \"%s\" (destroyed or never made)"
                                     % (key_id, self.token.label))
            self._handles[key_id] = key
        return key

    def _destroy(self, key_id: str) -> None:
        from pkcs11 import ObjectClass

        with self.token.lock:
            self._forget(key_id)
            key = self.token.find(PREFIX + key_id, ObjectClass.SECRET_KEY)
            if key is not None:
                key.destroy()


class TokenKeys:
    """The gateway's keyring in a PKCS#11 token (the same calls as
    gateway/keys.py GatewayKeys)."""

    label_kid = b"L1"

    def __init__(self, token: Token) -> None:
        self.token = token
        self.kek = TokenKek(token)
        self._signing: Any = None
        self._public: Ed25519PublicKey | None = None
        self._macs: dict[str, Any] = {}

    @classmethod
    def open(cls, home: Path, module: str, token_label: str, pin_file: str, pin_env: str) -> TokenKeys:
        return cls(Token(module, token_label, read_pin(home, pin_file, pin_env)))

    def describe(self) -> str:
        return "PKCS#11 token \"%s\" (%s)" % (self.token.label, self.token.module)

    def close(self) -> None:
        self.token.close()

    def missing(self) -> list[str]:
        """The objects `create` would make."""
        from pkcs11 import ObjectClass

        out = [] if self.kek.exists() else ["key-encryption key"]
        if self.token.find(SIGNING, ObjectClass.PRIVATE_KEY) is None:
            out.append("audit signing key")
        for label, what in ((PEOPLE, "people-HMAC key"), (LABELS, "label-HMAC key")):
            if self.token.find(label, ObjectClass.SECRET_KEY) is None:
                out.append(what)
        return out

    def exists(self) -> bool:
        return not self.missing()

    def exportable(self) -> list[str]:
        """Labels of this gateway's secret and private objects that could leave the token."""
        from pkcs11 import Attribute, ObjectClass

        out = []
        with self.token.lock:
            for cls in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY):
                for obj in self.token.session.get_objects({Attribute.CLASS: cls}):
                    leaves = obj[Attribute.EXTRACTABLE] or not obj[Attribute.SENSITIVE]
                    if obj.label.startswith(PREFIX) and leaves:
                        out.append(obj.label)
        return sorted(out)

    def create(self) -> None:
        """Make whatever object is missing in the token (idempotent)."""
        from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass

        if not self.kek.exists():
            self.kek.create()
        if self.token.find(SIGNING, ObjectClass.PRIVATE_KEY) is None:
            with self.token.lock:
                self.token.session.generate_keypair(
                    KeyType.EC_EDWARDS, store=True, label=SIGNING, id=SIGNING.encode(),
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    public_template={Attribute.EC_PARAMS: ED25519_PARAMS, Attribute.TOKEN: True},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                      Attribute.TOKEN: True, Attribute.PRIVATE: True})
        for label in (PEOPLE, LABELS):
            if self.token.find(label, ObjectClass.SECRET_KEY) is None:
                self.token.new_secret(label, KeyType.GENERIC_SECRET, 256,
                                      MechanismFlag.SIGN | MechanismFlag.VERIFY)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of `message`, made in the token."""
        from pkcs11 import Mechanism, ObjectClass

        if self._signing is None:
            self._signing = self.token.find(SIGNING, ObjectClass.PRIVATE_KEY)
            if self._signing is None:
                raise self._missing("audit signing key")
        with self.token.lock:
            return bytes(self._signing.sign(message, mechanism=Mechanism.EDDSA))

    def public_key(self) -> Ed25519PublicKey:
        from pkcs11 import Attribute, ObjectClass

        if self._public is None:
            pub = self.token.find(SIGNING, ObjectClass.PUBLIC_KEY)
            if pub is None:
                raise self._missing("audit signing key")
            with self.token.lock:
                point = bytes(pub[Attribute.EC_POINT])
            if len(point) == 34 and point[:2] == b"\x04\x20":  # DER OCTET STRING around the 32 bytes
                point = point[2:]
            self._public = Ed25519PublicKey.from_public_bytes(point)
        return self._public

    def _missing(self, what: str) -> KeyUnavailable:
        return KeyUnavailable("no %s in token \"%s\": run `veilpost init`" % (what, self.token.label))

    def person_mac(self, data: bytes) -> bytes:
        return self._mac(PEOPLE, data)

    def label_mac(self, kid: bytes, data: bytes) -> bytes | None:
        if kid != self.label_kid:
            return None
        return self._mac(LABELS, data)

    def _mac(self, label: str, data: bytes) -> bytes:
        from pkcs11 import Mechanism, ObjectClass

        key = self._macs.get(label)
        if key is None:
            key = self.token.find(label, ObjectClass.SECRET_KEY)
            if key is None:
                raise self._missing(label[len(PREFIX):])
            self._macs[label] = key
        with self.token.lock:
            return bytes(key.sign(data, mechanism=Mechanism.SHA256_HMAC))
