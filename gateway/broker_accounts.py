"""The embedded broker's accounts: usernames, scrypt password hashes and
topic grants, in memory or in a JSON file shared between processes.

`veilpost gateway run` keeps the embedded broker and its accounts file;
`veilpost device revoke` in another process edits the file through
`AccountsFileAdmin` (under an flock, replaced atomically), and the broker
applies the change, kicking whoever lost access, within its poll interval.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.broker_access import (
    GATEWAY_GRANTS,
    OPERATOR_GRANTS,
    WATCHER_GRANTS,
    WITNESS_GRANTS,
    BrokerAdminError,
    Grant,
    device_grants,
    filter_covers,
    quarantine_grants,
)
from gateway.permissions import open_private, write_private

ACCOUNTS_FILE = "broker-accounts.json"
ENDPOINT_FILE = "broker-endpoint.json"
APPLIED_FILE = "broker-applied.json"  # the accounts file version the running broker enforces
APPLY_TIMEOUT = 2.0


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1, dklen=32)


@dataclass
class _Account:
    salt: bytes
    digest: bytes
    grants: tuple[Grant, ...]
    enabled: bool = True


@dataclass
class Accounts:
    """Usernames with password hashes and grants; the plugins read it on the
    broker's loop, admin calls change it there too."""

    by_name: dict[str, _Account] = field(default_factory=dict)

    def check(self, username: str | None, password: str | None) -> bool:
        account = self.by_name.get(username or "")
        if account is None or not account.enabled or password is None:
            return False
        return hmac.compare_digest(_hash_password(password, account.salt), account.digest)

    def allows(self, username: str | None, action: str, topic: str) -> bool:
        account = self.by_name.get(username or "")
        if account is None or not account.enabled:
            return False
        return any(g.action == action and filter_covers(g.topic, topic) for g in account.grants)

    def get(self, username: str) -> _Account:
        account = self.by_name.get(username)
        if account is None:
            raise BrokerAdminError(f"client {username!r} not found")
        return account

    def add(self, username: str, password: str, grants: tuple[Grant, ...]) -> None:
        if username in self.by_name:
            raise BrokerAdminError(f"client {username!r} exists already")
        salt = secrets.token_bytes(16)
        self.by_name[username] = _Account(salt, _hash_password(password, salt), grants)

    def set_password(self, username: str, password: str) -> None:
        account = self.get(username)
        account.salt = secrets.token_bytes(16)
        account.digest = _hash_password(password, account.salt)

    def copy(self) -> Accounts:
        return Accounts({name: dataclasses.replace(a) for name, a in self.by_name.items()})

    def set_enabled(self, username: str, enabled: bool) -> None:
        self.get(username).enabled = enabled

    def set_grants(self, username: str, grants: tuple[Grant, ...]) -> None:
        self.get(username).grants = grants

    def remove(self, username: str) -> None:
        self.get(username)
        del self.by_name[username]

    def shut_out(self, before: Accounts) -> set[str]:
        """Usernames whose live sessions must end: they could connect under
        `before` and now cannot, must use a new password (as dynsec does), or
        lost grants (a quarantine: their subscriptions must not outlive it)."""
        return {
            name for name, old in before.by_name.items()
            if old.enabled and (name not in self.by_name or not self.by_name[name].enabled
                                or self.by_name[name].digest != old.digest
                                or not set(old.grants) <= set(self.by_name[name].grants))
        }

    def dumps(self) -> str:
        clients = {
            name: {"salt": a.salt.hex(), "scrypt": a.digest.hex(), "enabled": a.enabled,
                   "grants": [list(g) for g in a.grants]}
            for name, a in sorted(self.by_name.items())
        }
        return json.dumps({"version": 1, "clients": clients}, indent=1) + "\n"

    @classmethod
    def loads(cls, text: str, where: str = "accounts") -> Accounts:
        try:
            data = json.loads(text)
            accounts = cls()
            for name, a in data["clients"].items():
                grants = tuple(Grant(str(g[0]), str(g[1])) for g in a["grants"])
                accounts.by_name[str(name)] = _Account(
                    bytes.fromhex(a["salt"]), bytes.fromhex(a["scrypt"]), grants, bool(a["enabled"])
                )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise BrokerAdminError(f"{where} is not a veilpost accounts file: {exc}") from exc
        return accounts


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of an accounts file between processes."""
    with os.fdopen(open_private(Path(str(path) + ".lock")), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_file(path: Path) -> Accounts:
    try:
        return Accounts.loads(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        return Accounts()


def write_file(path: Path, accounts: Accounts) -> None:
    write_private(path, accounts.dumps())  # readers see the old file or the new one, never half


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_endpoint(folder: Path) -> tuple[str, int] | None:
    """(host, port) a running embedded broker wrote next to its accounts file."""
    try:
        data = json.loads((Path(folder) / ENDPOINT_FILE).read_text(encoding="utf-8"))
        return str(data["host"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def endpoint_alive(folder: Path, timeout: float = 0.5) -> bool:
    """Whether the embedded broker that wrote this folder's endpoint file
    still listens there (a gateway killed with SIGKILL leaves the file)."""
    endpoint = read_endpoint(folder)
    if endpoint is None:
        return False
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            return True
    except OSError:
        return False


def write_applied(folder: Path, stamp: tuple[int, int, int] | None) -> None:
    """The broker's receipt: this version of the accounts file is in force."""
    write_private(Path(folder) / APPLIED_FILE, json.dumps({"stamp": list(stamp) if stamp else None}) + "\n")


def read_applied(folder: Path) -> tuple[int, int, int] | None:
    try:
        stamp = json.loads((Path(folder) / APPLIED_FILE).read_text(encoding="utf-8"))["stamp"]
        return (int(stamp[0]), int(stamp[1]), int(stamp[2])) if stamp else None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class AccountsFileAdmin:
    """BrokerAdmin for an embedded broker running in another process: edits
    its accounts file, then waits (up to `apply_timeout`) for the broker's
    receipt that it enforces the new version, kicks included. With no broker
    running the change simply waits in the file for the next start."""

    def __init__(self, path: Path, apply_timeout: float = APPLY_TIMEOUT) -> None:
        self.path = Path(path)
        self.apply_timeout = apply_timeout
        self._alive: bool | None = None  # does the broker of the endpoint file listen? (asked once)

    def _edit(self, change: Callable[[Accounts], None]) -> None:
        with locked(self.path):
            accounts = read_file(self.path)
            change(accounts)
            write_file(self.path, accounts)
            stamp = file_stamp(self.path)
        if read_endpoint(self.path.parent) is None:
            return  # no broker runs here: it reads the file when it starts
        if self._alive is None:
            self._alive = endpoint_alive(self.path.parent)
        if not self._alive:
            return  # the endpoint file of a broker that was killed: it reads the file when it starts
        deadline = time.monotonic() + self.apply_timeout
        while read_applied(self.path.parent) != stamp and time.monotonic() < deadline:
            time.sleep(0.005)

    def add_device(self, device_id: str, password: str) -> None:
        grants = device_grants(device_id)
        self._edit(lambda a: a.add(device_id, password, grants))

    def add_gateway(self, username: str, password: str) -> None:
        self._edit(lambda a: a.add(username, password, GATEWAY_GRANTS))

    def add_operator(self, username: str, password: str) -> None:
        self._edit(lambda a: a.add(username, password, OPERATOR_GRANTS))

    def add_watcher(self, username: str, password: str) -> None:
        self._edit(lambda a: a.add(username, password, WATCHER_GRANTS))

    def add_witness(self, username: str, password: str) -> None:
        self._edit(lambda a: a.add(username, password, WITNESS_GRANTS))

    def set_password(self, username: str, password: str) -> None:
        self._edit(lambda a: a.set_password(username, password))

    def disable(self, username: str) -> None:
        self._edit(lambda a: a.set_enabled(username, False))

    def enable(self, username: str) -> None:
        self._edit(lambda a: a.set_enabled(username, True))

    def quarantine(self, device_id: str) -> None:
        grants = quarantine_grants(device_id)
        self._edit(lambda a: a.set_grants(device_id, grants))

    def remove(self, username: str) -> None:
        self._edit(lambda a: a.remove(username))

    def is_disabled(self, username: str) -> bool:
        return not read_file(self.path).get(username).enabled

    def usernames(self) -> list[str]:
        return sorted(read_file(self.path).by_name)

    def close(self) -> None:
        """Nothing held open."""
