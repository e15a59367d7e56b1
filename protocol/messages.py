# The message catalogue: every message the handheld and the gateway exchange,
# defined once. A message on the wire is a CBOR map: key 0 = type id, key 1 =
# sender time (Unix seconds), keys >= 2 = that message's fields. The API speaks
# names: encode("scan", {"t": now, "tracking_no": ..., "session": ...}).
# protocol/messages.cddl describes the same catalogue; a test keeps them equal.
# Decoding is strict: unknown types, unknown keys, missing required fields and
# wrong kinds are ProtocolError, never a half-read message.

from . import cbor
from .errors import MALFORMED, UNKNOWN_MESSAGE, ProtocolError

# Personal fields a reveal can name (the keys of a parcel record, too).
FIELD_NAME = 1
FIELD_PHONE = 2
FIELD_ADDRESS = 3
FIELD_NAMES = {FIELD_NAME: "name", FIELD_PHONE: "phone", FIELD_ADDRESS: "address"}

# Why a courier asks to see a field. Data, so the gateway's policy and the
# handheld's menu read the same list.
REASONS = {
    1: "recipient-not-reachable",
    2: "address-unclear",
    3: "call-before-delivery",
    4: "access-code",
    5: "recipient-requested-call",
    6: "label-damaged",
}

# Why the gateway refused a request: one table for the gateway, the handheld
# (which shows each code in the courier's language, firmware/i18n.py) and the
# CLI. The text is the English fallback when a handheld has no translation.
DENY_NOT_ON_ROUTE = 1
DENY_SCAN_FIRST = 2
DENY_SEALED = 3
DENY_BUDGET = 4
DENY_OFF_SHIFT = 5
DENY_SUSPENDED = 6
DENY_FIELD = 7
DENY_NOT_LOGGED_IN = 8
DENY_TOO_MANY = 9
DENY_UNAVAILABLE = 10
DENY_LABEL = 11
DENY_WINDOW = 12
DENY_DAMAGED_USED = 13
DENY_OFFLINE_USED = 14
DENY_SHREDDED = 15
DENY_BAD_PIN = 16
DENY_LOCKED_OUT = 17
DENY_DEVICE = 18
DENY_PROOF = 19
DENIALS = {
    DENY_NOT_ON_ROUTE: "parcel is not on your route",
    DENY_SCAN_FIRST: "scan the parcel's label first",
    DENY_SEALED: "parcel is sealed after delivery",
    DENY_BUDGET: "reveal budget used up",
    DENY_OFF_SHIFT: "outside your shift",
    DENY_SUSPENDED: "account or device suspended",
    DENY_FIELD: "field or reason not allowed",
    DENY_NOT_LOGGED_IN: "not logged in",
    DENY_TOO_MANY: "too many requests, try later",
    DENY_UNAVAILABLE: "gateway unavailable, try again later",
    DENY_LABEL: "label not valid: scan the label's QR code",
    DENY_WINDOW: "outside the parcel's delivery window",
    DENY_DAMAGED_USED: "damaged-label allowance used up",
    DENY_OFFLINE_USED: "offline allowance used up",
    DENY_SHREDDED: "parcel data destroyed after retention",
    DENY_BAD_PIN: "badge or PIN is wrong",
    DENY_LOCKED_OUT: "too many wrong PINs: locked out",
    DENY_DEVICE: "handheld is not active",
    DENY_PROOF: "proof of delivery not valid",
}

# Proof-of-delivery kinds.
PROOF_KINDS = {1: "signature", 2: "photo", 3: "code", 4: "neighbour", 5: "locker"}

# Device commands (retained on the cmd topic).
CMD_WIPE = 1
CMD_LOCK = 2
CMD_UNLOCK = 3
CMD_CONFIG = 4
COMMANDS = {CMD_WIPE: "wipe", CMD_LOCK: "lock", CMD_UNLOCK: "unlock", CMD_CONFIG: "config"}

# Print job states.
PRINT_STATES = {1: "queued", 2: "printing", 3: "done", 4: "failed", 5: "paper-out", 6: "head-open"}

# "field" is a personal field id (FIELD_NAMES); lists name their item kind.
KINDS = ("uint", "int", "text", "bytes", "bool", "list", "map", "any", "field")

# Records nested inside messages: name -> {field: (key, kind, required[, item])}.
RECORDS = {
    # A parcel as a route manifest carries it: personal fields already masked,
    # keyed by their field id so a reveal's field list maps onto them.
    "parcel": {
        "tracking_no": (0, "text", True),
        "name": (FIELD_NAME, "text", True),
        "phone": (FIELD_PHONE, "text", True),
        "address": (FIELD_ADDRESS, "text", True),
        "sort_code": (4, "text", False),
        "window_start": (5, "uint", False),
        "window_end": (6, "uint", False),
        # A delivered parcel an approved complaint case opens for this courier, until then.
        "case_until": (7, "uint", False),
    },
    # A pre-issued reveal token for offline use: the grant without a request.
    "offline_token": {
        "tracking_no": (0, "text", True),
        "cti": (1, "bytes", True),
        "exp": (2, "uint", True),
        "fields": (3, "list", True, "field"),
        "token": (4, "bytes", True),
    },
}

# name -> (type id, {field: (key, kind, required[, item kind or record])}).
# Every message also has "t" (key 1, uint, required): the sender's clock.
CATALOGUE = {
    "hello": (1, {
        "device": (2, "text", True),
        "fw": (3, "text", True),
        "lang": (4, "text", False),
    }),
    "login": (2, {
        "badge": (2, "text", True),
        "pin_proof": (3, "bytes", True),
    }),
    "login_result": (3, {
        "ok": (2, "bool", True),
        "session": (3, "bytes", False),
        "courier": (4, "text", False),
        "shift_end": (5, "uint", False),
        "reason": (6, "text", False),
        "code": (7, "uint", False),
    }),
    "logout": (4, {
        "session": (2, "bytes", True),
    }),
    "route_request": (5, {
        "session": (2, "bytes", True),
        "route": (3, "text", False),
    }),
    "route": (6, {
        "route": (2, "text", True),
        "parcels": (3, "list", True, "parcel"),
    }),
    # A label's QR read by the scanner: `label` is the QR's bytes (the
    # gateway's per-label proof, protocol/labels.py). A scan without one is
    # refused: typing a tracking number never puts a parcel in hand.
    "scan": (7, {
        "tracking_no": (2, "text", True),
        "session": (3, "bytes", True),
        "label": (4, "bytes", False),
    }),
    "reveal_request": (8, {
        "req": (2, "uint", True),
        "tracking_no": (3, "text", True),
        "fields": (4, "list", True, "field"),
        "reason": (5, "uint", True),
        "session": (6, "bytes", True),
    }),
    "reveal_grant": (9, {
        "req": (2, "uint", True),
        "tracking_no": (3, "text", True),
        "cti": (4, "bytes", True),
        "exp": (5, "uint", True),
        "fields": (6, "list", True, "field"),
        "token": (7, "bytes", True),
    }),
    "reveal_denied": (10, {
        "req": (2, "uint", True),
        "tracking_no": (3, "text", True),
        "code": (4, "uint", True),
        "reason": (5, "text", False),
    }),
    "delivered": (11, {
        "tracking_no": (2, "text", True),
        "session": (3, "bytes", True),
        "proof": (4, "bytes", True),
        "kind": (5, "uint", True),
    }),
    "seal": (12, {
        "tracking_no": (2, "text", True),
    }),
    # Offline upload: each item is one encoded message, oldest first; ids[i]
    # is the device's id for items[i], so a re-sent batch is recognised.
    "batch": (13, {
        "items": (2, "list", True, "bytes"),
        "ids": (3, "list", False, "uint"),
    }),
    "token_use": (14, {
        "cti": (2, "bytes", True),
        "tracking_no": (3, "text", True),
        "used_at": (4, "uint", True),
    }),
    # Offline tokens for parcels in hand; fields and reason default to the
    # phone and "recipient-not-reachable".
    "preissue_request": (15, {
        "session": (2, "bytes", True),
        "tracking_nos": (3, "list", False, "text"),
        "fields": (4, "list", False, "field"),
        "reason": (5, "uint", False),
    }),
    "preissue": (16, {
        "tokens": (2, "list", True, "offline_token"),
    }),
    "command": (17, {
        "id": (2, "uint", True),
        "cmd": (3, "uint", True),
        "args": (4, "map", False),
    }),
    "command_ack": (18, {
        "id": (2, "uint", True),
        "ok": (3, "bool", True),
        "detail": (4, "text", False),
    }),
    "print_job": (19, {
        "job": (2, "uint", True),
        "printer": (3, "text", True),
        "tracking_no": (4, "text", True),
        "template": (5, "text", False),
        "copies": (6, "uint", False),
    }),
    "print_status": (20, {
        "job": (2, "uint", True),
        "state": (3, "uint", True),
        "detail": (4, "text", False),
    }),
    # code: protocol/errors.py; deny: a DENIALS code when a policy refused
    # the request, for the handheld to say why in the courier's language.
    "error": (21, {
        "code": (2, "uint", True),
        "detail": (3, "text", False),
        "ref": (4, "uint", False),
        "deny": (5, "uint", False),
    }),
    # Sent after a batch's items are committed: outcomes[i] is for ids[i],
    # BATCH_OK, BATCH_SEEN or an error code (the item was refused and dropped).
    "batch_ack": (22, {
        "ids": (2, "list", True, "uint"),
        "outcomes": (3, "list", True, "uint"),
    }),
}

# batch_ack outcomes besides the error codes of protocol/errors.py (all > 1).
BATCH_OK = 0
BATCH_SEEN = 1

TIME_KEY = 1
TYPE_KEY = 0

_BY_ID = {}
for _name in CATALOGUE:
    _BY_ID[CATALOGUE[_name][0]] = _name


def _malformed(msg):
    return ProtocolError(msg, -1, MALFORMED)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _kind_ok(kind, v):
    if kind == "uint":
        return _is_int(v) and v >= 0
    if kind == "int":
        return _is_int(v)
    if kind == "text":
        return isinstance(v, str)
    if kind == "bytes":
        return isinstance(v, (bytes, bytearray))
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "list":
        return isinstance(v, (list, tuple))
    if kind == "map":
        return isinstance(v, dict)
    if kind == "field":
        return _is_int(v) and v in FIELD_NAMES
    return kind == "any"


def _check(where, spec, v, packing):
    # Returns the value converted for the wire (packing) or for the caller.
    kind = spec[1]
    if not _kind_ok(kind, v):
        if kind == "field":
            raise _malformed(where + " must be a field id (1 name, 2 phone, 3 address), not " + repr(v))
        raise _malformed(where + " must be " + kind + ", not " + type(v).__name__)
    if kind == "bytes" and not packing:
        return bytes(v)
    if kind != "list" or len(spec) < 4:
        return v
    item = spec[3]
    out = []
    for i in range(len(v)):
        iwhere = where + "[" + str(i) + "]"
        if item in RECORDS:
            if packing:
                out.append(_pack_fields(iwhere, RECORDS[item], v[i]))
            else:
                out.append(_unpack_fields(iwhere, RECORDS[item], v[i]))
        else:
            out.append(_check(iwhere, (0, item), v[i], packing))
    return out


def _pack_fields(where, specs, fields):
    if not isinstance(fields, dict):
        raise _malformed(where + " must be a map of fields")
    out = {}
    for fname in fields:
        if fname not in specs:
            raise _malformed(where + " has no field '" + str(fname) + "'")
    for fname in specs:
        spec = specs[fname]
        if fname in fields and fields[fname] is not None:
            out[spec[0]] = _check(where + "." + fname, spec, fields[fname], True)
        elif spec[2]:
            raise _malformed(where + " is missing required field '" + fname + "'")
    return out


def _unpack_fields(where, specs, m):
    if not isinstance(m, dict):
        raise _malformed(where + " must be a CBOR map")
    out = {}
    seen = 0
    for fname in specs:
        spec = specs[fname]
        if spec[0] in m:
            seen += 1
            out[fname] = _check(where + "." + fname, spec, m[spec[0]], False)
        elif spec[2]:
            raise _malformed(where + " is missing required field '" + fname + "'")
    if seen != len(m):
        for k in m:
            if not _key_known(specs, k):
                raise _malformed(where + " has unknown key " + repr(k))
    return out


def _key_known(specs, k):
    for fname in specs:
        if specs[fname][0] == k:
            return True
    return False


def _spec_of(name):
    if name not in CATALOGUE:
        raise ProtocolError("unknown message '" + str(name) + "'", -1, UNKNOWN_MESSAGE)
    return CATALOGUE[name]


def _with_time(specs):
    full = {"t": (TIME_KEY, "uint", True)}
    for k in specs:
        full[k] = specs[k]
    return full


def pack(name, fields):
    """The CBOR-ready map (integer keys) for message `name`. `fields` is a
    dict by field name and must include "t"; None means absent."""
    tid, specs = _spec_of(name)
    out = _pack_fields(name, _with_time(specs), fields)
    out[TYPE_KEY] = tid
    return out


def unpack(m):
    """(name, fields) from a decoded CBOR map; fields include "t"."""
    if not isinstance(m, dict):
        raise _malformed("message must be a CBOR map")
    tid = m.get(TYPE_KEY)
    if not _is_int(tid):
        raise _malformed("message has no integer type (key 0)")
    if tid not in _BY_ID:
        raise ProtocolError("unknown message type " + str(tid), -1, UNKNOWN_MESSAGE)
    name = _BY_ID[tid]
    body = {}
    for k in m:
        if not _is_int(k):
            raise _malformed(name + " has non-integer key " + repr(k))
        if k != TYPE_KEY:
            body[k] = m[k]
    return name, _unpack_fields(name, _with_time(CATALOGUE[name][1]), body)


def encode(name, fields, t=None):
    """CBOR bytes of message `name`. `t` (sender time) may be given here or
    as fields["t"]."""
    if t is not None:
        f = {}
        for k in fields:
            f[k] = fields[k]
        f["t"] = t
        fields = f
    return cbor.dumps(pack(name, fields))


def decode(data, max_size=cbor.MAX_SIZE):
    """(name, fields) from CBOR bytes. Raises ProtocolError."""
    return unpack(cbor.loads(data, max_size))


def type_id(name):
    return _spec_of(name)[0]


def unbatch(fields):
    """The messages inside a decoded batch, in order, as (name, fields).
    A batch inside a batch is refused."""
    out = []
    items = fields["items"]
    for i in range(len(items)):
        try:
            inner = decode(items[i])
        except ProtocolError as e:
            raise ProtocolError("batch item " + str(i) + ": " + e.message, -1, e.code)
        if inner[0] == "batch":
            raise _malformed("batch item " + str(i) + " is itself a batch")
        out.append(inner)
    return out
