# The courier's handheld: the actions the table in firmware/states.py names,
# carried out by firmware/engine.py's fire().
#
# Flow: boot -> identity check -> login (badge + PIN) -> route -> scan the
# label's QR (the gateway's proof that the parcel is in hand) -> reveal
# (fields, reason -> token -> plaintext for at most the display TTL) ->
# proof of delivery (into the flash queue) -> that parcel's tokens dropped.

from firmware import commands, i18n, states, wire
from firmware.engine import Engine
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
    SUSPENDED,
    UNPROVISIONED,
    WIPED,
)
from protocol import cbor, messages
from protocol.errors import ProtocolError

__all__ = ["App", "BADGE", "BOOT", "FIELDS", "KEY_BACK", "KEY_DELIVER", "KEY_ENTER", "KEY_REVEAL", "LOCKED",
           "LOGIN_WAIT", "PARCEL", "PIN", "POD", "READY", "REASON", "REVEAL_WAIT", "ROUTE_WAIT", "SUSPENDED",
           "UNPROVISIONED", "WIPED"]

ROUTE_MAX_BYTES = 262144
FW_VERSION = "0.2.0"
CODE_DIGITS = (4, 12)   # a receiver's code, as the gateway checks it
SCAN_FRESH = 600        # seconds a label scan stands for a reveal (the gateway's default)


class App(Engine):
    # ---- actions: login
    def take_badge(self, text, now):
        self.badge = text
        self.pin = ""
        self.notice = None

    def say_scan_badge(self, value, now):
        self.notice = self.t("scan_badge")

    def pin_digit(self, key, now):
        if len(self.pin) < 12:
            self.pin += key

    def pin_back(self, key, now):
        self.pin = self.pin[:-1]

    def login(self, key, now):
        if not self.pin:
            return states.STAY
        if not self.online:
            self.pin = ""
            return states.OFFLINE
        proof = wire.pin_proof(self.master, self.device_id, self.badge, self.pin, now)
        self.pin = ""
        self.notice = None
        self.send("login", {"badge": self.badge, "pin_proof": proof}, now)

    def say_login_needs_network(self, value, now):
        self.notice = self.t("login_needs_network")

    def say_login_denied(self, f, now):
        code = f.get("code")
        self.log("login denied: " + str(f.get("reason") or code))
        self.notice = self.t("login_denied", i18n.denial(self.lang, code)) if code else \
            self.t("login_refused")

    def start_session(self, f, now):
        self.session = f.get("session")
        self.courier = f.get("courier") or self.badge
        self.notice = None
        self.routes = []
        self.parcels = {}
        self.delivered = {}

    def ask_route(self, value, now):
        self.since = now
        if self.online:
            self.send("route_request", {"session": self.session}, now)

    def add_route(self, f, now):
        # A long route comes in several messages with the same route id.
        if f["route"] not in self.routes:
            self.routes.append(f["route"])
        masking = _load_masking()
        try:
            for p in f["parcels"]:
                self.parcels[p["tracking_no"]] = _masked(masking, p)
                if p.get("case_until"):
                    self.delivered[p["tracking_no"]] = True   # delivered; open only while its case is
        finally:
            masking = None
            _unload_masking()
        self.route_id = ",".join(self.routes)
        self.hal.flash.write(wire.ROUTE_FILE, cbor.dumps([self.routes, list(self.parcels.values())]))

    def load_route(self, value, now):
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

    # ---- actions: a parcel on screen
    def show_label(self, value, now):
        tn, raw = value
        if tn not in self.parcels:
            return states.NOT_ON_ROUTE
        self.current, self.proof, self.scanned_at, self.notice = tn, raw, now, None
        if self.online:
            self._send_scan(now)
            every = self.config.get("preissue_after_scans", 5)
            self.scans_since_preissue += 1
            if every and self.scans_since_preissue >= every:
                self.request_preissue(now)
        else:
            self._queue("scan", {"tracking_no": tn, "session": self.session or b"", "label": raw}, now)

    def show_unproven(self, text, now):
        """A barcode read or typed number: shown masked, never sent as a scan."""
        if text not in self.parcels:
            return states.NOT_ON_ROUTE
        self.current, self.proof, self.notice = text, None, None

    def say_not_on_route(self, value, now):
        tn = value[0] if isinstance(value, tuple) else value
        self.notice = self.t("not_on_route", tn[:32])

    def leave_parcel(self, key, now):
        self.proof = None

    def start_pick(self, key, now):
        if self.current in self.delivered and not self._case_open(self.current, now):
            return states.SEALED
        self.pick = []
        self.notice = None

    def _case_open(self, tn, now):
        # A complaint case the gateway named in the route; the gateway decides the reveal itself.
        until = (self.parcels.get(tn) or {}).get("case_until")
        return isinstance(until, int) and now < until

    def say_sealed(self, key, now):
        self._refused(messages.DENY_SEALED, None)
        self.notice = self.t("sealed", self.current)

    def toggle_field(self, key, now):
        f = int(key)
        if f in self.pick:
            self.pick.remove(f)
        elif f in messages.FIELD_NAMES:
            self.pick.append(f)

    def check_pick(self, key, now):
        if not self.pick:
            return states.STAY

    def check_reason(self, key, now):
        r = int(key)
        if r not in messages.REASONS:
            return states.STAY
        if self.proof is None:
            stale = r != states.REASON_DAMAGED          # without a label scan only "label damaged"
        elif r not in states.REASONS_IN_HAND:
            return states.STAY
        else:
            stale = now - self.scanned_at > self.config.get("scan_fresh", SCAN_FRESH)
        if stale:
            self._refused(messages.DENY_SCAN_FIRST, None)
            return states.SCAN_AGAIN

    def reveal(self, key, now):
        """Online the gateway decides; offline only a pre-issued token can."""
        if not self.online:
            return states.OFFLINE
        self.req += 1
        fields = sorted(self.pick)
        self.pending = (self.req, self.current, fields, int(key))
        self.send("reveal_request", {"req": self.req, "tracking_no": self.current, "fields": fields,
                                     "reason": int(key), "session": self.session or b""}, now)

    def reveal_offline(self, key, now):
        tn = self.current
        if self.proof is None:
            self._refused(0, self.t("damaged_needs_network"))
            return
        tok = self.tokens.take_offline(tn, sorted(self.pick), now)
        if tok is None:
            self._refused(0, self.t("offline_no_token"))
            return
        if self._show_token(tok, now):
            self._queue("token_use", {"cti": tok["cti"], "tracking_no": tn, "used_at": int(now)}, now)

    def show_grant(self, f, now):
        p = self.pending
        if p is None or f["req"] != p[0] or f["tracking_no"] != p[1]:
            return states.STAY
        self.pending = None
        self._show_token(f, now)

    def show_denial(self, f, now):
        p = self.pending
        if p is None or f["req"] != p[0]:
            return states.STAY
        self.pending = None
        self.log("reveal denied: " + str(f.get("reason") or f["code"]))
        self._refused(f["code"], None)
        self.notice = self.t("reveal_denied", self.last_denial)

    def no_answer(self, value, now):
        self.notice = self.t("no_answer")
        if self.pending is not None:
            self.pending = None
            self.last_denial, self.last_code = self.notice, 0

    def start_pod(self, key, now):
        self.code = ""

    def pod_digit(self, key, now):
        if len(self.code) < CODE_DIGITS[1]:
            self.code += key

    def deliver(self, key, now):
        """The receiver's code, checked here before it goes into the flash
        queue; the parcel's tokens go at once, online or not."""
        tn = self.current
        if not CODE_DIGITS[0] <= len(self.code) <= CODE_DIGITS[1]:
            self.notice = self.t("pod_code_bad")
            return states.STAY
        fields = {"tracking_no": tn, "session": self.session or b"", "proof": self.code.encode(), "kind": 3}
        if not self._queue("delivered", fields, now):
            return states.STAY
        self.tokens.drop(tn)
        self.delivered[tn] = True
        self.proof = None
        self.code = ""
        if self.online:
            self.notice = self.t("delivered", tn)

    def _refused(self, code, text):
        self.last_code = code
        self.last_denial = text or i18n.denial(self.lang, code)
        self.notice = self.last_denial

    def _show_token(self, grant, now):
        try:
            opened = wire.open_token(self.channel, grant["token"], now)
        except ProtocolError as e:
            self.log("token not opened: " + e.message)
            self._refused(0, self.t("token_bad"))
            return False
        if opened["tracking_no"] != grant["tracking_no"]:
            self._refused(0, self.t("token_other_parcel"))
            return False
        self.last_denial, self.last_code, self.notice = None, 0, None
        self.tokens.show(grant["tracking_no"], opened["fields"], now, opened.get("exp"))
        opened["fields"] = None
        return True

    # ---- actions: what the gateway says
    def seal(self, f, now):
        self.tokens.drop(f["tracking_no"])
        self.delivered[f["tracking_no"]] = True

    def add_preissued(self, f, now):
        fresh = {}
        for tok in f["tokens"]:
            if tok["tracking_no"] in self.parcels:
                fresh.setdefault(tok["tracking_no"], []).append(tok)
        for tn in fresh:
            self.tokens.offline.pop(tn, None)      # newer tokens replace older ones
            for tok in fresh[tn]:
                self.tokens.add_offline(tn, tok["fields"], tok["exp"], tok)

    def batch_acked(self, f, now):
        refused = self.uploads.acked(f)
        if refused is None:
            return    # a second ack for a batch sent twice: the one in flight is not answered yet
        self.notice = None if not len(self.queue) else self.t("queued", len(self.queue))
        for item, outcome, name, fields in refused:
            self.log("batch item " + str(item) + " (" + name + ") refused by the gateway, code "
                     + str(outcome) + "; dropped")
            if name == "delivered":
                # Not sealed at the gateway: the courier has to deliver it again.
                tn = fields["tracking_no"]
                self.delivered.pop(tn, None)
                self.notice = self.t("delivery_refused", tn, i18n.error(self.lang, outcome))
        self.upload(None, now)

    def say_error(self, f, now):
        self.log("gateway error " + str(f["code"]) + ": " + str(f.get("detail") or ""))
        self.notice = self.t("error", i18n.error(self.lang, f["code"]))
        if self.pending is not None:
            self.pending = None
            self.last_denial, self.last_code = self.notice, 0

    def say_refusal(self, f, now):
        self.log("refused: " + str(f.get("detail") or f["deny"]))
        self.notice = i18n.denial(self.lang, f["deny"])

    def retry_later(self, f, now):
        self.log("gateway unavailable: " + str(f.get("detail") or ""))
        self.uploads.unavailable(now)
        if self.proof is not None:
            self.rescan_at = now + self.uploads.retry
        self.notice = self.t("retry_later")

    def end_session(self, f, now):
        self._forget()
        self.notice = i18n.denial(self.lang, messages.DENY_NOT_LOGGED_IN)

    def suspend(self, value, now):
        self._forget()

    def say_suspended(self, value, now):
        self.notice = self.t("suspended")

    def say_broker_refused(self, value, now):
        self.notice = self.t("broker_refused")

    def lease_over(self, value, now):
        """The offline lease ran out: every token, pre-issued or shown, goes,
        and the session with them; logging in needs the network."""
        self.log("offline lease over: nothing heard from the gateway since " + str(self.heard_at))
        self._forget()
        self.notice = self.t("lease_over")

    def after_fault(self, value, now):
        self.tokens.wipe()
        self.pending = None
        self.notice = self.t("fault")

    # ---- actions: the link and depot commands
    def hello(self, value, now):
        # QoS 1: the gateway activates a newly provisioned device on its first hello.
        self.send("hello", {"device": self.device_id, "fw": FW_VERSION, "lang": self.lang}, now)

    def link_lost(self, value, now):
        self.uploads.link_changed()

    def ack_command(self, f, now):
        self.send("command_ack", {"id": f["id"], "ok": True}, now, qos=0)

    def lock(self, f, now):
        """Tokens and RAM keys zeroized at once; the key stays in NVS so that a
        restart after the depot's unlock can come back."""
        self._forget()
        commands.zeroize(self.master, (self.channel, self.retiring))
        self.retiring = None

    def wipe(self, f, now):
        """Everything goes: tokens, keys (RAM and NVS), route, offline queue and
        the provisioning file."""
        self.lock(f, now)
        commands.erase(self.hal, self.queue)
        self.parcels = {}

    def rotate_key(self, f, now):
        """Key rotation: keep the new secret, acknowledge under the old key, then
        switch; the old channel still opens replies the gateway sealed before it
        saw the acknowledgement."""
        secret, password, why = commands.rotation_secret(f)
        if secret is None:
            self.send("command_ack", {"id": f["id"], "ok": False, "detail": why}, now)
            return
        wire.stage_key(self.hal, self.config, secret, password)
        self.send("command_ack", {"id": f["id"], "ok": True}, now)
        old = self.channel
        old.retire()
        commands.zeroize(self.master, (self.retiring,))
        self.master, self.channel = commands.rotate(self.hal, self.device_id, secret)
        self.retiring = old

    def _forget(self):
        self.tokens.wipe()
        self.session = None
        self.pending = None
        self.proof = None


def _load_masking():
    # protocol.masking is about 12 KB once imported: on the handheld it is
    # needed only while a route message is checked, so it is imported then
    # and let go after (firmware/README.md, the resident heap budget).
    from protocol import masking
    return masking


def _unload_masking():
    import sys

    import protocol
    sys.modules.pop("protocol.masking", None)
    if "masking" in protocol.__dict__:
        delattr(protocol, "masking")


def _masked(masking, parcel):
    """Defence in depth for flash and screen: a route field that does not
    meet the masking rules (a gateway bug) is masked here, by protocol's rules."""
    for name in ("name", "phone", "address"):
        value = parcel.get(name)
        if isinstance(value, str) and not masking.check_compliant(name, value):
            parcel[name] = masking.mask_field(name, value)
    return parcel
