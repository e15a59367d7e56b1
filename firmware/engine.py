# The engine of the handheld's state machine. What happens to it (badge and
# label scans, typed text, key presses, MQTT payloads, link up or down,
# clock ticks, with `now` passed in) becomes one event, and fire() carries
# out the row firmware/states.py's table has for it: a new state and the
# actions, which are firmware/app.py's App methods. Outputs: screens on
# hal.display and (topic, payload, qos, tag) tuples in `outbox` for the
# transport to publish.

from firmware import batch, commands, i18n, screen, states, wire
from firmware.offline import OfflineQueue, QueueFull, SequenceBlock
from firmware.states import BOOT, PARCEL, READY
from firmware.tokens import TokenStore
from protocol import topics
from protocol.errors import REPLAYED, ProtocolError

LOG_LINES = 20
OFFLINE_LEASE = 12 * 3600   # seconds without a word from the gateway before every token goes


class Engine:
    def __init__(self, hal, config):
        self.hal = hal
        self.config = config
        self.lang = config.get("lang", "zh-Hans")
        self.device_id = config.get("device_id")
        self.tokens = TokenStore(config.get("display_ttl", 30))
        self.queue = OfflineQueue(hal.flash, config.get("queue_limit", 200))
        self.uploads = batch.Uploads(self.queue, config.get("batch_resend", batch.BATCH_RESEND),
                                     config.get("unavailable_retry", batch.UNAVAILABLE_RETRY))
        self.outbox = []
        self.state = BOOT
        self.since = 0             # when the state was entered (or its wait started again)
        self.online = False
        self.channel = None
        self.retiring = None       # the channel before a key rotation, to open what was sealed under it
        self.master = None
        self.session = None
        self.courier = None
        self.badge = None
        self.pin = ""
        self.route_id = None
        self.routes = []
        self.parcels = {}          # tracking_no -> masked parcel fields
        self.delivered = {}        # tracking_no -> True, sealed on this device
        self.current = None        # tracking_no on screen
        self.proof = None          # the QR bytes of its label, if that is how it came (RAM only)
        self.scanned_at = 0
        self.rescan_at = None      # send the label scan again then (the gateway could not record it)
        self.pick = []             # fields picked for the next reveal
        self.code = ""             # proof-of-delivery code being typed
        self.req = 0
        self.scans_since_preissue = 0
        self.pending = None        # (req, tracking_no, fields, reason) awaiting the gateway
        self.log_lines = []        # the last LOG_LINES lines, for the simulator and the tests
        self.last_denial = None    # why the last reveal was refused, as shown
        self.last_code = 0         # its denial code (messages.DENY_*); 0 when it has none
        self.notice = None
        self.heard_command = False # a command came this boot (a retained one seen again is old)
        self.heard_at = None       # when the gateway last spoke (an opened message); None: never since boot

    # ---- the state machine
    def fire(self, event, value, now):
        """Carry out the row of firmware/states.py for `event` in this state."""
        while True:
            row = states.step(self.state, event)
            if row is None:
                return
            new, actions = row
            redirect = None
            for name in actions:
                redirect = getattr(self, name)(value, now)
                if redirect:
                    break
            if not redirect:
                break
            event = redirect       # a guard answered: look that up instead
        if new is not None and new != self.state:
            self.state = new
            self.since = now

    def t(self, key, *values):
        return i18n.text(self.lang, key, *values)

    def render(self, now):
        screen.render(self, now)

    def parcel_lines(self, tracking_no, now):
        return screen.parcel_lines(self, tracking_no, now)

    def log(self, line):
        self.log_lines.append(line)
        del self.log_lines[:-LOG_LINES]
        print("veilpost: " + line)

    # ---- what happens
    def boot(self, now):
        wire.adopt_provisioning(self.hal, self.config)
        wire.commit_key(self.hal)    # a rotation a reboot interrupted
        self.device_id = self.config.get("device_id")
        master = self.hal.keystore.get("master")
        if not master or not self.device_id or not topics.valid_id(self.device_id):
            self.fire(states.NO_KEYS, None, now)
        else:
            self.master = bytearray(master)
            self.channel = wire.open_channel(self.master, self.device_id, self.hal,
                                             SequenceBlock(self.hal.flash))
            self.fire(states.PROVISIONED, None, now)
        self.render(now)

    def on_scan(self, text, now):
        self.on_input("scan", text, now)

    def on_typed(self, text, now):
        self.on_input("typed", text, now)

    def on_input(self, kind, text, now):
        """A scanner read ("scan") or a typed line ("typed")."""
        event, value = states.scan_event(kind, text)
        self.fire(event, value, now)
        self.render(now)

    def on_key(self, key, now):
        self.fire(states.key_event(key), key, now)
        self.render(now)

    def on_link(self, up, now):
        self.online = up
        self.fire(states.LINK_UP if up else states.LINK_DOWN, None, now)
        self.render(now)

    def on_refused(self, code, now):
        """The broker refused our credentials (CONNACK 4 or 5)."""
        self.fire(states.REFUSED, code, now)
        self.render(now)

    def on_acked(self, tag, now):
        pass   # the broker has a message; only the gateway's batch_ack frees the queue

    def on_message(self, topic, payload, now):
        if self.channel is None or states.GROUPS.get(self.state) == states.SILENT or not payload:
            return                     # an empty payload clears a retained command
        if topic != topics.down(self.device_id) and topic != topics.cmd(self.device_id):
            # A broker may deliver another topic's retained message: not ours to read.
            self.log("ignored a message on " + str(topic) + ", not this device's topic")
            return
        is_cmd = topic == topics.cmd(self.device_id)
        try:
            opened, keep = commands.open_payload(self.channel, self.retiring, payload, now)
        except ProtocolError as e:
            # A retained command seen again is not news, except the first time
            # after a reboot: the lock it carries still stands.
            opened = None
            if e.code == REPLAYED and is_cmd and not self.heard_command:
                opened = commands.reopen(self.channel, self.hal, payload, now)
            if opened is None:
                if e.code != REPLAYED:
                    self.log("message not opened: " + e.message)
                    self.notice = self.t("error", i18n.error(self.lang, e.code))
                    self.render(now)
                return
            keep = self.retiring is not None
        self.heard_at = now
        if is_cmd:
            self.heard_command = True
            commands.remember(self.hal, payload)
        if not keep:
            self.retiring = None       # the gateway speaks the new key: the old one is done
        name, fields, _seq = opened
        self.fire(states.message_event(name, fields), fields, now)
        self.render(now)

    def tick(self, now):
        if self.heard_at is None:
            self.heard_at = now
        elif (self.session is not None or self.tokens.offline or self.tokens.shown) and \
                now - self.heard_at >= self.config.get("offline_lease", OFFLINE_LEASE):
            self.fire(states.LEASE_OVER, None, now)
            self.render(now)
        if self.tokens.tick(now) and self.state in (PARCEL, READY):
            self.render(now)
        self.tokens.expire_offline(now)
        if self.online and self.uploads.due(now):
            self.upload(None, now)
        if self.rescan_at is not None and now >= self.rescan_at:
            self.rescan_at = None
            if self.online and self.proof is not None:
                self._send_scan(now)
        wait = states.TIMEOUTS.get(self.state)
        if wait is not None and now - self.since >= self.config.get(wait[0], wait[1]):
            self.fire(states.TIMEOUT, None, now)
            self.render(now)

    # ---- sending
    def send(self, name, fields, now, qos=1, tag=None):
        ch = self.channel
        if ch is None:
            return
        payload = ch.wrap(name, fields, now)
        self.outbox.append((topics.up(self.device_id), payload, qos, tag))

    def request_preissue(self, now):
        """Ask for offline tokens (the gateway decides which parcels: those
        whose labels this device scanned during the shift)."""
        if self.online and self.session:
            self.scans_since_preissue = 0
            wanted = self.config.get("preissue_fields")   # None: the gateway's default, the phone
            fields = list(wanted) if wanted else None
            self.send("preissue_request", {"session": self.session, "fields": fields}, now)

    def _queue(self, name, fields, now):
        """Into the flash queue (False when it is full), then up when online."""
        try:
            self.uploads.add(name, fields, now)
        except QueueFull:
            self.notice = self.t("queue_full")
            return False
        if not self.online:
            self.notice = self.t("queued", len(self.queue))
        self.upload(None, now)
        return True

    def _send_scan(self, now):
        self.send("scan", {"tracking_no": self.current, "session": self.session or b"", "label": self.proof},
                  now)

    def upload(self, value, now):
        if self.online:
            fields = self.uploads.next_batch(now)
            if fields is not None:
                self.send("batch", fields, now)
