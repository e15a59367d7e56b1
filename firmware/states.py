# Everything that affects the handheld's state machine lives here: its
# states (one per screen), the events that move it, and the transitions as
# a table (state, event) -> (new state, actions).
#
# firmware/app.py turns what happens (a scan, a key, a gateway message, the
# link, the clock) into one event with the *_event functions below, looks
# the pair up with step() and carries the actions out in order: each is the
# name of an App method taking (value, now). An action may answer with
# another event instead of going on (a guard: "the PIN is empty",
# "offline"); that event is then looked up from the same state. A new state
# of None keeps the state. A pair with no row changes nothing. Nothing but
# App.fire() sets App.state.

from protocol import labels, messages
from protocol.errors import UNAVAILABLE, ProtocolError

# ---- states
BOOT = "boot"
UNPROVISIONED = "unprovisioned"
BADGE = "badge"
PIN = "pin"
LOGIN_WAIT = "login_wait"
ROUTE_WAIT = "route_wait"
READY = "ready"
PARCEL = "parcel"
FIELDS = "fields"
REASON = "reason"
REVEAL_WAIT = "reveal_wait"
POD = "pod"
SUSPENDED = "suspended"
LOCKED = "locked"
WIPED = "wiped"
# Groups of states sharing rows: a state's own row counts first, then its
# group's, then the row for ANY state.
SCANNING = "scanning"        # a parcel can be put on screen from here
SILENT = "silent"            # neither talks nor listens (keys are gone or never were)
ANY = "*"
GROUPS = {READY: SCANNING, PARCEL: SCANNING, FIELDS: SCANNING, REASON: SCANNING, POD: SCANNING,
          UNPROVISIONED: SILENT, LOCKED: SILENT, WIPED: SILENT}
# How long a state waits for the gateway: config key and default, in seconds.
TIMEOUTS = {LOGIN_WAIT: ("login_timeout", 15), ROUTE_WAIT: ("route_timeout", 20),
            REVEAL_WAIT: ("reveal_timeout", 20)}

# ---- keypad
KEY_ENTER = "#"
KEY_BACK = "*"
KEY_REVEAL = "A"
KEY_DELIVER = "B"

# ---- events
# courier input
LABEL = "label"              # a label's QR: value (tracking_no, the QR's bytes)
BARCODE = "barcode"          # any other scanner read (a Code128 tracking number, a badge): value text
TYPED = "typed"              # a tracking number (or badge) typed in: value text
DIGIT = "digit"
ENTER = "enter"
BACK = "back"
REVEAL_KEY = "reveal_key"
DELIVER_KEY = "deliver_key"
# what actions answer (guards)
STAY = "stay"                # no row anywhere: nothing changes
NOT_ON_ROUTE = "not_on_route"
OFFLINE = "offline"
SEALED = "sealed"
SCAN_AGAIN = "scan_again"    # a reveal the label scan on screen does not allow (none, or too old)
# the gateway
LOGIN_OK = "login_ok"
LOGIN_DENIED = "login_denied"
ROUTE = "route"
GRANT = "grant"
DENIED = "denied"
SEAL = "seal"
PREISSUE = "preissue"
BATCH_ACK = "batch_ack"
ERROR = "error"              # an error that may answer the request being waited for
REFUSAL = "refusal"          # a policy refusal (error with a denial code) of an earlier request
UNAVAILABLE_NOW = "unavailable"   # the gateway could not record anything: send again later
SUSPEND = "suspend"          # the gateway says the account or the handheld is suspended
LOGGED_OUT = "logged_out"    # the gateway knows no session of ours
WIPE = "wipe"
LOCK = "lock"
UNLOCK = "unlock"
CONFIG = "config"
# the link and the clock
LINK_UP = "link_up"
LINK_DOWN = "link_down"
REFUSED = "refused"          # the broker refused our credentials (the depot disabled them)
TIMEOUT = "timeout"
FAULT = "fault"              # a round ended in MemoryError or a bug (firmware/device.py)
LEASE_OVER = "lease_over"    # nothing heard from the gateway for the offline lease (engine.tick)
PROVISIONED = "provisioned"
NO_KEYS = "no_keys"

REASON_DAMAGED = 6           # messages.REASONS: "label-damaged", the only reveal without a label scan
REASONS_IN_HAND = (1, 2, 3, 4, 5)


TRANSITIONS = {
    (BOOT, PROVISIONED): (BADGE, ("load_route",)),
    (BOOT, NO_KEYS): (UNPROVISIONED, ()),

    # login: badge, PIN, the gateway's answer (or none)
    (BADGE, BARCODE): (PIN, ("take_badge",)),
    (BADGE, TYPED): (PIN, ("take_badge",)),
    (BADGE, LABEL): (None, ("say_scan_badge",)),
    (SUSPENDED, BARCODE): (PIN, ("take_badge",)),   # after the depot lifted the suspension
    (SUSPENDED, TYPED): (PIN, ("take_badge",)),
    (PIN, DIGIT): (None, ("pin_digit",)),
    (PIN, BACK): (None, ("pin_back",)),
    (PIN, ENTER): (LOGIN_WAIT, ("login",)),
    (PIN, OFFLINE): (BADGE, ("say_login_needs_network",)),
    (LOGIN_WAIT, LOGIN_OK): (ROUTE_WAIT, ("start_session", "ask_route")),
    (LOGIN_WAIT, LOGIN_DENIED): (BADGE, ("say_login_denied",)),
    (LOGIN_WAIT, TIMEOUT): (BADGE, ("no_answer",)),
    (LOGIN_WAIT, ERROR): (BADGE, ("say_error",)),
    (ROUTE_WAIT, ROUTE): (READY, ("add_route",)),
    (ROUTE_WAIT, TIMEOUT): (None, ("ask_route",)),

    # a parcel on screen, and what the courier does with it
    (PARCEL, REVEAL_KEY): (FIELDS, ("start_pick",)),
    (PARCEL, SEALED): (None, ("say_sealed",)),
    (PARCEL, DELIVER_KEY): (POD, ("start_pod",)),
    (PARCEL, BACK): (READY, ("leave_parcel",)),
    (FIELDS, DIGIT): (None, ("toggle_field",)),
    (FIELDS, ENTER): (REASON, ("check_pick",)),
    (FIELDS, BACK): (PARCEL, ()),
    (REASON, DIGIT): (REVEAL_WAIT, ("check_reason", "reveal")),
    (REASON, OFFLINE): (PARCEL, ("reveal_offline",)),
    (REASON, SCAN_AGAIN): (PARCEL, ()),
    (REASON, BACK): (FIELDS, ()),
    (REVEAL_WAIT, GRANT): (PARCEL, ("show_grant",)),
    (REVEAL_WAIT, DENIED): (PARCEL, ("show_denial",)),
    (REVEAL_WAIT, TIMEOUT): (PARCEL, ("no_answer",)),
    (REVEAL_WAIT, ERROR): (PARCEL, ("say_error",)),
    (POD, DIGIT): (None, ("pod_digit",)),
    (POD, BACK): (PARCEL, ()),
    (POD, ENTER): (READY, ("deliver",)),

    # the gateway, whatever is on screen
    (ANY, ROUTE): (None, ("add_route",)),
    (ANY, SEAL): (None, ("seal",)),
    (ANY, PREISSUE): (None, ("add_preissued",)),
    (ANY, BATCH_ACK): (None, ("batch_acked",)),
    (ANY, ERROR): (None, ("say_error",)),
    (ANY, REFUSAL): (None, ("say_refusal",)),
    (ANY, UNAVAILABLE_NOW): (None, ("retry_later",)),
    (ANY, SUSPEND): (SUSPENDED, ("suspend", "say_suspended")),
    (ANY, LOGGED_OUT): (BADGE, ("end_session",)),
    (SUSPENDED, LOGGED_OUT): (None, ()),
    (ANY, WIPE): (WIPED, ("ack_command", "wipe")),
    (ANY, LOCK): (LOCKED, ("ack_command", "lock")),
    (ANY, UNLOCK): (None, ("ack_command",)),
    (ANY, CONFIG): (None, ("rotate_key",)),

    # the link
    (ANY, LINK_UP): (None, ("hello", "upload")),
    (ROUTE_WAIT, LINK_UP): (None, ("hello", "ask_route", "upload")),
    (SUSPENDED, LINK_UP): (BADGE, ("hello", "upload")),   # the broker lets us in again: lifted
    (ANY, LINK_DOWN): (None, ("link_lost",)),
    (ANY, REFUSED): (SUSPENDED, ("suspend", "say_broker_refused")),

    # the offline lease ran out: every token goes, and only an online login comes back
    (ANY, LEASE_OVER): (BADGE, ("lease_over",)),
    (SILENT, LEASE_OVER): (None, ()),

    # a fault in the loop: whatever was shown is gone; a reveal waited for is over
    (ANY, FAULT): (None, ("after_fault",)),
    (FIELDS, FAULT): (PARCEL, ("after_fault",)),
    (REASON, FAULT): (PARCEL, ("after_fault",)),
    (REVEAL_WAIT, FAULT): (PARCEL, ("after_fault",)),
    (POD, FAULT): (PARCEL, ("after_fault",)),

    # groups
    (SCANNING, LABEL): (PARCEL, ("show_label",)),
    (SCANNING, BARCODE): (PARCEL, ("show_unproven",)),
    (SCANNING, TYPED): (PARCEL, ("show_unproven",)),
    (SCANNING, NOT_ON_ROUTE): (READY, ("say_not_on_route",)),
    (SILENT, LINK_UP): (None, ()),
    (SILENT, REFUSED): (None, ()),
}


def step(state, event):
    """(new state or None, actions) for `event` in `state`, or None: no row."""
    row = TRANSITIONS.get((state, event))
    if row is None and state in GROUPS:
        row = TRANSITIONS.get((GROUPS[state], event))
    if row is None:
        row = TRANSITIONS.get((ANY, event))
    return row


# ---- what happened, as an event

KEY_EVENTS = {KEY_ENTER: ENTER, KEY_BACK: BACK, KEY_REVEAL: REVEAL_KEY, KEY_DELIVER: DELIVER_KEY}


def key_event(key):
    if key.isdigit():
        return DIGIT
    return KEY_EVENTS.get(key, STAY)


def scan_event(kind, text):
    """(event, value) for a scanner read or typed text. A label's QR gives
    LABEL with the QR's bytes; anything else is a plain code (a Code128
    tracking number reads as text too, but it proves nothing)."""
    if kind == "typed":
        return TYPED, text
    try:
        raw = labels.from_text(text)
        return LABEL, (labels.read(raw)[0], raw)
    except ProtocolError:
        return BARCODE, text


def message_event(name, f):
    """The event a gateway message is, from its name and fields."""
    if name == "login_result":
        if f["ok"]:
            return LOGIN_OK
        return SUSPEND if f.get("code") == messages.DENY_SUSPENDED else LOGIN_DENIED
    if name == "reveal_denied":
        return SUSPEND if f["code"] == messages.DENY_SUSPENDED else DENIED
    if name == "error":
        deny = f.get("deny")
        if deny == messages.DENY_SUSPENDED:
            return SUSPEND
        if deny == messages.DENY_NOT_LOGGED_IN:
            return LOGGED_OUT
        if f["code"] == UNAVAILABLE:
            return UNAVAILABLE_NOW
        return REFUSAL if deny else ERROR
    if name == "command":
        return COMMAND_EVENTS.get(f["cmd"], STAY)
    return MESSAGE_EVENTS.get(name, STAY)


MESSAGE_EVENTS = {"route": ROUTE, "reveal_grant": GRANT, "seal": SEAL, "preissue": PREISSUE,
                  "batch_ack": BATCH_ACK}
COMMAND_EVENTS = {messages.CMD_WIPE: WIPE, messages.CMD_LOCK: LOCK, messages.CMD_UNLOCK: UNLOCK,
                  messages.CMD_CONFIG: CONFIG}
