# The courier's handheld, as a plain state machine. It takes events (badge
# and parcel scans, key presses, MQTT payloads, link up/down, clock ticks with
# `now` passed in) and produces outputs: screens on hal.display and
# (topic, payload, qos, tag) tuples in `outbox` for the transport to publish.
#
# Flow: boot -> identity check -> login (badge + PIN) -> route -> scan ->
# reveal (reason -> token -> plaintext for at most the display TTL) ->
# proof of delivery -> that parcel's tokens dropped.

from firmware import batch, commands, i18n, screen, wire
from firmware.offline import OfflineQueue, SequenceBlock
from firmware.states import (
    BADGE,
    BOOT,
    FIELDS,
    KEY_BACK,
    KEY_DELIVER,
    KEY_ENTER,
    KEY_REVEAL,
    LOCKED,
    LOGIN_WAIT,
    PARCEL,
    PIN,
    POD,
    READY,
    REASON,
    REVEAL_WAIT,
    ROUTE_WAIT,
    UNPROVISIONED,
    WIPED,
)
from firmware.tokens import TokenStore
from protocol import cbor, masking, messages, topics
from protocol.errors import REPLAYED, ProtocolError

ROUTE_MAX_BYTES = 262144
LOG_LINES = 20
FW_VERSION = "0.1.0"


class App:
    def __init__(self, hal, config):
        self.hal = hal
        self.config = config
        self.lang = config.get("lang", "zh-Hans")
        self.device_id = config.get("device_id")
        self.tokens = TokenStore(config.get("display_ttl", 30))
        self.queue = OfflineQueue(hal.flash, config.get("queue_limit", 200))
        self.outbox = []
        self.state = BOOT
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
        self.pick = []             # fields picked for the next reveal
        self.code = ""             # proof-of-delivery code being typed
        self.req = 0
        self.pending_at = 0
        self.scans_since_preissue = 0
        self.pending = None        # (req, tracking_no, fields, reason) awaiting the gateway
        self.batch_in_flight = 0
        self.batch_sent_at = 0
        self.log_lines = []        # the last LOG_LINES lines, for the simulator and the tests
        self.last_denial = None
        self.notice = None

    # ---- screen
    def t(self, key, *values):
        return i18n.text(self.lang, key, *values)

    def render(self, now):
        screen.render(self, now)

    def parcel_lines(self, tracking_no, now):
        return screen.parcel_lines(self, tracking_no, now)

    # ---- boot and identity
    def boot(self, now):
        wire.adopt_provisioning(self.hal, self.config)
        wire.commit_key(self.hal)    # a rotation a reboot interrupted
        self.device_id = self.config.get("device_id")
        master = self.hal.keystore.get("master")
        if not master or not self.device_id or not topics.valid_id(self.device_id):
            self.state = UNPROVISIONED
            self.render(now)
            return
        self.master = bytearray(master)
        self.channel = wire.open_channel(self.master, self.device_id, self.hal,
                                         SequenceBlock(self.hal.flash))
        self._load_route()
        self.state = BADGE
        self.render(now)

    def _load_route(self):
        # The masked route survives a reboot so that offline scans still show it.
        data = self.hal.flash.read(wire.ROUTE_FILE)
        if not data:
            return
        try:
            saved = cbor.loads(data, ROUTE_MAX_BYTES, 8, ROUTE_MAX_BYTES)
            if not isinstance(saved, list) or len(saved) != 2:
                raise ProtocolError("route file is not [routes, parcels]")
            self.routes = list(saved[0])
            for p in saved[1]:
                self.parcels[p["tracking_no"]] = p
            self.route_id = ",".join(self.routes)
        except (ProtocolError, KeyError, TypeError):
            self.hal.flash.remove(wire.ROUTE_FILE)

    def _save_route(self):
        self.hal.flash.write(wire.ROUTE_FILE, cbor.dumps([self.routes, list(self.parcels.values())]))

    # ---- sending
    def send(self, name, fields, now, qos=1, tag=None):
        ch = self.channel
        if ch is None:
            return
        payload = ch.wrap(name, fields, now)
        self.outbox.append((topics.up(self.device_id), payload, qos, tag))

    # ---- link and transport events
    def on_link(self, up, now):
        self.online = up
        self.batch_in_flight = 0   # an unacked batch is resent whole by its sender
        if up and self.channel is not None:
            if self.state in (LOCKED, WIPED):
                return
            # QoS 1: the gateway activates a newly provisioned device on its first hello.
            self.send("hello", {"device": self.device_id, "fw": FW_VERSION, "lang": self.lang}, now)
            if self.state == ROUTE_WAIT and self.session:
                self.send("route_request", {"session": self.session}, now)
            batch.flush(self, now)
        self.render(now)

    def on_acked(self, tag, now):
        pass   # the broker has a message; only the gateway's batch_ack frees the queue

    def _on_batch_ack(self, f, now):
        batch.on_ack(self, f, now)

    def log(self, line):
        self.log_lines.append(line)
        del self.log_lines[:-LOG_LINES]
        print("veilpost: " + line)

    def on_message(self, topic, payload, now):
        if self.channel is None or self.state == WIPED or not payload:
            return                     # an empty payload clears a retained command
        if topic != topics.down(self.device_id) and topic != topics.cmd(self.device_id):
            # A broker may deliver another topic's retained message: not ours to read.
            self.log("ignored a message on " + str(topic) + ", not this device's topic")
            return
        try:
            opened = commands.open_payload(self, payload, now)
        except ProtocolError as e:
            if e.code != REPLAYED:     # a retained command seen again is not news
                self.notice = self.t("error", e.message)
                self.render(now)
            return
        name, fields, _seq = opened
        handler = getattr(self, "_on_" + name, None)
        if handler is not None:
            handler(fields, now)
        self.render(now)

    def _on_login_result(self, f, now):
        if self.state != LOGIN_WAIT:
            return
        if not f["ok"]:
            self.state = BADGE
            self.notice = self.t("login_denied", f.get("reason") or "")
            return
        self.session = f.get("session")
        self.courier = f.get("courier") or self.badge
        self.notice = None
        self.state = ROUTE_WAIT
        self.routes = []
        self.parcels = {}
        self.delivered = {}
        self.send("route_request", {"session": self.session}, now)

    def _on_route(self, f, now):
        # A long route comes in several messages with the same route id.
        if f["route"] not in self.routes:
            self.routes.append(f["route"])
        for p in f["parcels"]:
            self.parcels[p["tracking_no"]] = self._masked(p)
        self.route_id = ",".join(self.routes)
        self._save_route()
        if self.state == ROUTE_WAIT:
            self.state = READY

    def _masked(self, parcel):
        """Defence in depth for flash and screen: a route field that does not
        meet the masking rules (a gateway bug) is masked here, by protocol's rules."""
        for name in ("name", "phone", "address"):
            value = parcel.get(name)
            if isinstance(value, str) and not masking.check_compliant(name, value):
                parcel[name] = masking.mask_field(name, value)
        return parcel

    def request_preissue(self, now):
        """Ask for offline tokens (the gateway decides which parcels: those
        this device scanned during the shift)."""
        if self.online and self.session:
            self.scans_since_preissue = 0
            self.send("preissue_request", {"session": self.session}, now)

    def _on_preissue(self, f, now):
        fresh = {}
        for tok in f["tokens"]:
            if tok["tracking_no"] in self.parcels:
                fresh.setdefault(tok["tracking_no"], []).append(tok)
        for tn in fresh:
            self.tokens.offline.pop(tn, None)      # newer tokens replace older ones
            for tok in fresh[tn]:
                self.tokens.add_offline(tn, tok["fields"], tok["exp"], tok)

    def _on_reveal_grant(self, f, now):
        p = self.pending
        if p is None or f["req"] != p[0] or f["tracking_no"] != p[1]:
            return
        self.pending = None
        self.state = PARCEL
        self._show_token(f, now)

    def _show_token(self, grant, now):
        try:
            opened = wire.open_token(self.channel, grant["token"], now)
        except ProtocolError as e:
            self.last_denial = e.message
            self.notice = self.t("reveal_denied", e.message)
            return False
        if opened["tracking_no"] != grant["tracking_no"]:
            self.last_denial = "token is for another parcel"
            self.notice = self.t("reveal_denied", self.last_denial)
            return False
        self.last_denial = None
        self.notice = None
        self.tokens.show(grant["tracking_no"], opened["fields"], now, opened.get("exp"))
        opened["fields"] = None
        return True

    def _on_reveal_denied(self, f, now):
        p = self.pending
        if p is None or f["req"] != p[0]:
            return
        self.pending = None
        self.state = PARCEL
        reason = f.get("reason") or messages.DENIALS.get(f["code"], "code " + str(f["code"]))
        self.last_denial = reason
        self.notice = self.t("reveal_denied", reason)

    def _on_seal(self, f, now):
        self.tokens.drop(f["tracking_no"])
        self.delivered[f["tracking_no"]] = True

    def _on_error(self, f, now):
        self.notice = self.t("error", f.get("detail") or str(f["code"]))
        ref = f.get("ref")
        if self.pending is not None and (ref is None or ref == self.pending[0]):
            self.last_denial = f.get("detail") or "error " + str(f["code"])
            self.pending = None
            self.state = PARCEL
        elif self.state == LOGIN_WAIT:
            self.state = BADGE

    def _on_command(self, f, now):
        commands.on_command(self, f, now)

    # ---- lock and wipe (depot commands, firmware/commands.py)
    def lock(self, now):
        commands.lock(self, now)

    def wipe(self, now):
        commands.wipe(self, now)

    # ---- courier input
    def on_scan(self, code, now):
        s = self.state
        if s == BADGE:
            self.badge = code
            self.pin = ""
            self.state = PIN
        elif s in (READY, PARCEL, FIELDS, REASON, POD):
            self.scan(code, now)
        self.render(now)

    def scan(self, tracking_no, now):
        if tracking_no not in self.parcels:
            self.notice = self.t("not_on_route", tracking_no)
            self.state = READY
            return False
        self.notice = None
        self.current = tracking_no
        self.state = PARCEL
        batch.record(self, "scan", {"tracking_no": tracking_no, "session": self.session or b""}, now)
        every = self.config.get("preissue_after_scans", 5)
        if self.online and every:
            self.scans_since_preissue += 1
            if self.scans_since_preissue >= every:
                self.request_preissue(now)
        return True

    def on_key(self, key, now):
        s = self.state
        if s == PIN:
            if key == KEY_ENTER and self.pin:
                self.login(now)
            elif key == KEY_BACK:
                self.pin = self.pin[:-1]
            elif key.isdigit() and len(self.pin) < 12:
                self.pin += key
        elif s == PARCEL:
            if key == KEY_REVEAL:
                self.pick = []
                self.state = FIELDS
            elif key == KEY_DELIVER:
                self.code = ""
                self.state = POD
            elif key == KEY_BACK:
                self.state = READY
        elif s == FIELDS:
            if key in ("1", "2", "3"):
                f = int(key)
                if f in self.pick:
                    self.pick.remove(f)
                else:
                    self.pick.append(f)
            elif key == KEY_ENTER and self.pick:
                self.state = REASON
            elif key == KEY_BACK:
                self.state = PARCEL
        elif s == REASON:
            if key.isdigit() and int(key) in messages.REASONS:
                self.reveal(sorted(self.pick), int(key), now)
            elif key == KEY_BACK:
                self.state = PARCEL
        elif s == POD:
            if key.isdigit() and len(self.code) < 16:
                self.code += key
            elif key == KEY_ENTER and self.code:
                self.deliver(3, self.code.encode(), now)
            elif key == KEY_BACK:
                self.state = PARCEL
        self.render(now)

    def login(self, now):
        if not self.online:
            self.notice = self.t("login_needs_network")
            self.state = BADGE
            return
        proof = wire.pin_proof(self.master, self.device_id, self.badge, self.pin, now)
        self.pin = ""
        self.state = LOGIN_WAIT
        self.send("login", {"badge": self.badge, "pin_proof": proof}, now)

    def reveal(self, fields, reason, now):
        """Ask for `fields` of the parcel on screen; online the gateway decides,
        offline only a pre-issued token for this parcel and window can."""
        tn = self.current
        if tn in self.delivered:
            self.last_denial = messages.DENIALS[3]
            self.notice = self.t("sealed", tn)
            self.state = PARCEL
            return
        if self.online:
            self.req += 1
            self.pending = (self.req, tn, fields, reason)
            self.pending_at = now
            self.state = REVEAL_WAIT
            self.send("reveal_request", {"req": self.req, "tracking_no": tn, "fields": fields,
                                         "reason": reason, "session": self.session or b""}, now)
            return
        self.state = PARCEL
        tok = self.tokens.take_offline(tn, fields, now)
        if tok is None:
            self.last_denial = self.t("offline_no_token")
            self.notice = self.last_denial
            return
        if self._show_token(tok, now):
            batch.record(self, "token_use", {"cti": tok["cti"], "tracking_no": tn, "used_at": int(now)}, now)

    def deliver(self, kind, proof, now):
        """Proof of delivery (kind 3 = code, 1 = signature hash); the parcel's
        tokens go at once, online or not."""
        tn = self.current
        if tn is None:
            return False
        ok = batch.record(self, "delivered", {"tracking_no": tn, "session": self.session or b"",
                                              "proof": proof, "kind": kind}, now)
        if not ok:
            return False
        self.tokens.drop(tn)
        self.delivered[tn] = True
        self.notice = self.t("delivered", tn)
        self.code = ""
        self.state = READY
        return True

    def tick(self, now):
        if self.tokens.tick(now) and self.state in (PARCEL, READY):
            self.render(now)
        self.tokens.expire_offline(now)
        batch.resend_if_due(self, now)
        if self.pending is not None and now - self.pending_at >= self.config.get("reveal_timeout", 20):
            self.pending = None
            self.last_denial = self.t("reveal_denied", "no answer")
            self.notice = self.last_denial
            self.state = PARCEL
            self.render(now)
