"""The gateway service: one thread owns the paho MQTT client and drives its
loop itself. It reads whatever has arrived, handles that batch in one
database transaction (so a whole batch shares one commit), publishes the
replies only after the commit, and only then acknowledges the requests to
the broker: a crash before the commit leaves them with the broker to be
delivered again. Each device has its own Channel, whose replay window is
saved in that same commit and whose send sequence is reserved ahead. What
runs beside it plugs in as a `Lifecycle` hook (gateway/supervisor.py)."""

from __future__ import annotations

import logging
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import alarm_out, metrics
from gateway.checkpoint_out import CheckpointOut
from gateway.handlers import Handlers, Work
from gateway.home import Home
from gateway.logs import log, log_event
from gateway.sentinel import Alarm
from protocol import topics
from protocol.errors import ERROR_NAMES, OVERSIZE, BrokerError, ConfigurationError

BATCH = 256
ROTATION_POLL = 0.5  # seconds between looks for key rotations to send
Incoming = tuple[str, bytes, float, int, int]  # topic, payload, arrival, mid, qos
EMBEDDED_GATEWAY = "vp-gateway"  # the gateway's account on its embedded broker


class GatewayStartError(ConfigurationError):
    """The gateway cannot start; the message says what to fix (exit 3)."""


class BrokerUnreachable(GatewayStartError, BrokerError):
    """The gateway cannot reach its broker at start (exit 4, like any BrokerError)."""


def _port_free(port: int) -> None:
    """OSError when 127.0.0.1:`port` cannot be listened on (0: any free port)."""
    if port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's listener does
            probe.bind(("127.0.0.1", port))


class Lifecycle(Protocol):
    """What lives beside a GatewayService, told when it has started (connected,
    loop running, `credentials` set), when the broker dropped it (return False
    to end it for good: the session is someone else's now) and when it stops."""

    def started(self, service: GatewayService) -> None: ...
    def disconnected(self, service: GatewayService) -> bool: ...
    def stopping(self, service: GatewayService) -> None: ...


class GatewayService:
    def __init__(self, home: Home, clock: Callable[[], float] = time.time,
                 hooks: Sequence[Lifecycle] = ()) -> None:
        self.home = home
        self.hooks = list(hooks)
        self.cfg = home.config
        self.clock = clock
        self.handlers = Handlers(home, clock)
        self.broker: Any = None
        self.port = self.cfg.mqtt.port
        self.host = "127.0.0.1"
        self.version = 4
        self.processed = 0
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._pending: list[Incoming] = []
        self._connected = threading.Event()
        self._refused = False
        self._stopping = False
        self.credentials: tuple[str | None, str | None] = (None, None)  # for the broker, once started
        self.handed_back = False  # a hook ended the session: it is someone else's, say nothing in its name
        self._ticks: list[tuple[float, float, Callable[[float], object]]] = []
        self._admin: Any = None  # gateway.broker_admin.open_admin, opened on first need
        self.every(ROTATION_POLL, self._send_rotations)
        self.checkpoints = CheckpointOut(self.cfg.audit.witness_urls)
        self.every(self.cfg.audit.checkpoint_interval, self.checkpoint)

    # ---- lifecycle

    def start(self) -> None:
        """Connect (raising if the broker cannot be reached) and start the loop thread."""
        self._preflight()
        m = self.cfg.mqtt
        username, password = m.username or None, m.password or None
        if m.broker == "embedded":
            from gateway.broker import EmbeddedBroker, new_password
            from gateway.broker_accounts import ACCOUNTS_FILE

            # Accounts live in a file in the home, so `veilpost device add` in
            # another process can enrol handhelds on this broker.
            self.broker = EmbeddedBroker("127.0.0.1", m.embedded_port,
                                         accounts_file=self.cfg.home / ACCOUNTS_FILE)
            try:
                _port_free(m.embedded_port)  # before amqtt, which would log its own traceback
                self.port = self.broker.start()
            except OSError as e:
                self.broker = None
                raise GatewayStartError("the embedded broker cannot listen on 127.0.0.1:%d (%s): stop what"
                                        " uses that port or set [mqtt] embedded_port"
                                        % (m.embedded_port, e.strerror or e)) from None
            log_event("embedded-broker", host="127.0.0.1", port=self.port)
            # A fresh password each start; the account a previous run left in
            # the accounts file (clean stop or kill -9) is replaced, not added twice.
            username, password = EMBEDDED_GATEWAY, new_password()
            self.broker.ensure_gateway(username, password)
        else:
            self.host = m.broker
        if self.cfg.metrics.port:
            metrics.serve(self.cfg.metrics.port)
        # MQTT 5 where the broker offers it (amqtt, the embedded broker, speaks 3.1.1).
        versions = {"auto": [5, 4], "5": [5], "3.1.1": [4]}[m.version]
        if m.broker == "embedded":
            versions = [4]
        if not any(self._try_connect(v, username, password) for v in versions):
            self._stop_broker()
            raise BrokerUnreachable("gateway could not connect to the broker at %s:%d"
                                    % (self.host, self.port))
        self.credentials = (username, password)
        self._thread = threading.Thread(target=self._run, name="veilpost-gateway", daemon=True)
        self._thread.start()
        for hook in self.hooks:
            hook.started(self)

    def _preflight(self) -> None:
        """What `veilpost config check` checks, short of reaching out: refuse
        to start on any failure, with one line; log the warnings."""
        from gateway.config_check import WARN, check, failures, tighten_home

        tightened, stuck = tighten_home(self.cfg)
        if tightened:
            log_event("secrets-tightened", logging.WARNING, files=[str(p) for p in tightened])
        if stuck:
            raise GatewayStartError("gateway not started: secrets readable by others and not ours to"
                                    " change: " + ", ".join(str(p) for p in stuck))
        found = check(self.cfg, reach=False)
        bad = failures(found)
        if bad:
            raise GatewayStartError("gateway not started: " + "; ".join(f.text for f in bad))
        for f in found:
            if f.level == WARN:
                log_event("config-warning", logging.WARNING, topic=f.topic, detail=f.text)

    def _try_connect(self, version: int, username: str | None, password: str | None) -> bool:
        m = self.cfg.mqtt
        v5 = version == 5
        if v5:  # MQTT 5 keeps the session through clean_start=False at connect time
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=m.client_id, protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=m.client_id, protocol=mqtt.MQTTv311,
                                 clean_session=False)
        if username:
            client.username_pw_set(username, password)
        client.max_inflight_messages_set(1000)
        client.manual_ack_set(True)  # ack only after the batch has committed
        client.will_set(topics.gateway_status(self.cfg.gateway_id), b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        # We drive the loop ourselves: a publish only queues, and the loop
        # writes a whole batch of replies at once (paho's external-loop hooks).
        client.on_socket_register_write = lambda *_a: None
        client.on_socket_unregister_write = lambda *_a: None
        self.version = version
        self._refused = False
        self._connected.clear()
        kwargs: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            # A persistent session: the QoS 1 backlog survives a restart.
            props.SessionExpiryInterval = m.session_expiry
            kwargs = {"clean_start": False, "properties": props}
        try:
            client.connect(self.host, self.port, keepalive=30, **kwargs)
        except OSError as e:
            log_event("mqtt-connect-failed", error=str(e))
            return False
        self._client = client
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self._connected.is_set() and not self._refused:
            if client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        if self._connected.is_set():
            return True
        client.disconnect()
        self._client = None
        return False

    @property
    def connected(self) -> bool:
        """Whether the gateway is connected to its broker right now."""
        return self._connected.is_set()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log_event("mqtt-refused", reason=str(reason))
            self._refused = True
            return
        shared = self.cfg.mqtt.shared and self.version == 5
        client.subscribe(topics.SHARED_UP_FILTER if shared else topics.UP_FILTER, qos=1)
        client.publish(topics.gateway_status(self.cfg.gateway_id), b"online", qos=1, retain=True)
        log_event("mqtt-connected", host=self.host, port=self.port)
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        self._refused = True
        if self._stopping:
            return
        log_event("mqtt-disconnected", reason=str(reason))
        if not all(hook.disconnected(self) for hook in self.hooks):
            self.handed_back = True  # no reconnect: the loop ends
            self._stopping = True

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._pending.append((msg.topic, bytes(msg.payload), time.monotonic(), msg.mid, msg.qos))

    def every(self, seconds: float, job: Callable[[float], object]) -> None:
        """Run `job(now)` on the loop thread every `seconds` (checkpoints, retention)."""
        self._ticks.append((seconds, self.clock(), job))

    def stop(self) -> None:
        for hook in self.hooks:
            hook.stopping(self)
        self._stopping = True
        if self._thread and self._thread.is_alive():
            self._thread.join(10)
        if self.handed_back:
            return  # the session's owner has it back: no goodbye, no checkpoint in its name
        client = self._client
        try:
            with self.home.store.transaction() as tx:
                last = self.home.audit.checkpoint(tx, self.clock())
        except Exception as e:  # a store that failed must not keep the broker and the session up
            log_event("checkpoint-failed", logging.ERROR, error=str(e))
            last = None
        self.checkpoints.send(last, client, wait=True)
        if client is not None:
            info = client.publish(topics.gateway_status(self.cfg.gateway_id), b"offline", qos=1, retain=True)
            deadline = time.monotonic() + 2
            while not info.is_published() and time.monotonic() < deadline:
                client.loop(timeout=0.05)
                if client.want_write():
                    client.loop_write()
            client.disconnect()
            if client.want_write():  # we drive the loop: send the DISCONNECT, or the broker sends our will
                client.loop_write()
            self._client = None  # stopped: a second stop() has nothing to say
        self._stop_broker()

    def _stop_broker(self) -> None:
        broker, self.broker = self.broker, None
        if broker is not None:
            broker.stop()

    def checkpoint(self, now: float) -> None:
        """Sign the audit log's head and send it to the witnesses ([audit] checkpoint_interval)."""
        with self.home.store.transaction() as tx:
            last = self.home.audit.checkpoint(tx, now)
        self.checkpoints.send(last, self._client)
        client = self._client
        if client is not None and client.want_write():
            client.loop_write()

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly (checkpoint, offline status)."""
        self.every(3600, self.handlers.retention)
        done = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_a: done.set())
        try:
            self.start()
            while not done.is_set() and self._thread is not None and self._thread.is_alive():
                done.wait(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ---- the loop thread

    def _run(self) -> None:
        client = self._client
        assert client is not None
        backoff = 1.0
        while not self._stopping:
            rc = client.loop(timeout=0.0 if self._pending else 0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                if self.handed_back:
                    break
                self._reconnect(client, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            # Read everything that has already arrived, then handle it together.
            sock = client.socket()
            while self._pending and len(self._pending) < BATCH and sock is not None:
                if not select.select([sock], [], [], 0)[0]:
                    break
                if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            if self._pending:
                batch, self._pending = self._pending, []
                try:
                    self._process([(t, p, t0) for t, p, t0, _m, _q in batch])
                except Exception:  # the loop must outlive any bug in one batch
                    log.exception("batch failed; %d messages not answered", len(batch))
                for _t, _p, _t0, mid, qos in batch:
                    if qos:
                        client.ack(mid, qos)
                self.processed += len(batch)
                if client.want_write():
                    client.loop_write()
            self._tick()

    def _reconnect(self, client: mqtt.Client, backoff: float) -> None:
        self._pending = []  # not acknowledged: the broker delivers them again
        time.sleep(backoff)
        try:
            client.reconnect()
        except OSError as e:
            log_event("mqtt-reconnect-failed", error=str(e), retry_in=min(backoff * 2, 30.0))

    def _tick(self) -> None:
        if not self._ticks:
            return
        now = self.clock()
        for i, (seconds, last, job) in enumerate(self._ticks):
            if now - last >= seconds:
                self._ticks[i] = (seconds, now, job)
                try:
                    job(now)
                except Exception:
                    log.exception("periodic job failed")

    def _process(self, batch: list[tuple[str, bytes, float]]) -> None:
        now = self.clock()
        accepted = []
        for topic, payload, t0 in batch:
            parsed = topics.parse(topic) if topic.startswith(topics.ROOT) else None
            if parsed is None or parsed[0] != "up":
                log_event("drop", why="not an up topic")
                continue
            device_id = parsed[1]
            if len(payload) > self.cfg.mqtt.max_payload:
                log_event("drop", device=device_id, why=ERROR_NAMES[OVERSIZE], size=len(payload))
                metrics.DROPPED.labels(ERROR_NAMES[OVERSIZE]).inc()
                continue
            accepted.append((device_id, payload, t0))
        if not accepted:
            return
        work = self.handlers.process(accepted, now)
        if not work.committed:
            log_event("commit-failed", error=work.failure)
        self._publish(work, now, reserve=work.committed)
        if work.committed:
            self._finish_rotations()

    def _publish(self, work: Work, now: float, reserve: bool = True) -> None:
        client = self._client
        assert client is not None
        for r in work.replies:
            try:
                payload = self.handlers.seal_reply(r.device_id, r.name, r.fields, now, reserve=reserve)
            except Exception as e:
                log_event("reply-failed", device=r.device_id, message=r.name, error=type(e).__name__)
                continue
            topic = topics.cmd(r.device_id) if r.retain else topics.down(r.device_id)
            client.publish(topic, payload, qos=1, retain=r.retain)
            if r.t0 and r.name in ("reveal_grant", "reveal_denied"):
                metrics.LATENCY.observe(time.monotonic() - r.t0)
        for alarm in work.alarms:
            self.raise_alarm(alarm)

    # ---- key rotation, broker accounts and alarms

    def broker_admin(self) -> Any:
        """The broker admin this gateway can use (None: it has no admin credentials)."""
        if self._admin is None:
            from gateway.broker_admin import open_admin

            self._admin = open_admin(self.cfg) or False
        return self._admin or None

    def _send_rotations(self, now: float) -> None:
        replies = self.handlers.rotation.commands(now)
        if replies:
            self._publish(Work(replies=replies), now)
            for r in replies:
                log_event("key-rotation-sent", device=r.device_id)

    def _finish_rotations(self) -> None:
        """After the commit: clear the retained command of each device that
        took its new key, and give it its new broker password."""
        rotation = self.handlers.rotation
        rotated, rotation.rotated = rotation.rotated, []
        for device_id in rotated:
            if self._client is not None:
                self._client.publish(topics.cmd(device_id), b"", qos=1, retain=True)
            rotation.set_broker_password(device_id, self.broker_admin(), self.clock)

    def raise_alarm(self, alarm: Alarm) -> None:
        alarm_out.raise_alarm(alarm, self.broker_admin, self._client, self.cfg.sentinel.webhook_url)

