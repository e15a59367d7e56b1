"""Notice sinks on 127.0.0.1 for tests and the bench: a real SMTP server
(aiosmtpd) and an HTTP SMS gateway (http.server), each keeping what it
received. The SMS sink can answer the first N posts with 503, and drops a
post whose Idempotency-Key it has already accepted, as real gateways do."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SmtpSink:
    """aiosmtpd on a free local port; `messages` holds every mail received."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        sink = self

        class _Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                msg = message_from_bytes(envelope.content, policy=policy.default)
                sink.messages.append(msg)  # type: ignore[arg-type]
                sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 OK"

        with socket.socket() as s:  # the controller checks its own port, so it needs a real one
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.host = "127.0.0.1"
        self._controller = Controller(_Handler(), hostname=self.host, port=self.port)
        self._controller.start()

    def close(self) -> None:
        self._controller.stop()


class SmsSink:
    """An HTTP SMS gateway: POST JSON {"to", "text", "id"}; `received` holds
    the accepted posts, `posts` counts every post (refused ones too)."""

    def __init__(self, fail_first: int = 0, token: str = "") -> None:
        self.received: list[dict[str, Any]] = []
        self.posts = 0
        self.fail_first, self.token = fail_first, token
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        sink = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 65536))
                with sink._lock:
                    sink.posts += 1
                    if sink.token and self.headers.get("Authorization") != "Bearer " + sink.token:
                        self._answer(401)
                        return
                    if sink.posts <= sink.fail_first:
                        self._answer(503)
                        return
                    try:
                        data = json.loads(body)
                    except ValueError:
                        self._answer(400)
                        return
                    key = str(self.headers.get("Idempotency-Key") or "")
                    if key and key in sink._keys:
                        self._answer(200)  # a duplicate: accepted, not sent again
                        return
                    sink._keys.add(key)
                    sink.received.append(data)
                self._answer(200)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.port = int(self._server.server_address[1])
        self.url = "http://127.0.0.1:%d/sms" % self.port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
