# The label's QR code: the gateway's per-label proof that whoever scans it
# holds the parcel. It is a tagged COSE_Mac0 (HMAC 256/64, RFC 9052) under a
# label key only the gateway has, named by kid, over the CBOR map
# {1: tracking_no, 2: label_no, 3: issued}: label_no counts the labels the
# gateway has printed for the parcel (a reprint makes the old one void) and
# issued is when it was made (Unix seconds). On the label it is base64url
# text without padding. No personal data is in it.
#
# A handheld cannot check the MAC; it reads the tracking number out of the
# QR with `read()` and sends the bytes in its scan. The gateway checks them
# (gateway/labels.py). Sans-I/O: runs on CPython and MicroPython.

import binascii

from . import cbor, cose
from .errors import MALFORMED, RemoteProtocolError

KEY_TRACKING_NO = 1
KEY_LABEL_NO = 2
KEY_ISSUED = 3
MAX_QR_TEXT = 512   # longer text is not one of our labels
MAX_QR_BYTES = 384


def _malformed(what):
    return RemoteProtocolError("label QR: " + what, -1, MALFORMED)


def payload(tracking_no, label_no, issued):
    """The CBOR the label key signs."""
    return cbor.dumps({KEY_TRACKING_NO: tracking_no, KEY_LABEL_NO: label_no, KEY_ISSUED: issued})


def to_text(raw):
    """base64url without padding: what the QR code holds."""
    text = binascii.b2a_base64(bytes(raw)).strip()
    text = text.replace(b"+", b"-").replace(b"/", b"_").rstrip(b"=")
    return text.decode()


def from_text(text):
    """The QR's bytes from its base64url text; RemoteProtocolError if it is not."""
    if isinstance(text, str):
        text = text.encode()
    if not 8 <= len(text) <= MAX_QR_TEXT:
        raise _malformed("text of %d characters is not a veilpost label" % len(text))
    for c in text:
        if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 45 or c == 95):
            raise _malformed("not base64url text")
    text = text.replace(b"-", b"+").replace(b"_", b"/")
    text = text + b"=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text)
    except (ValueError, binascii.Error):
        raise _malformed("not base64url text")


def _fields(body):
    if not isinstance(body, dict) or len(body) != 3:
        raise _malformed("payload must be a map of tracking_no, label_no and issued")
    tn, no, issued = body.get(KEY_TRACKING_NO), body.get(KEY_LABEL_NO), body.get(KEY_ISSUED)
    if not isinstance(tn, str) or not 1 <= len(tn) <= 32:
        raise _malformed("tracking number must be text of 1-32 characters")
    for v in (no, issued):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise _malformed("label number and issue time must be unsigned integers")
    return tn, no, issued


def read(raw):
    """(tracking_no, label_no, issued, kid) from the QR's bytes, without
    checking the MAC (nobody but the gateway can)."""
    tn, no, issued, kid, _tag, _covered = parse(raw)
    return tn, no, issued, kid


def parse(raw):
    """(tracking_no, label_no, issued, kid, tag, bytes the tag covers): for
    the gateway, which checks the tag with its label key."""
    if len(raw) > MAX_QR_BYTES:
        raise _malformed("%d bytes is too long for a label" % len(raw))
    body, kid, tag, covered = cose.parse_mac0(bytes(raw))
    if not kid:
        raise _malformed("no key id")
    tn, no, issued = _fields(cbor.loads(body, MAX_QR_BYTES, 2, 8))
    return tn, no, issued, kid, tag, covered


def assemble(kid, tracking_no, label_no, issued, tag):
    """The QR's bytes from a tag the gateway made over `mac_input(...)`."""
    return cose.mac0_assemble(payload(tracking_no, label_no, issued), tag, kid)


def mac_input(tracking_no, label_no, issued):
    """What the label key's HMAC covers."""
    return cose.mac0_input(payload(tracking_no, label_no, issued))
