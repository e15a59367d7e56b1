"""The gateway service: one paho MQTT client, one worker thread. The network
thread only queues payloads; the worker drains the queue in batches, handles
each message in one database transaction per batch (so the audit entries of a
whole batch share one commit), and publishes replies only after the commit.
Each device has its own Channel, whose replay window is saved in that same
commit and whose send sequence is reserved ahead in blocks."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import metrics
from gateway.handlers import Handlers, Reply, Work
from gateway.home import Home
from gateway.logs import log, log_event
from gateway.reveal import TOO_MANY
from gateway.sentinel import Alarm
from protocol import topics
from protocol.errors import ERROR_NAMES, INTERNAL, OVERSIZE, UNKNOWN_DEVICE, ProtocolError

BATCH = 256


class GatewayService:
    def __init__(self, home: Home, clock: Callable[[], float] = time.time) -> None:
        self.home = home
        self.cfg = home.config
        self.clock = clock
        self.handlers = Handlers(home, clock)
        self.inbox: queue.Queue[tuple[str, bytes, float] | None] = queue.Queue()
        self.broker: Any = None
        self.port = self.cfg.mqtt.port
        self.host = "127.0.0.1"
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None
        self._connected = threading.Event()
        self._refused = threading.Event()
        self.version = 4
        self._stopping = False
        self.processed = 0

    # ---- lifecycle

    def start(self) -> None:
        m = self.cfg.mqtt
        username, password = m.username or None, m.password or None
        if m.broker == "embedded":
            from gateway.broker import EmbeddedBroker, new_password

            self.broker = EmbeddedBroker("127.0.0.1", m.embedded_port)
            self.port = self.broker.start()
            log_event("embedded-broker", host="127.0.0.1", port=self.port)
            username, password = "vp-gateway", new_password()
            self.broker.add_gateway(username, password)
        else:
            self.host = m.broker
        if self.cfg.metrics.port:
            metrics.serve(self.cfg.metrics.port)
        self._worker = threading.Thread(target=self._work, name="veilpost-worker", daemon=True)
        self._worker.start()
        self._connect(username, password)

    def _connect(self, username: str | None, password: str | None) -> None:
        # MQTT 5 where the broker offers it (amqtt, the embedded broker, speaks 3.1.1).
        versions = {"auto": [5, 4], "5": [5], "3.1.1": [4]}[self.cfg.mqtt.version]
        if self.cfg.mqtt.broker == "embedded":
            versions = [4]
        for version in versions:
            if self._try_connect(version, username, password):
                return
        raise RuntimeError("gateway could not connect to the broker at %s:%d" % (self.host, self.port))

    def _try_connect(self, version: int, username: str | None, password: str | None) -> bool:
        m = self.cfg.mqtt
        v5 = version == 5
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=m.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             **({} if v5 else {"clean_session": False}))
        if username:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(1000)
        client.will_set(topics.gateway_status(self.cfg.gateway_id), b"offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.version = version
        self._refused.clear()
        kwargs: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600  # persistent session: QoS 1 backlog survives a restart
            kwargs = {"clean_start": False, "properties": props}
        try:
            client.connect(self.host, self.port, keepalive=30, **kwargs)
        except OSError as e:
            log_event("mqtt-connect-failed", error=str(e))
            return False
        client.loop_start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._connected.wait(0.05):
                self._client = client
                return True
            if self._refused.is_set():
                break
        client.disconnect()
        client.loop_stop()
        return False

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log_event("mqtt-refused", reason=str(reason))
            self._refused.set()
            return
        shared = self.cfg.mqtt.shared and self.version == 5
        client.subscribe(topics.SHARED_UP_FILTER if shared else topics.UP_FILTER, qos=1)
        client.publish(topics.gateway_status(self.cfg.gateway_id), b"online", qos=1, retain=True)
        log_event("mqtt-connected", host=self.host, port=self.port)
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        self._refused.set()
        if not self._stopping:
            log_event("mqtt-disconnected", reason=str(reason))

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put((msg.topic, bytes(msg.payload), time.monotonic()))

    def stop(self) -> None:
        self._stopping = True
        self.inbox.put(None)
        if self._worker:
            self._worker.join(10)
        with self.home.store.transaction() as tx:
            self.home.audit.checkpoint(tx, self.clock())
        if self._client:
            self._client.publish(topics.gateway_status(self.cfg.gateway_id), b"offline", qos=1, retain=True)
            self._client.disconnect()
            self._client.loop_stop()
        if self.broker is not None:
            self.broker.stop()

    def run_forever(self) -> None:
        self.start()
        last_checkpoint = last_retention = self.clock()
        try:
            while True:
                time.sleep(1)
                now = self.clock()
                if now - last_checkpoint >= 60:
                    with self.home.store.transaction() as tx:
                        self.home.audit.checkpoint(tx, now)
                    last_checkpoint = now
                if now - last_retention >= 3600:
                    self.handlers.retention(now)
                    last_retention = now
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ---- the worker

    def _work(self) -> None:
        while True:
            first = self.inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.inbox.put(None)
                    break
                batch.append(item)
            try:
                self._process(batch)
            except Exception:  # the worker must outlive any bug in one batch
                log.exception("batch failed; %d messages dropped", len(batch))
            self.processed += len(batch)

    def _process(self, batch: list[tuple[str, bytes, float]]) -> None:
        now = self.clock()
        work = Work()
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
        self.handlers.begin()
        try:
            with self.home.store.transaction() as tx:
                for device_id, payload, t0 in accepted:
                    work.t0 = t0
                    self._one(tx, device_id, payload, now, work)
                self.handlers.save_windows(tx)
        except Exception as e:
            # Nothing was committed: no grant may leave. Tell each device.
            log_event("commit-failed", error=type(e).__name__)
            self.handlers.forget_channels()
            work = Work(replies=[_unavailable(r.device_id, r.fields, r.t0) for r in work.replies
                                 if r.name in ("reveal_grant", "reveal_denied")])
        self._publish(work, now)

    def _one(self, tx: Any, device_id: str, payload: bytes, now: float, work: Work) -> None:
        try:
            channel = self.handlers.channel(tx, device_id)
        except ProtocolError as e:
            log_event("drop", device=device_id, why=ERROR_NAMES.get(e.code, "error"), detail=e.message)
            metrics.DROPPED.labels(ERROR_NAMES.get(e.code, "error")).inc()
            return
        if channel is None:
            log_event("drop", device=device_id, why=ERROR_NAMES[UNKNOWN_DEVICE])
            metrics.DROPPED.labels(ERROR_NAMES[UNKNOWN_DEVICE]).inc()
            return
        try:
            name, fields, _seq = channel.unwrap(payload, now)
        except ProtocolError as e:
            why = ERROR_NAMES.get(e.code, "error")
            log_event("drop", device=device_id, why=why, detail=e.message)
            metrics.DROPPED.labels(why).inc()
            if why in ("malformed", "unknown-message"):
                work.replies.append(Reply(device_id, "error", {"code": e.code, "detail": e.message}))
            return
        tx.run("SAVEPOINT msg")
        try:
            self.handlers.dispatch(tx, device_id, name, fields, now, work)
            tx.run("RELEASE SAVEPOINT msg")
        except ProtocolError as e:
            tx.run("ROLLBACK TO SAVEPOINT msg")
            tx.run("RELEASE SAVEPOINT msg")
            log_event("bad-message", device=device_id, message=name, detail=e.message)
            work.replies.append(Reply(device_id, "error", {"code": e.code, "detail": e.message}))
        except Exception as e:
            # Most likely the audit log could not be written: undo this
            # message, deny it, and keep the gateway up for the rest.
            tx.run("ROLLBACK TO SAVEPOINT msg")
            tx.run("RELEASE SAVEPOINT msg")
            log_event("handler-failed", device=device_id, message=name, error=type(e).__name__)
            if name == "reveal_request":
                work.replies.append(_unavailable(device_id, fields, work.t0))
            else:
                work.replies.append(Reply(device_id, "error", {"code": INTERNAL, "detail": "internal error"}))

    def _publish(self, work: Work, now: float) -> None:
        client = self._client
        assert client is not None
        for r in work.replies:
            try:
                payload = self.handlers.seal_reply(r.device_id, r.name, r.fields, now)
            except Exception as e:
                log_event("reply-failed", device=r.device_id, message=r.name, error=type(e).__name__)
                continue
            topic = topics.cmd(r.device_id) if r.retain else topics.down(r.device_id)
            client.publish(topic, payload, qos=1, retain=r.retain)
            if r.t0 and r.name in ("reveal_grant", "reveal_denied"):
                metrics.LATENCY.observe(time.monotonic() - r.t0)
        for alarm in work.alarms:
            self.raise_alarm(alarm)

    def raise_alarm(self, alarm: Alarm) -> None:
        body = json.dumps(alarm.as_dict(), ensure_ascii=True, sort_keys=True).encode()
        log.warning("ALARM %s", body.decode())
        if self._client is not None:
            self._client.publish(topics.ALARM, body, qos=1)
        url = self.cfg.sentinel.webhook_url
        if url.startswith(("http://", "https://")):
            threading.Thread(target=_post, args=(url, body), daemon=True).start()


def _unavailable(device_id: str, request: dict[str, Any], t0: float) -> Reply:
    return Reply(device_id, "reveal_denied", {
        "req": request["req"], "tracking_no": request["tracking_no"], "code": TOO_MANY,
        "reason": "reveal denied: audit log unavailable, try again later"}, t0=t0)


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - operator-configured URL
    except Exception as e:
        log_event("webhook-failed", error=type(e).__name__)
