# A small MQTT 3.1.1 client for the handheld. Same source on MicroPython and
# CPython. The packet functions at the top are pure (bytes in, values out) so
# they run in the MicroPython VM without sockets; MQTTClient drives them over
# any object with send/recv (or write/read), non-blocking, and never waits
# for an acknowledgement: poll(now) reads what has arrived and reports it.
#
# Supported: CONNECT with username/password and clean_session=False,
# keepalive PINGREQ, SUBSCRIBE, PUBLISH QoS 0 and 1 both ways, redelivery of
# unacknowledged QoS 1 with the DUP flag after a reconnect (DUP=0 on a
# message's first transmission, even one queued while offline), DISCONNECT.
# Not supported: QoS 2 (MQTTError). A PUBLISH over max_packet is acknowledged
# and skipped unread; any other oversize packet closes the connection.
# Bytes arrive into one receive buffer allocated at start and reused (read
# with readinto/recv_into, never a fresh recv(n) object per read): it grows
# only to hold the largest packet seen, so a full heap fails no read.

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x80
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

MAX_PACKET = 20000
RECV_BUFFER = 1536  # bytes of the receive buffer at start; it grows to the largest packet
MIN_BACKOFF = 0.5   # seconds: the shortest wait before a reconnect
MAX_BACKOFF = 8     # seconds: the longest, default of the mqtt.max_backoff config key

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class MQTTError(Exception):
    pass


# ---- pure packet encoding and decoding ------------------------------------

def _varint(n):
    # MQTT "remaining length": 7 bits per byte, low first, at most 4 bytes.
    if n < 0 or n > 268435455:
        raise MQTTError("remaining length out of range: " + str(n))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    if len(s) > 65535:
        raise MQTTError("string longer than 65535 bytes")
    return len(s).to_bytes(2, "big") + s


def _packet(first, body):
    return bytes((first,)) + _varint(len(body)) + body


def encode_connect(client_id, username=None, password=None, keepalive=60, clean_session=False,
                   will=None):
    # will = (topic, payload, qos, retain) or None
    flags = 0
    if clean_session:
        flags |= 0x02
    body = b"\x00\x04MQTT\x04"
    tail = _str(client_id)
    if will is not None:
        flags |= 0x04 | (will[2] << 3)
        if will[3]:
            flags |= 0x20
        tail += _str(will[0]) + _str(will[1])
    if username is not None:
        flags |= 0x80
        tail += _str(username)
    if password is not None:
        flags |= 0x40
        tail += _str(password)
    body += bytes((flags,)) + keepalive.to_bytes(2, "big") + tail
    return _packet(CONNECT, body)


def encode_publish(topic, payload, qos=0, pid=0, retain=False, dup=False):
    if qos not in (0, 1):
        raise MQTTError("QoS " + str(qos) + " is not supported")
    first = PUBLISH | (qos << 1)
    if retain:
        first |= 0x01
    if dup:
        first |= 0x08
    body = _str(topic)
    if qos:
        body += pid.to_bytes(2, "big")
    return _packet(first, body + payload)


def encode_puback(pid):
    return bytes((PUBACK, 2)) + pid.to_bytes(2, "big")


def encode_subscribe(pid, topics):
    # topics: list of (topic, qos)
    body = pid.to_bytes(2, "big")
    for topic, qos in topics:
        body += _str(topic) + bytes((qos,))
    return _packet(SUBSCRIBE | 0x02, body)


def encode_pingreq():
    return bytes((PINGREQ, 0))


def encode_disconnect():
    return bytes((DISCONNECT, 0))


def read_header(buf):
    """(first_byte, remaining_length, header_length) at the front of buf, or
    None when more bytes are needed. Raises MQTTError on a bad length."""
    n = 0
    shift = 0
    i = 1
    while True:
        if i >= len(buf):
            return None
        if i > 4:
            raise MQTTError("remaining length longer than 4 bytes")
        b = buf[i]
        n |= (b & 0x7F) << shift
        shift += 7
        i += 1
        if not b & 0x80:
            return buf[0], n, i


def split_packet(buf, max_packet=MAX_PACKET):
    """One complete packet from the front of buf: (first_byte, body, used),
    or None when more bytes are needed. Raises MQTTError on bad framing."""
    head = read_header(buf)
    if head is None:
        return None
    first, n, i = head
    if n > max_packet:
        raise MQTTError("packet of " + str(n) + " bytes is over the limit of " + str(max_packet))
    if len(buf) < i + n:
        return None
    return first, bytes(buf[i:i + n]), i + n


def decode_publish(first, body):
    """(topic, payload, qos, pid, retain, dup) of a PUBLISH body."""
    qos = (first >> 1) & 0x03
    if qos > 1:
        raise MQTTError("QoS " + str(qos) + " publish is not supported")
    if len(body) < 2:
        raise MQTTError("publish too short for its topic length")
    tlen = (body[0] << 8) | body[1]
    pos = 2 + tlen
    if len(body) < pos + (2 if qos else 0):
        raise MQTTError("publish shorter than its topic")
    try:
        topic = body[2:pos].decode()
    except UnicodeError:
        raise MQTTError("publish topic is not UTF-8")
    pid = 0
    if qos:
        pid = (body[pos] << 8) | body[pos + 1]
        pos += 2
    return topic, body[pos:], qos, pid, bool(first & 0x01), bool(first & 0x08)


def decode_pid(body):
    if len(body) < 2:
        raise MQTTError("acknowledgement without a packet id")
    return (body[0] << 8) | body[1]


# ---- the client --------------------------------------------------------------

class MQTTClient:
    """Non-blocking MQTT session over a connected socket-like object.

    connect(sock, now) sends CONNECT; poll(now) returns events:
      ("connected", session_present)  ("message", topic, payload, retain)
      ("acked", pid)  ("subscribed", pid, granted)  ("closed", reason)
      ("refused", CONNACK return code), just before its ("closed", reason)
      ("dropped", reason): an oversize PUBLISH, acknowledged and skipped
    publish() queues bytes and returns at once (the pid for QoS 1). QoS 1
    messages stay in `inflight` until their PUBACK, and are resent with DUP
    after the next connect."""

    def __init__(self, client_id, username=None, password=None, keepalive=60,
                 clean_session=False, max_inflight=16, max_packet=MAX_PACKET, will=None,
                 max_backoff=MAX_BACKOFF):
        self.client_id = client_id
        self.username = username
        self.password = password
        self.keepalive = keepalive
        self.clean_session = clean_session
        self.max_inflight = max_inflight
        self.max_packet = max_packet
        self.will = will
        self.max_backoff = max_backoff
        self.sock = None
        self.connected = False
        self.inflight = []          # [[pid, topic, payload, retain, sent]], oldest first
        self._pid = 0
        self._buf = bytearray(RECV_BUFFER)   # received bytes are _buf[_pos:_have]
        self._view = memoryview(self._buf)
        self._pos = 0
        self._have = 0
        self._out = bytearray()
        self._last_out = 0
        self._last_in = 0
        self._ping_sent = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self._events = []
        self._discard = 0           # bytes of an oversize packet still to skip

    # -- outgoing
    def _next_pid(self):
        while True:
            self._pid = self._pid % 65535 + 1
            busy = False
            for item in self.inflight:
                if item[0] == self._pid:
                    busy = True
            if not busy:
                return self._pid

    def _queue(self, data):
        self._out += data
        self._flush()

    def _flush(self):
        while self._out and self.sock is not None:
            try:
                if hasattr(self.sock, "send"):
                    n = self.sock.send(self._out)
                else:
                    n = self.sock.write(self._out)
            except OSError as e:
                if _would_block(e):
                    return
                self._lost("send failed: " + str(e))
                return
            if not n:
                return
            self.bytes_sent += n
            self._out = self._out[n:]

    def connect(self, sock, now):
        self.sock = sock
        self.connected = False
        self._pos = self._have = 0
        if len(self._buf) < RECV_BUFFER:
            self._buf = bytearray(RECV_BUFFER)
            self._view = memoryview(self._buf)
        self._out = bytearray()
        self._discard = 0
        self._last_in = now
        self._last_out = now
        self._ping_sent = 0
        self._queue(encode_connect(self.client_id, self.username, self.password,
                                   self.keepalive, self.clean_session, self.will))

    def publish(self, topic, payload, qos=0, retain=False, now=0):
        """Queue a PUBLISH; returns its pid (0 for QoS 0). Raises MQTTError when
        QoS 1 is asked for and `max_inflight` messages are still unacknowledged."""
        pid = 0
        if qos:
            if len(self.inflight) >= self.max_inflight:
                raise MQTTError("too many unacknowledged messages")
            pid = self._next_pid()
            # sent: queued on a connection once, so any later copy is a redelivery (DUP).
            self.inflight.append([pid, topic, payload, retain, self.connected])
        if self.connected:
            self._queue(encode_publish(topic, payload, qos, pid, retain))
            self._last_out = now or self._last_out
        return pid

    def subscribe(self, topics, now=0):
        pid = self._next_pid()
        self._queue(encode_subscribe(pid, topics))
        return pid

    def disconnect(self):
        if self.sock is not None and self.connected:
            self._queue(encode_disconnect())
        self._close()

    def _close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.connected = False

    def drop(self, reason):
        """Close the socket without DISCONNECT (the broker will publish any will);
        a ("closed", reason) event follows on the next poll."""
        if self.sock is not None:
            self._lost(reason)

    def _lost(self, reason):
        self._close()
        self._events.append(("closed", reason))

    # -- incoming
    def poll(self, now):
        if self.sock is not None:
            self._flush()
        eof = False
        while self.sock is not None:
            if not self._room():
                break
            try:
                n = _read_into(self.sock, self._view[self._have:])
            except OSError as e:
                if _would_block(e):
                    break
                self._lost("receive failed: " + str(e))
                break
            if n is None:
                break
            if not n:
                eof = True   # read what came before the close first: a refusal says why
                break
            self.bytes_received += n
            self._have += n
            self._last_in = now
        while self.sock is not None:
            try:
                if self._discard:
                    if not self._skip():
                        break
                    continue
                pending = self._view[self._pos:self._have]
                head = read_header(pending)
                if head is not None and head[1] > self.max_packet:
                    if not self._refuse_oversize(head, pending):
                        break
                    continue
                got = split_packet(pending, self.max_packet)
                if got is None:
                    break
                first, body, used = got
                self._consume(used)
                self._handle(first, body, now)
            except MQTTError as e:
                self._lost("protocol error: " + str(e))
        if eof and self.sock is not None:
            self._lost("connection closed by broker")
        if self.sock is not None:
            self._keepalive(now)
        events = self._events
        self._events = []
        return events

    def _handle(self, first, body, now):
        kind = first & 0xF0
        if kind == CONNACK:
            if len(body) != 2:
                raise MQTTError("CONNACK of " + str(len(body)) + " bytes")
            if body[1]:
                reason = CONNACK_REASONS.get(body[1], "code " + str(body[1]))
                self._events.append(("refused", body[1]))
                self._lost("broker refused the connection: " + reason)
                return
            self.connected = True
            self._events.append(("connected", bool(body[0] & 1)))
            for item in self.inflight:
                self._queue(encode_publish(item[1], item[2], 1, item[0], item[3], dup=item[4]))
                item[4] = True
        elif not self.connected:
            raise MQTTError("packet type " + hex(kind) + " before CONNACK")
        elif kind == PUBLISH:
            topic, payload, qos, pid, retain, _dup = decode_publish(first, body)
            if qos:
                self._queue(encode_puback(pid))
            self._events.append(("message", topic, payload, retain))
        elif kind == PUBACK:
            pid = decode_pid(body)
            for i in range(len(self.inflight)):
                if self.inflight[i][0] == pid:
                    self.inflight.pop(i)
                    self._events.append(("acked", pid))
                    break
        elif kind == SUBACK:
            pid = decode_pid(body)
            self._events.append(("subscribed", pid, list(body[2:])))
        elif kind == PINGRESP:
            self._ping_sent = 0
        else:
            raise MQTTError("unexpected packet type " + hex(kind))

    def _room(self):
        """Space at the end of the receive buffer for the next read (False
        when the packet there must be handled first): move what is still
        unread to the front, or grow the buffer to the size of the one
        unfinished packet it holds (never past max_packet and its header;
        an oversize packet is skipped, not buffered)."""
        if self._have < len(self._buf):
            return True
        if self._pos:
            self._consume(0)
            return self._have < len(self._buf)
        try:
            head = read_header(self._view[:self._have])
        except MQTTError:
            return False          # the parser says why
        if head is None or head[1] > self.max_packet or head[1] + head[2] <= self._have:
            return False
        grown = bytearray(head[1] + head[2])
        memoryview(grown)[:self._have] = self._view[:self._have]
        self._buf = grown
        self._view = memoryview(grown)
        return True

    def _consume(self, used):
        """Forget `used` bytes from the front of what is unread; the rest
        moves to the buffer's start in blocks that never overlap."""
        self._pos += used
        rest = self._have - self._pos
        if not rest:
            self._pos = self._have = 0
            return
        if self._pos < len(self._buf) // 2 and self._have < len(self._buf):
            return    # room is left at the end: move nothing yet
        v = self._view
        src = self._pos
        step = self._pos
        dst = 0
        while dst < rest:
            k = min(step, rest - dst)
            v[dst:dst + k] = v[src:src + k]
            dst += k
            src += k
        self._pos = 0
        self._have = rest

    def _refuse_oversize(self, head, pending):
        """An oversize PUBLISH is acknowledged (so the broker does not send it
        again after every reconnect) and its bytes skipped as they arrive,
        never buffered. False when more bytes are needed to read its pid."""
        first, n, hlen = head
        if first & 0xF0 != PUBLISH:
            raise MQTTError("packet of " + str(n) + " bytes is over the limit of " + str(self.max_packet))
        if (first >> 1) & 0x03:
            if len(pending) < hlen + 2:
                return False
            at = hlen + 2 + ((pending[hlen] << 8) | pending[hlen + 1])
            if len(pending) < at + 2:
                return False
            self._queue(encode_puback((pending[at] << 8) | pending[at + 1]))
        self._discard = hlen + n
        self._events.append(("dropped", "publish of " + str(n) + " bytes is over the limit of "
                             + str(self.max_packet)))
        return True

    def _skip(self):
        k = min(self._discard, self._have - self._pos)
        self._consume(k)
        self._discard -= k
        return self._discard == 0

    def release(self):
        """After a memory fault: a grown receive buffer is let go (what it
        held is lost with the connection, which the caller drops); connect()
        makes one of the first size again, after the caller has collected."""
        self._pos = self._have = 0
        self._discard = 0
        self._out = bytearray()
        if len(self._buf) > RECV_BUFFER:
            self._buf = bytearray(0)          # the next connect makes the first-size one
            self._view = memoryview(self._buf)

    def _keepalive(self, now):
        if not self.keepalive:
            return
        if self._ping_sent and now - self._ping_sent >= self.keepalive:
            self._lost("no PINGRESP within " + str(self.keepalive) + " s")
            return
        if not self._ping_sent and now - self._last_out >= self.keepalive * 0.5:
            self._queue(encode_pingreq())
            self._last_out = now
            self._ping_sent = now

    def retry_delay(self, attempt, rand):
        """Seconds to wait before reconnect attempt `attempt` (0-based):
        exponential backoff with full jitter, never over `max_backoff` (so a
        fleet is back within seconds of a broker restart); `rand` is a float
        in [0, 1) from the HAL."""
        ceiling = min(self.max_backoff, 1 << min(attempt, 16))
        return MIN_BACKOFF + rand * max(ceiling - MIN_BACKOFF, 0)


def _read_into(sock, view):
    """Bytes read into `view` (0 at end of stream, None when none waits),
    without allocating: readinto on MicroPython's sockets and streams,
    recv_into on CPython's."""
    if hasattr(sock, "readinto"):
        return sock.readinto(view)
    return sock.recv_into(view)


def _would_block(e):
    # EAGAIN (11) / EWOULDBLOCK, EINPROGRESS (115), and CPython's ssl want-read.
    code = e.args[0] if e.args else 0
    return code in (11, 35, 115) or type(e).__name__ in ("SSLWantReadError", "SSLWantWriteError",
                                                           "BlockingIOError")


def open_socket(host, port, tls=None, timeout=10):
    """A connected, non-blocking socket to host:port. tls is None for plain
    TCP or a dict: {"cafile": path} or {"cadata": bytes}, plus optional
    "server_hostname" (defaults to host)."""
    import socket
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(addr)
        if hasattr(socket, "IPPROTO_TCP") and hasattr(socket, "TCP_NODELAY"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if tls.get("cafile"):
                ctx.load_verify_locations(cafile=tls["cafile"])
            elif tls.get("cadata"):
                ctx.load_verify_locations(cadata=tls["cadata"])
            else:
                raise MQTTError("TLS is configured without a CA certificate")
            sock = ctx.wrap_socket(sock, server_hostname=tls.get("server_hostname") or host)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
