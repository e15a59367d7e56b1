# MQTT topic names (docs/wire.md). The topic says only which device spoke;
# the message type travels inside the encrypted payload.

from .errors import MALFORMED, InvalidId, LocalProtocolError, RemoteProtocolError

ROOT = "vp/v1"
ALARM = ROOT + "/alarm"
# The audit log's signed checkpoints, retained, for witnesses (gateway/witness.py).
AUDIT_CHECKPOINT = ROOT + "/audit/checkpoint"
UP_FILTER = ROOT + "/d/+/up"
SHARE_GROUP = "veilpost"
# What every gateway subscribes to, so that several share the handhelds' load.
SHARED_UP_FILTER = "$share/" + SHARE_GROUP + "/" + UP_FILTER
MAX_ID = 32
ID_RULE = "1 to 32 characters of A-Z a-z 0-9 _ -"

# Per-device topic kinds, in the order of the table in docs/wire.md.
DEVICE_KINDS = ("up", "down", "cmd")


def _id_char(c):
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c == "_" or c == "-"


def valid_id(s):
    """True for a device or gateway id: [A-Za-z0-9_-]{1,32}. The one rule:
    the session, the registry and the broker accounts all ask here."""
    if not isinstance(s, str) or not 1 <= len(s) <= MAX_ID:
        return False
    for c in s:
        if not _id_char(c):
            return False
    return True


def check_id(s, what="device"):
    """`s` if it is a valid id, else InvalidId naming it and the rule."""
    if not valid_id(s):
        raise InvalidId(what + " id " + repr(s) + " is not " + ID_RULE, -1, MALFORMED)
    return s


def up(device_id):
    return ROOT + "/d/" + check_id(device_id, "device") + "/up"


def down(device_id):
    return ROOT + "/d/" + check_id(device_id, "device") + "/down"


def cmd(device_id):
    return ROOT + "/d/" + check_id(device_id, "device") + "/cmd"


def gateway_status(gateway_id):
    return ROOT + "/gw/" + check_id(gateway_id, "gateway") + "/status"


def device_topic(kind, device_id):
    if kind not in DEVICE_KINDS:
        raise LocalProtocolError("unknown device topic kind " + repr(kind), -1, MALFORMED)
    return ROOT + "/d/" + check_id(device_id, "device") + "/" + kind


def parse(topic):
    """(kind, id) for a topic: ("up"|"down"|"cmd", device_id),
    ("status", gateway_id) or ("alarm", None). RemoteProtocolError otherwise."""
    if isinstance(topic, (bytes, bytearray)):
        try:
            topic = bytes(topic).decode("utf-8")
        except Exception:
            raise RemoteProtocolError("topic is not UTF-8", -1, MALFORMED)
    if not isinstance(topic, str):
        raise RemoteProtocolError("topic must be text", -1, MALFORMED)
    if topic == ALARM:
        return ("alarm", None)
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "vp" and parts[1] == "v1":
        if parts[2] == "d" and parts[4] in DEVICE_KINDS:
            return (parts[4], _their_id(parts[3], "device"))
        if parts[2] == "gw" and parts[4] == "status":
            return ("status", _their_id(parts[3], "gateway"))
    raise RemoteProtocolError("not a veilpost topic: " + repr(topic[:80]), -1, MALFORMED)


def _their_id(s, what):
    if not valid_id(s):
        raise RemoteProtocolError(what + " id in the topic is not " + ID_RULE, -1, MALFORMED)
    return s
