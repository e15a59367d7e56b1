"""A witness of the audit log: it keeps the gateway's signed checkpoints
(sequence, head hash, time) in an append-only file of its own, on another
host in production, so that `veilpost audit verify --witness` can tell when
the log was truncated, emptied, reordered or rewritten after a checkpoint it
holds, even by someone who has the gateway's whole disk.

It hears checkpoints on the retained MQTT topic vp/v1/audit/checkpoint
(under an account that may only subscribe to it, WITNESS_GRANTS) and/or as
HTTP POSTs on a loopback address (the gateway's [audit] witness_urls), and
checks each against the gateway's public key (`veilpost audit key`). It
refuses a checkpoint that is not signed by that key, that goes backwards
(older than the newest it holds and not one it already has) or that forks
(the same entry with another head). GET /checkpoints serves what it holds,
one JSON object per line, for `audit verify --witness URL`."""

from __future__ import annotations

import json
import os
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit import MAX_CHECKPOINT, BadCheckpoint, Checkpoint
from gateway.logs import log_event
from gateway.permissions import PRIVATE_FILE, private_dir
from protocol import topics
from protocol.errors import BrokerError, ConfigurationError, VeilpostError

STORE_NAME = "checkpoints.jsonl"
MAX_HELD = 200 * 1024 * 1024  # bytes of a witness file `verify --witness` reads
SKEW_MS = 300_000  # gateways sharing one log may sign with clocks this far apart


class CheckpointRefused(VeilpostError):
    """The witness will not keep this checkpoint; the message says why."""


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """The gateway's public key as `veilpost audit key` prints it (64 hex digits)."""
    value = text.strip()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigurationError("the gateway's public key must be 64 hex digits (`veilpost audit key`)")
    return Ed25519PublicKey.from_public_bytes(raw)


def _parse_lines(text: str, where: str) -> list[Checkpoint]:
    held = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            held.append(Checkpoint.from_json(json.loads(line)))
        except (ValueError, BadCheckpoint) as e:
            if number == len(lines) and not text.endswith("\n"):
                break  # a line torn by a crash while it was written: never acknowledged
            raise ConfigurationError("%s line %d is not a checkpoint: %s" % (where, number, e)) from None
    return held


class WitnessLog:
    """The witness's own store: one JSON line per checkpoint, appended and
    flushed to disk before it is acknowledged; never rewritten."""

    def __init__(self, folder: Path, public_key: Ed25519PublicKey) -> None:
        self.folder = private_dir(Path(folder))
        self.path = self.folder / STORE_NAME
        self.public_key = public_key
        self._lock = threading.Lock()
        self.held: dict[int, Checkpoint] = {}
        self.newest: Checkpoint | None = None
        if self.path.exists():
            for c in _parse_lines(self.path.read_text(encoding="utf-8"), str(self.path)):
                if not c.valid(public_key):
                    raise ConfigurationError("%s holds a checkpoint at entry %d that this key did not sign:"
                                             " the wrong --key, or a tampered file" % (self.path, c.seq))
                self._hold(c)

    def _hold(self, c: Checkpoint) -> None:
        self.held[c.seq] = c
        if self.newest is None or c.seq > self.newest.seq:
            self.newest = c

    def accept(self, c: Checkpoint) -> bool:
        """Keep `c` (True), or say it is already held (False); CheckpointRefused otherwise."""
        if not c.valid(self.public_key):
            raise CheckpointRefused("checkpoint at entry %d is not signed by the gateway's key" % c.seq)
        with self._lock:
            known = self.held.get(c.seq)
            if known is not None:
                if known.head != c.head:
                    raise CheckpointRefused("checkpoint at entry %d forks: the witness holds another head"
                                            " for that entry" % c.seq)
                return False
            if self.newest is not None and c.seq < self.newest.seq:
                raise CheckpointRefused("checkpoint at entry %d goes backwards: the witness holds entry %d"
                                        % (c.seq, self.newest.seq))
            if self.newest is not None and c.at_ms < self.newest.at_ms - SKEW_MS:
                raise CheckpointRefused("checkpoint at entry %d is dated more than %d s before the witness's"
                                        " newest" % (c.seq, SKEW_MS // 1000))
            line = json.dumps({**c.to_json(), "received": int(time.time() * 1000)}, sort_keys=True) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._hold(c)
        return True

    def receive(self, payload: bytes, via: str) -> str:
        """One checkpoint as it arrived; what happened, in a word (added, known, refused)."""
        try:
            c = Checkpoint.from_wire(payload)
            added = self.accept(c)
        except (BadCheckpoint, CheckpointRefused) as e:
            log_event("witness-refused", via=via, why=str(e))
            return "refused: %s" % e
        if added:
            log_event("witness-checkpoint", via=via, seq=c.seq, head=c.head.hex())
        return "added" if added else "known"


# ---- reading a witness's checkpoints (audit verify --witness) -------------------------


def load_witnessed(source: str, timeout: float = 10.0) -> list[Checkpoint]:
    """The checkpoints a witness holds: from its folder or file, or from its
    HTTP address (GET .../checkpoints)."""
    if source.startswith(("http://", "https://")):
        url = source.rstrip("/").removesuffix("/checkpoint")  # the address POSTs go to will do
        if not url.endswith("/checkpoints"):
            url += "/checkpoints"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                text = response.read(MAX_HELD + 1).decode("utf-8")
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as e:
            why = getattr(e, "reason", e)
            raise BrokerError("the witness at %s cannot be read: %s" % (url, why)) from None
        return _parse_lines(text, url)
    path = Path(source)
    if path.is_dir():
        path = path / STORE_NAME
    try:
        if path.stat().st_size > MAX_HELD:
            raise ConfigurationError("%s is larger than %d bytes" % (path, MAX_HELD))
        return _parse_lines(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError("cannot read the witness's checkpoints at %s: %s" % (path, e)) from None


# ---- hearing checkpoints: HTTP and MQTT ---------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # the witness logs what it keeps or refuses, not every request

    def _answer(self, code: int, text: str, kind: str = "text/plain; charset=utf-8") -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.rstrip("/") != "/checkpoints":
            self._answer(404, "GET /checkpoints\n")
            return
        log = self.server.log
        text = log.path.read_text(encoding="utf-8") if log.path.exists() else ""
        self._answer(200, text, "application/x-ndjson")

    def do_POST(self) -> None:  # noqa: N802
        if self.path.rstrip("/") != "/checkpoint":
            self._answer(404, "POST /checkpoint\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, "a Content-Length is needed\n")
            return
        if not 0 < length <= MAX_CHECKPOINT:
            self._answer(413, "a checkpoint is at most %d bytes\n" % MAX_CHECKPOINT)
            return
        outcome = self.server.log.receive(self.rfile.read(length), "http")
        code = 201 if outcome == "added" else 200 if outcome == "known" else 409
        self._answer(code, outcome + "\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log: WitnessLog) -> None:
        self.log = log
        super().__init__(address, _Handler)


@dataclass(frozen=True)
class BrokerSource:
    """Where the witness subscribes: the gateway's broker, a witness account."""

    host: str
    port: int
    username: str = ""
    password: str = ""
    ca_file: str = ""


class Witness:
    """A running witness: an HTTP listener and/or an MQTT subscription, both
    feeding one WitnessLog."""

    def __init__(self, log: WitnessLog, listen: tuple[str, int] | None = None,
                 broker: BrokerSource | None = None) -> None:
        if listen is None and broker is None:
            raise ConfigurationError("a witness needs --listen HOST:PORT, --broker HOST:PORT or both")
        self.log = log
        self._listen = listen
        self._broker = broker
        self._server: _Server | None = None
        self._client: Any = None
        self.subscribed = threading.Event()
        self.refused: str | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server is not None else 0

    def start(self, timeout: float = 10.0) -> None:
        if self._listen is not None:
            try:
                self._server = _Server(self._listen, self.log)
            except OSError as e:
                raise ConfigurationError("the witness cannot listen on %s:%d: %s"
                                         % (self._listen[0], self._listen[1], e.strerror or e)) from None
            threading.Thread(target=self._server.serve_forever, name="veilpost-witness-http",
                             daemon=True).start()
        if self._broker is not None:
            self._subscribe(self._broker, timeout)

    def _subscribe(self, b: BrokerSource, timeout: float) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vp-witness-" + secrets.token_hex(4),
                             protocol=mqtt.MQTTv311)
        if b.username:
            client.username_pw_set(b.username, b.password)
        if b.ca_file:
            client.tls_set(ca_certs=b.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)

        def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if getattr(reason, "is_failure", False):
                self.refused = str(reason)
                self.subscribed.set()
                return
            c.subscribe(topics.AUDIT_CHECKPOINT, qos=1)

        def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
            if any(getattr(r, "value", r) >= 0x80 for r in reasons or []):
                self.refused = "subscription to %s refused" % topics.AUDIT_CHECKPOINT
            self.subscribed.set()

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            if message.payload:
                self.log.receive(bytes(message.payload), "mqtt")

        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        try:
            client.connect(b.host, b.port, keepalive=30)
        except OSError as e:
            raise BrokerError("the broker at %s:%d cannot be reached: %s"
                              % (b.host, b.port, e.strerror or e)) from None
        client.loop_start()
        self._client = client
        if not self.subscribed.wait(timeout) or self.refused:
            self.stop()
            raise BrokerError("the broker at %s:%d refused the witness: %s"
                              % (b.host, b.port, self.refused or "no answer in %g s" % timeout))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
