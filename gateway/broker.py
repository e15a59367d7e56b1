# mypy: disable-error-code="import-untyped"
"""The embedded MQTT broker: amqtt in a thread of its own.

`veilpost demo` and the tests run it so that nothing has to be installed. It
enforces the same topic rules as Mosquitto (gateway/broker_access.py) with
two amqtt plugins, over its own accounts: scrypt-hashed passwords, each with
its grants (gateway/broker_accounts.py), in memory or in a JSON file that
another process edits through `AccountsFileAdmin`; the broker notices within
`poll_seconds`, kicks clients that were disabled, removed or given a new
password, and writes a receipt the editor waits for.

It has no TLS and no shared subscriptions (`$share/...`): a gateway on it
subscribes to `vp/v1/d/+/up` directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.adapters import BufferReader, ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from gateway.broker_access import (
    GATEWAY_GRANTS,
    OPERATOR_GRANTS,
    WATCHER_GRANTS,
    WITNESS_GRANTS,
    BrokerAdminError,
    Grant,
    device_grants,
    new_password,
    quarantine_grants,
)
from gateway.broker_accounts import (
    ENDPOINT_FILE,
    Accounts,
    AccountsFileAdmin,
    file_stamp,
    locked,
    read_file,
    write_applied,
    write_file,
)
from gateway.permissions import write_private

__all__ = ["EmbeddedBroker", "AccountsFileAdmin", "BrokerAdminError", "new_password"]

log = logging.getLogger(__name__)


# --- amqtt plugins and the CONNECT gate ----------------------------------------------


class AccountAuthPlugin(BaseAuthPlugin):
    """amqtt auth plugin: username and password against the broker's accounts."""

    @dataclass
    class Config(BaseAuthPlugin.Config):
        accounts: Any = None

    async def authenticate(self, *, session: Session) -> bool | None:
        accounts: Accounts = self.config.accounts
        return accounts.check(session.username, session.password)


class AccountTopicPlugin(BaseTopicPlugin):
    """amqtt topic plugin: publish and subscribe only within the account's grants."""

    @dataclass
    class Config(BaseTopicPlugin.Config):
        accounts: Any = None

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        accounts: Accounts = self.config.accounts
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


class _SubscriptionTable(dict[str, list[tuple[Session, int]]]):
    """amqtt's filter -> subscribers table, walked over a snapshot. amqtt 0.12
    walks it across awaits (`_run_broadcast`, the retained replay on
    reconnect); a SUBSCRIBE landing meanwhile broke the walk ("dictionary
    changed size during iteration") and the message was lost for every filter
    after it. Changes still go to the live table."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().__iter__()))

    def items(self) -> list[tuple[str, list[tuple[Session, int]]]]:  # type: ignore[override]
        return [(k, list(v)) for k, v in super().items()]


class _GatedBroker(Broker):
    """amqtt with three holes closed. It checks the password only after it has
    matched the client id to a live session, so a refused CONNECT could wipe
    or take over a handheld's session: this broker authenticates the CONNECT
    before amqtt sees it. It sends a reconnecting client retained messages
    for other clients' subscriptions: this broker keeps to the client's own.
    And a subscription arriving during a broadcast could lose that message:
    this broker's subscription table is walked over a snapshot."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions = _SubscriptionTable()

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

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        # On a reconnect amqtt replays retained messages for every filter that
        # any client holds; a handheld would get other handhelds' commands.
        holders = self._subscriptions.get(subscription[0], [])
        if any(holder.client_id == session.client_id for holder, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


# --- the broker ---------------------------------------------------------------------


class EmbeddedBroker:
    """amqtt in a thread with its own asyncio loop. `start()` returns the bound
    port. It is its own BrokerAdmin; with `accounts_file` the accounts live in
    that file, shared with `AccountsFileAdmin` in other processes."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accounts_file: Path | None = None,
        poll_seconds: float = 0.05,
    ) -> None:
        self.host = host
        self.port = port
        self.accounts_file = Path(accounts_file) if accounts_file else None
        self.poll_seconds = poll_seconds
        self._accounts = Accounts()
        self._stamp: tuple[int, int, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: _GatedBroker | None = None
        self._watcher: asyncio.Task[None] | None = None

    # lifecycle

    def start(self) -> int:
        if self._thread is not None:
            raise RuntimeError("the embedded broker is running already")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="embedded-mqtt", daemon=True)
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
        if self.accounts_file is not None:
            self._reload()
            write_applied(self.accounts_file.parent, self._stamp)
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                __name__ + ".AccountAuthPlugin": {"accounts": self._accounts},
                __name__ + ".AccountTopicPlugin": {"accounts": self._accounts},
            },
        }
        broker = _GatedBroker(config)
        try:
            await broker.start()
        except Exception as exc:  # amqtt wraps the bind error in BrokerError
            cause = exc.__cause__
            if isinstance(cause, OSError):
                raise OSError(cause.errno, cause.strerror or str(cause)) from None
            raise
        self._broker = broker
        server = self._broker._servers["default"].instance
        port = int(next(iter(server.sockets)).getsockname()[1])
        if self.accounts_file is not None:
            # Tells `veilpost device ...` in another process where to post commands.
            endpoint = self.accounts_file.parent / ENDPOINT_FILE
            write_private(endpoint, json.dumps({"host": self.host, "port": port}) + "\n")
        return port

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._shutdown(), timeout=10)
        except Exception:  # noqa: BLE001 - stopping must not fail half way
            log.warning("embedded broker shutdown failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._broker = self._watcher = None

    async def _shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self.accounts_file is not None:
            (self.accounts_file.parent / ENDPOINT_FILE).unlink(missing_ok=True)
        if self._broker is not None:
            await self._broker.shutdown()

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

    # the accounts file

    def _reload(self) -> set[str]:
        """Take the file's accounts; return who lost access (loop thread)."""
        assert self.accounts_file is not None
        self._stamp = file_stamp(self.accounts_file)
        before = self._accounts.copy()
        self._accounts.by_name = read_file(self.accounts_file).by_name
        return self._accounts.shut_out(before)

    async def _watch(self) -> None:
        assert self.accounts_file is not None
        while True:
            await asyncio.sleep(self.poll_seconds)
            if file_stamp(self.accounts_file) == self._stamp:
                continue
            try:
                shut_out = self._reload()
            except (BrokerAdminError, OSError):
                log.exception("accounts file %s unreadable; keeping the old accounts", self.accounts_file)
                continue
            for username in shut_out:
                await self._kick(username)
            write_applied(self.accounts_file.parent, self._stamp)

    async def _edit(self, change: Callable[[Accounts], None]) -> set[str]:
        before = self._accounts.copy()
        if self.accounts_file is None:
            change(self._accounts)
        else:
            with locked(self.accounts_file):
                accounts = read_file(self.accounts_file)
                change(accounts)
                write_file(self.accounts_file, accounts)
            self._reload()
        shut_out = self._accounts.shut_out(before)
        for username in shut_out:
            await self._kick(username)
        if self.accounts_file is not None:
            write_applied(self.accounts_file.parent, self._stamp)
        return shut_out

    # BrokerAdmin

    def add_client(self, username: str, password: str, grants: tuple[Grant, ...] = ()) -> None:
        self._call(self._edit(lambda a: a.add(username, password, grants)))

    def add_device(self, device_id: str, password: str) -> None:
        self.add_client(device_id, password, device_grants(device_id))

    def add_gateway(self, username: str, password: str) -> None:
        self.add_client(username, password, GATEWAY_GRANTS)

    def add_operator(self, username: str, password: str) -> None:
        self.add_client(username, password, OPERATOR_GRANTS)

    def add_watcher(self, username: str, password: str) -> None:
        self.add_client(username, password, WATCHER_GRANTS)

    def add_witness(self, username: str, password: str) -> None:
        self.add_client(username, password, WITNESS_GRANTS)

    def ensure_gateway(self, username: str, password: str) -> None:
        """The gateway's own account, kept across restarts with an accounts file."""
        def change(accounts: Accounts) -> None:
            accounts.by_name.pop(username, None)
            accounts.add(username, password, GATEWAY_GRANTS)

        self._call(self._edit(change))

    def set_password(self, username: str, password: str) -> None:
        self._call(self._edit(lambda a: a.set_password(username, password)))

    def disable_client(self, username: str) -> None:
        """Refuse new connections and kick the live session."""
        self._call(self._edit(lambda a: a.set_enabled(username, False)))

    disable = disable_client

    def enable(self, username: str) -> None:
        self._call(self._edit(lambda a: a.set_enabled(username, True)))

    def quarantine(self, device_id: str) -> None:
        self._call(self._edit(lambda a: a.set_grants(device_id, quarantine_grants(device_id))))

    def remove_client(self, username: str) -> None:
        self._call(self._edit(lambda a: a.remove(username)))

    remove = remove_client

    def is_disabled(self, username: str) -> bool:
        async def state() -> bool:
            return not self._accounts.get(username).enabled

        return bool(self._call(state()))

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
