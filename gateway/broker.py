# mypy: disable-error-code="import-untyped"
"""Who may use which MQTT topics, and the embedded broker.

`device_grants` and `GATEWAY_GRANTS` are the one place that decides what a
handheld and the gateway may publish and subscribe to; both brokers enforce
them (Mosquitto through dynsec roles, see gateway/dynsec.py, and the
embedded amqtt broker through the plugins below). `BrokerAdmin` is what
provisioning talks to, whichever broker runs.

`EmbeddedBroker` runs amqtt in its own thread with its own asyncio loop, so
`veilpost demo` and the tests need nothing installed. It has no TLS and no
shared subscriptions (`$share/...`): gateways on it subscribe to
`vp/v1/d/+/up` directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from amqtt.adapters import BufferReader, ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
SHARE_GROUP = "veilpost"


class Grant(NamedTuple):
    """One permission: `action` is "publish" or "subscribe"; `topic` is an
    MQTT filter (+ and # are wildcards) that the topic or filter must fall in."""

    action: str
    topic: str


def check_device_id(device_id: str) -> str:
    """A device id safe to put in a topic and an ACL, or ValueError."""
    if not isinstance(device_id, str) or not DEVICE_ID.fullmatch(device_id):
        raise ValueError(f"device id {device_id!r} is not 1-32 characters of A-Z a-z 0-9 _ -")
    return device_id


def device_grants(device_id: str) -> tuple[Grant, ...]:
    """A handheld speaks on its own `up` and listens on its own `down` and `cmd`; nothing else."""
    base = "vp/v1/d/" + check_device_id(device_id) + "/"
    return (
        Grant("publish", base + "up"),
        Grant("subscribe", base + "down"),
        Grant("subscribe", base + "cmd"),
    )


GATEWAY_GRANTS: tuple[Grant, ...] = (
    Grant("subscribe", "$share/" + SHARE_GROUP + "/vp/v1/d/+/up"),
    Grant("subscribe", "vp/v1/d/+/up"),
    Grant("publish", "vp/v1/d/+/down"),
    Grant("publish", "vp/v1/d/+/cmd"),
    Grant("publish", "vp/v1/alarm"),
    Grant("publish", "vp/v1/gw/#"),
    Grant("subscribe", "vp/v1/gw/#"),
)


def filter_covers(allowed: str, requested: str) -> bool:
    """True when every topic `requested` can match is matched by `allowed`
    (for a plain topic: `allowed` matches it)."""
    want = requested.split("/")
    have = allowed.split("/")
    for i, level in enumerate(have):
        if level == "#":
            return True
        if i >= len(want):
            return False
        if level == "+":
            if want[i] == "#":
                return False
            continue
        if level != want[i]:
            return False
    return len(want) == len(have)


def new_password() -> str:
    """A broker password for a machine: 192 random bits, URL-safe text."""
    return secrets.token_urlsafe(24)


class BrokerAdmin(Protocol):
    """What provisioning needs from a broker. Usernames of handhelds are
    their device ids."""

    def add_device(self, device_id: str, password: str) -> None:
        """Create the handheld's client, allowed only its own topics."""
        ...

    def add_gateway(self, username: str, password: str) -> None:
        """Create a gateway client with GATEWAY_GRANTS."""
        ...

    def set_password(self, username: str, password: str) -> None: ...

    def disable(self, username: str) -> None:
        """Refuse new connections and kick the live session, if any."""
        ...

    def enable(self, username: str) -> None: ...

    def remove(self, username: str) -> None:
        """Delete the client (and a handheld's own role)."""
        ...

    def usernames(self) -> list[str]: ...

    def close(self) -> None: ...


class BrokerAdminError(Exception):
    """A broker refused an admin command; the message says which and why."""


# --- the embedded broker ------------------------------------------------------


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1, dklen=32)


@dataclass
class _Account:
    salt: bytes
    digest: bytes
    grants: tuple[Grant, ...]
    enabled: bool = True


@dataclass
class _Accounts:
    """Credentials and grants shared by the plugins and the admin (loop thread only)."""

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


class AccountAuthPlugin(BaseAuthPlugin):
    """amqtt auth plugin: username and password against the broker's accounts."""

    @dataclass
    class Config(BaseAuthPlugin.Config):
        accounts: Any = None

    async def authenticate(self, *, session: Session) -> bool | None:
        accounts: _Accounts = self.config.accounts
        return accounts.check(session.username, session.password)


class AccountTopicPlugin(BaseTopicPlugin):
    """amqtt topic plugin: publish and subscribe only within the account's grants."""

    @dataclass
    class Config(BaseTopicPlugin.Config):
        accounts: Any = None

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        accounts: _Accounts = self.config.accounts
        if session is None or topic is None:
            return False
        if action == Action.RECEIVE:
            return True  # what a client may receive is settled when it subscribes
        kind = "publish" if action == Action.PUBLISH else "subscribe"
        return accounts.allows(session.username, kind, topic)


CONNECT_TIMEOUT = 10.0
MAX_CONNECT_BYTES = 4096


class _ReplayReader(ReaderAdapter):
    """Serves bytes already read (the CONNECT) before the rest of the stream."""

    def __init__(self, head: bytes, inner: ReaderAdapter) -> None:
        self._head = bytearray(head)
        self._inner = inner

    async def read(self, n: int = -1) -> bytes:
        if not self._head:
            return await self._inner.read(n)
        if n < 0 or n <= len(self._head):
            size = len(self._head) if n < 0 else n
            chunk = bytes(self._head[:size])
            del self._head[:size]
            return chunk
        chunk = bytes(self._head)
        self._head.clear()
        return chunk + await self._inner.read(n - len(chunk))

    def feed_eof(self) -> None:
        self._inner.feed_eof()


async def _read_packet(reader: ReaderAdapter) -> bytes:
    """One raw MQTT packet: fixed header, remaining length, body."""
    raw = bytearray(await reader.read(1))
    length, shift = 0, 0
    for _ in range(4):
        byte = (await reader.read(1))[0]
        raw.append(byte)
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if length > MAX_CONNECT_BYTES:
        raise ValueError(f"CONNECT of {length} bytes")
    raw += await reader.read(length)
    return bytes(raw)


class _GatedBroker(Broker):
    """amqtt checks the password only after it has matched the client id to a
    live session, so a refused CONNECT could wipe or take over a handheld's
    session. This broker authenticates the CONNECT before amqtt sees it."""

    async def _client_connected(
        self, listener_name: str, reader: ReaderAdapter, writer: WriterAdapter
    ) -> None:
        try:
            raw = await asyncio.wait_for(_read_packet(reader), CONNECT_TIMEOUT)
            connect = await ConnectPacket.from_stream(BufferReader(raw))
        except Exception:  # noqa: BLE001 - any bad first packet ends the connection here
            await writer.close()
            return
        probe = Session()
        probe.client_id = connect.client_id
        probe.username = connect.username
        probe.password = connect.password
        if not await self._authenticate(probe, self.listeners_config[listener_name]):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            return
        await super()._client_connected(listener_name, _ReplayReader(raw, reader), writer)


class EmbeddedBroker:
    """amqtt in a thread of its own. `start()` returns the bound port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._accounts = _Accounts()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: _GatedBroker | None = None

    # lifecycle

    def start(self) -> int:
        if self._thread is not None:
            raise RuntimeError("the embedded broker is running already")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="embedded-mqtt-broker", daemon=True
        )
        self._thread.start()
        ready.wait()
        try:
            self.port = self._call(self._start_broker(), timeout=30)
        except BaseException:
            self.stop()
            raise
        return self.port

    def _run(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_forever()

    async def _start_broker(self) -> int:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                __name__ + ".AccountAuthPlugin": {"accounts": self._accounts},
                __name__ + ".AccountTopicPlugin": {"accounts": self._accounts},
            },
        }
        self._broker = _GatedBroker(config)
        await self._broker.start()
        server = self._broker._servers["default"].instance
        return int(next(iter(server.sockets)).getsockname()[1])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._broker is not None:
            try:
                self._call(self._broker.shutdown(), timeout=10)
            except Exception:  # noqa: BLE001 - stopping must not fail half way
                logging.getLogger(__name__).warning("embedded broker shutdown failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._broker = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any, timeout: float = 5.0) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the embedded broker is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # accounts (the EmbeddedBroker is its own BrokerAdmin)

    def add_client(self, username: str, password: str, grants: tuple[Grant, ...] = ()) -> None:
        async def add() -> None:
            if username in self._accounts.by_name:
                raise BrokerAdminError(f"client {username!r} exists already")
            salt = secrets.token_bytes(16)
            self._accounts.by_name[username] = _Account(salt, _hash_password(password, salt), grants)

        self._call(add())

    def add_device(self, device_id: str, password: str) -> None:
        self.add_client(device_id, password, device_grants(device_id))

    def add_gateway(self, username: str, password: str) -> None:
        self.add_client(username, password, GATEWAY_GRANTS)

    def _account(self, username: str) -> _Account:
        account = self._accounts.by_name.get(username)
        if account is None:
            raise BrokerAdminError(f"client {username!r} not found")
        return account

    def set_password(self, username: str, password: str) -> None:
        async def change() -> None:
            account = self._account(username)
            account.salt = secrets.token_bytes(16)
            account.digest = _hash_password(password, account.salt)

        self._call(change())

    def disable_client(self, username: str) -> None:
        async def disable() -> None:
            self._account(username).enabled = False
            await self._kick(username)

        self._call(disable())

    disable = disable_client

    def enable(self, username: str) -> None:
        async def enable() -> None:
            self._account(username).enabled = True

        self._call(enable())

    def remove_client(self, username: str) -> None:
        async def remove() -> None:
            self._accounts.by_name.pop(username, None)
            await self._kick(username)

        self._call(remove())

    remove = remove_client

    def usernames(self) -> list[str]:
        async def names() -> list[str]:
            return sorted(self._accounts.by_name)

        return list(self._call(names()))

    def close(self) -> None:
        """Nothing to release: the admin is the broker itself."""

    async def _kick(self, username: str) -> None:
        assert self._broker is not None
        for session, handler in list(self._broker._sessions.values()):
            if session.username != username or handler.writer is None:
                continue
            # Closing the socket works even before amqtt has started the session's loop.
            await handler.writer.close()
            if session.transitions.is_connected():
                await handler.handle_connection_closed()

