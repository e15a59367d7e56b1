"""Taking over the work of a gateway that died.

Gateways share `$share/veilpost/...`, each with a persistent MQTT session.
Mosquitto keeps handing a dead gateway's session its share of the messages,
and keeps the ones it had received but not acknowledged (a gateway
acknowledges only after its batch commits). Nothing is lost, but all of it
waits for that gateway to come back.

So every gateway watches `vp/v1/gw/+/status`. When a peer has been
"offline" for GRACE seconds (its will message after kill -9, or its own
goodbye), one survivor, chosen by a lease row in the shared store, connects
a second gateway service under the peer's MQTT client id: the broker hands
it the peer's session, queue and unacknowledged messages included, and
keeps routing the peer's share to it. When the peer starts again it takes
its session back (the broker disconnects the adopter, which then stops
without reconnecting). Decisions stay correct because both services use the
shared store under its lock; a message delivered twice around the handover
is refused by the replay window.

Both halves are Lifecycle hooks of a GatewayService (gateway/service.py):
`Takeover` on the gateway's own service, `Adoption` on each adopted one.
gateway/supervisor.py puts them together.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.audit import AuditLog
from gateway.home import Home
from gateway.logs import log_event
from gateway.service import GatewayService
from gateway.stores import open_store
from gateway.vault import Vault
from protocol import topics

GRACE = 2.0  # seconds "offline" must last: a peer restarting in place keeps its own session
LEASE_SECONDS = 60.0  # an adopter that stopped renewing (died) loses the lease
CLIENT_KEY = "mqtt-client:"
LEASE_KEY = "adopted:"
STATUS_FILTER = topics.ROOT + "/gw/+/status"


class Adoption:
    """The hook of a service serving a peer's MQTT session until the peer
    returns: the broker dropping it means the peer took its session back,
    so the service ends there, without reconnecting or saying goodbye."""

    def started(self, service: GatewayService) -> None:
        pass

    def disconnected(self, service: GatewayService) -> bool:
        return False

    def stopping(self, service: GatewayService) -> None:
        pass


def released(service: GatewayService) -> bool:
    """Whether an adopted service's peer has its session back."""
    return service.handed_back


def _upsert(tx: Any, key: str, value: str) -> None:
    tx.run("INSERT INTO meta (key, value) VALUES (?, ?)"
           " ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)


class Takeover:
    """The hook of a gateway that shares its work: watches its peers and
    adopts the session of one that died. It acts only where sharing is on
    (MQTT 5 on an external broker, `mqtt.shared`)."""

    def __init__(self) -> None:
        self._offline: dict[str, float] = {}
        self.adopted: dict[str, GatewayService] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watch: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self.watching = False

    # ---- Lifecycle

    def started(self, service: GatewayService) -> None:
        if service.broker is not None or not (service.cfg.mqtt.shared and service.version == 5):
            return
        self.service = service
        self.cfg = service.cfg
        self.me = self.cfg.gateway_id
        self._credentials = service.credentials
        self.start()

    def disconnected(self, service: GatewayService) -> bool:
        return True  # our own session: reconnect

    def stopping(self, service: GatewayService) -> None:
        if self.watching:
            self.stop()

    # ---- watching peers

    def start(self) -> None:
        with self.service.home.store.transaction() as tx:
            _upsert(tx, CLIENT_KEY + self.me, self.cfg.mqtt.client_id)
        watch = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.cfg.mqtt.client_id + "-watch",
                            protocol=mqtt.MQTTv5)
        if self._credentials[0]:
            watch.username_pw_set(*self._credentials)
        watch.on_connect = lambda c, *_a: c.subscribe(STATUS_FILTER, qos=1)
        watch.on_message = self._on_status
        watch.connect(self.service.host, self.service.port, keepalive=30)
        watch.loop_start()
        self._watch = watch
        self._thread = threading.Thread(target=self._run, name="veilpost-takeover", daemon=True)
        self._thread.start()
        self.watching = True

    def _on_status(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        gateway_id = msg.topic.split("/")[3]
        if gateway_id == self.me:
            return
        with self._lock:
            if msg.payload == b"offline":
                self._offline.setdefault(gateway_id, time.monotonic())
            else:
                self._offline.pop(gateway_id, None)

    def _run(self) -> None:
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            with self._lock:
                due = [g for g, since in self._offline.items()
                       if now - since >= GRACE and g not in self.adopted]
            for peer in due:
                try:
                    self.adopt(peer)
                except Exception as e:  # the watcher must outlive a failed adoption
                    log_event("adopt-failed", peer=peer, error=type(e).__name__, detail=str(e))
                with self._lock:
                    self._offline.pop(peer, None)
            for peer, service in list(self.adopted.items()):
                try:
                    if released(service):
                        self._release(peer)
                    else:
                        self._renew(peer)
                except Exception as e:
                    log_event("takeover-failed", peer=peer, error=type(e).__name__, detail=str(e))

    def _lease(self, peer: str) -> str | None:
        """The peer's MQTT client id if this gateway may adopt it now, else None."""
        with self.service.home.store.transaction() as tx:
            row = tx.one("SELECT value FROM meta WHERE key = ?", CLIENT_KEY + peer)
            if row is None:
                return None
            held = tx.one("SELECT value FROM meta WHERE key = ?", LEASE_KEY + peer)
            if held is not None:
                holder, _, at = str(held[0]).partition("|")
                if holder != self.me and time.time() - float(at or 0) < LEASE_SECONDS:
                    return None
            _upsert(tx, LEASE_KEY + peer, "%s|%f" % (self.me, time.time()))
            return str(row[0])

    def _renew(self, peer: str) -> None:
        with self.service.home.store.transaction() as tx:
            _upsert(tx, LEASE_KEY + peer, "%s|%f" % (self.me, time.time()))

    def adopt(self, peer: str) -> None:
        client_id = self._lease(peer)
        if client_id is None:
            return
        cfg = copy.deepcopy(self.cfg)
        cfg.gateway_id, cfg.mqtt.client_id, cfg.metrics.port = peer, client_id, 0
        cfg.mqtt.username, cfg.mqtt.password = self._credentials[0] or "", self._credentials[1] or ""
        keys = self.service.home.keys
        location = cfg.store or cfg.database_path
        home = Home(cfg, keys, open_store(location, cfg.durability), Vault(keys.kek),
                    AuditLog(keys), owns_keys=False)
        service = GatewayService(home, self.service.clock, hooks=[Adoption()])
        service.start()
        self.adopted[peer] = service
        log_event("adopted", peer=peer, client_id=client_id)

    def _release(self, peer: str) -> None:
        service = self.adopted.pop(peer)
        try:
            service.stop()
        finally:
            service.home.close()
        with self.service.home.store.transaction() as tx:
            tx.run("DELETE FROM meta WHERE key = ? AND value LIKE ?", LEASE_KEY + peer, self.me + "|%")
        log_event("released", peer=peer)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for peer in list(self.adopted):
            self._release(peer)
        if self._watch is not None:
            self._watch.disconnect()
            self._watch.loop_stop()

