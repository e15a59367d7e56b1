# The device loop: joins the app, the MQTT client and the HAL. step(now) does
# one round: input events, transport events, publish what the app queued,
# clock tick. Reconnects with backoff and jitter while the link is down.
# A MemoryError or any unexpected error in a round is caught there: what was
# on screen is zeroized, buffers are released, the heap is collected and the
# loop carries on; after MAX_FAULTS faults in a row the board restarts, with
# no plaintext left. On the ESP32 the loop feeds a watchdog.

from firmware import app as appmod
from firmware import states
from firmware.mqtt import MAX_BACKOFF, MQTTClient, MQTTError
from protocol import topics

MAX_FAULTS = 3
WATCHDOG_MS = 30000   # longer than a blocking connect (mqtt.open_socket's 10 s) with TLS


class Device:
    def __init__(self, hal, config):
        self.hal = hal
        self.config = config
        self.app = appmod.App(hal, config)
        self.mqtt = None
        self.attempt = 0
        self.retry_at = 0
        self.tags = {}          # QoS 1 packet id -> the app's tag for it
        self.last_error = None
        self.faults = 0         # rounds in a row that ended in an error

    def start(self, now):
        self.app.boot(now)
        if self.app.channel is None:
            return
        m = self.config.get("mqtt", {})
        self.mqtt = MQTTClient(self.app.device_id, m.get("username", self.app.device_id),
                               m.get("password"), keepalive=m.get("keepalive", 30),
                               clean_session=False, max_backoff=m.get("max_backoff", MAX_BACKOFF))

    def _stopped(self):
        return self.mqtt is None or self.app.state in (appmod.WIPED, appmod.LOCKED,
                                                        appmod.UNPROVISIONED)

    def _connect(self, mq, now):
        m = self.config.get("mqtt", {})
        mq.password = m.get("password", mq.password)   # a key rotation may have changed it
        try:
            sock = self.hal.open_socket(m.get("host", "127.0.0.1"), m.get("port", 1883), m.get("tls"))
        except (OSError, MQTTError) as e:
            self.last_error = "connect failed: " + str(e)
            self._schedule_retry(mq, now)
            return
        mq.connect(sock, now)

    def _schedule_retry(self, mq, now):
        rand = int.from_bytes(self.hal.random(2), "big") / 65536
        self.retry_at = now + mq.retry_delay(self.attempt, rand)
        self.attempt += 1

    def step(self, now):
        """One round of the loop; never raises (see recover)."""
        try:
            self._round(now)
            self.faults = 0
        except MemoryError:
            self.recover(None, now)
        except Exception as e:     # a bug must not leave the handheld at the REPL
            self.recover(e, now)

    def recover(self, error, now):
        """After a fault: zeroize every reveal, drop the connection and its
        buffers (the broker redelivers what was not acknowledged), collect,
        say so on screen. Restarts the board after MAX_FAULTS in a row."""
        self.faults += 1
        app = self.app
        try:
            app.tokens.wipe()               # first, before anything that allocates
            app.pending = None
            app.outbox = []
            mq = self.mqtt
            if mq is not None:
                mq.drop("memory fault" if error is None else "fault")
                mq.release()
            self.tags = {}
            self.hal.collect()
            self.last_error = "out of memory" if error is None else \
                "unexpected " + type(error).__name__ + ": " + str(error)
            app.log("recovered from " + self.last_error)
            app.fire(states.FAULT, None, now)
            app.render(now)
        except Exception:
            self.faults = MAX_FAULTS        # could not even recover: restart
        if self.faults >= MAX_FAULTS:
            try:
                app.tokens.wipe()
            except Exception:
                pass                        # it ran first thing above already
            self.hal.restart()

    def _round(self, now):
        app = self.app
        for kind, value in self.hal.inputs():
            if kind == "key":
                app.on_key(value, now)
            elif kind == "scan" or kind == "typed":
                app.on_input(kind, value, now)
        mq = self.mqtt
        if mq is None or self._stopped():
            if mq is not None and mq.sock is not None:
                mq.disconnect()
                app.on_link(False, now)
            app.outbox = []
            app.tick(now)
            return
        if mq.sock is None and now >= self.retry_at:
            self._connect(mq, now)
        for ev in mq.poll(now):
            self._on_transport(mq, ev, now)
        self.flush(mq, now)
        app.tick(now)

    def _on_transport(self, mq, ev, now):
        app = self.app
        kind = ev[0]
        if kind == "connected":
            self.attempt = 0
            self.last_error = None
            mq.subscribe([(topics.down(app.device_id), 1), (topics.cmd(app.device_id), 1)], now)
            app.on_link(True, now)
        elif kind == "message":
            app.on_message(ev[1], ev[2], now)
        elif kind == "acked":
            tag = self.tags.pop(ev[1], None)
            if tag is not None:
                app.on_acked(tag, now)
        elif kind == "refused" and ev[1] in (4, 5):
            app.on_refused(ev[1], now)   # bad credentials or not authorised: the depot disabled us
        elif kind == "dropped":
            self.last_error = ev[1]     # logged, acknowledged, never a crash
        elif kind == "closed":
            self.last_error = ev[1]
            if app.online:
                app.on_link(False, now)
            self._schedule_retry(mq, now)

    def flush(self, mq, now):
        out = self.app.outbox
        while out:
            topic, payload, qos, tag = out[0]
            if qos == 0 and not mq.connected:
                out.pop(0)
                continue
            try:
                pid = mq.publish(topic, payload, qos, now=now)
            except MQTTError as e:
                self.last_error = str(e)   # inflight is full: keep the rest for the next round
                return
            out.pop(0)
            if pid and tag is not None:
                self.tags[pid] = tag

    def go_offline(self, now):
        """The simulator's cable pull: drop the socket without DISCONNECT."""
        if self.mqtt is not None:
            self.mqtt.drop("link dropped")
            self.mqtt.poll(now)
        if self.app.online:
            self.app.on_link(False, now)


def run(hal, config):
    """The device's main loop (never returns). The watchdog restarts the
    board if a round ever hangs."""
    import time
    dev = Device(hal, config)
    dev.start(hal.now())
    dog = hal.watchdog(config.get("watchdog_ms", WATCHDOG_MS))
    while True:
        dev.step(hal.now())
        if dog is not None:
            dog.feed()
        time.sleep_ms(20)
