# A device's secure channel (docs/wire.md): keys and common IVs from the
# 32-byte master secret by HKDF-SHA256, one COSE_Encrypt0 per message with the
# sender's sequence number as Partial IV, a sliding replay window per
# direction, and reveal tokens under the device's token key.

from . import cbor, cose, messages
from .errors import BAD_KEY, EXPIRED, MALFORMED, RemoteProtocolError
from .hkdf import hkdf
from .replay import ReplayWindow
from .topics import ID_RULE, valid_id

HANDHELD = "handheld"
GATEWAY = "gateway"
_ROLES = {HANDHELD: True, "device": True, GATEWAY: False}

SALT = b"veilpost/v1"
KEY_SIZE = 16
IV_SIZE = 13
MASTER_SECRET_SIZE = 32
REPLAY_WINDOW = 32
MAX_PIV = 5  # as OSCORE: sequence numbers below 2**40
MAX_SEQ = (1 << 40) - 1
CTI_SIZE = 8

# Keys of a reveal token's plaintext map; 1..3 are the personal field ids.
TOKEN_TRACKING_NO = 0
TOKEN_EXP = -1

def derive(master_secret, device_id, label, length):
    """HKDF-SHA256(master_secret, salt "veilpost/v1", info CBOR [device_id, label])."""
    return hkdf(master_secret, SALT, cbor.dumps([device_id, label]), length)


def partial_iv(seq):
    """The sequence number big-endian in the fewest bytes, at least one."""
    n = 1
    while seq >> (8 * n):
        n += 1
    return seq.to_bytes(n, "big")


def seq_of(piv):
    """The sequence number in a Partial IV; refuses padded or oversize forms
    so that one number has exactly one encoding on the wire."""
    if not 1 <= len(piv) <= MAX_PIV:
        raise RemoteProtocolError("Partial IV must be 1 to " + str(MAX_PIV) + " bytes", -1, MALFORMED)
    if len(piv) > 1 and piv[0] == 0:
        raise RemoteProtocolError("Partial IV has a leading zero byte", -1, MALFORMED)
    return int.from_bytes(piv, "big")


def nonce(common_iv, piv):
    """Common IV XOR the Partial IV left-padded to 13 bytes."""
    pad = IV_SIZE - len(piv)
    out = bytearray(common_iv)
    for i in range(len(piv)):
        out[pad + i] ^= piv[i]
    return bytes(out)


def seal_token(token_key, tracking_no, fields, cti, exp, aead=None):
    """A reveal token: COSE_Encrypt0 under the token key of
    {0: tracking_no, -1: exp, field_id: text...}. The 8-byte `cti` is the
    Partial IV, so it is bound to the ciphertext without being repeated."""
    if len(cti) != CTI_SIZE:
        raise ValueError("cti must be 8 bytes")
    body = {TOKEN_TRACKING_NO: tracking_no, TOKEN_EXP: exp}
    for fid in fields:
        if not isinstance(fid, int) or fid < 1 or not isinstance(fields[fid], str):
            raise ValueError("token fields map a field id (>= 1) to its text")
        body[fid] = fields[fid]
    iv = bytes(IV_SIZE - CTI_SIZE) + bytes(cti)
    return cose.encrypt0(token_key, cbor.dumps(body), iv, partial_iv=cti, aead=aead)


def _token_nonce(kid, piv):
    if len(piv) != CTI_SIZE:
        raise RemoteProtocolError("token cti must be 8 bytes", -1, MALFORMED)
    return bytes(IV_SIZE - CTI_SIZE) + piv


def open_token(token_key, data, now, aead=None):
    """Check and decrypt a reveal token. Returns (tracking_no, cti, exp,
    {field_id: text}); raises ProtocolError, EXPIRED once `now` > exp."""
    plaintext, _, cti = cose.decrypt0(data, token_key, nonce_for=_token_nonce, aead=aead)
    body = cbor.loads(plaintext)
    if not isinstance(body, dict):
        raise RemoteProtocolError("token body must be a map", -1, MALFORMED)
    tracking_no = body.get(TOKEN_TRACKING_NO)
    exp = body.get(TOKEN_EXP)
    if not isinstance(tracking_no, str) or not isinstance(exp, int) or isinstance(exp, bool) or exp < 0:
        raise RemoteProtocolError("token needs a tracking number and an expiry", -1, MALFORMED)
    fields = {}
    for k in body:
        if k == TOKEN_TRACKING_NO or k == TOKEN_EXP:
            continue
        if not isinstance(k, int) or k < 1 or not isinstance(body[k], str):
            raise RemoteProtocolError("token field " + repr(k) + " is not a field id with text", -1,
                                      MALFORMED)
        fields[k] = body[k]
    if now > exp:
        raise RemoteProtocolError("reveal token expired at " + str(exp), -1, EXPIRED)
    return tracking_no, cti, exp, fields


class Channel:
    """One device's session with the gateway, seen from `role` (HANDHELD or
    GATEWAY). `send_seq` is the next sequence number to send: persist it.
    With `max_skew` (seconds), unwrap refuses a message whose sender time is
    further than that from the receiver's `now`."""

    def __init__(self, master_secret, device_id, role, aead=None, send_seq=0, replay=None, max_skew=None):
        if len(master_secret) != MASTER_SECRET_SIZE:
            raise ValueError("master secret must be 32 bytes")
        if not valid_id(device_id):  # a bad argument, like the others here: ValueError
            raise ValueError("device id must be " + ID_RULE)
        if role not in _ROLES:
            raise ValueError("role must be 'handheld' or 'gateway'")
        if not 0 <= send_seq <= MAX_SEQ:
            raise ValueError("send_seq out of range")
        self.device_id = device_id
        self.kid = device_id.encode()
        self.role = GATEWAY if role == GATEWAY else HANDHELD
        self.aead = aead
        self.send_seq = send_seq
        self.max_skew = max_skew
        up = derive(master_secret, device_id, "up", KEY_SIZE)
        down = derive(master_secret, device_id, "down", KEY_SIZE)
        iv_up = derive(master_secret, device_id, "iv-up", IV_SIZE)
        iv_down = derive(master_secret, device_id, "iv-down", IV_SIZE)
        self.token_key = derive(master_secret, device_id, "token", KEY_SIZE)
        if _ROLES[role]:
            self._send_key, self._send_iv, self._recv_key, self._recv_iv = up, iv_up, down, iv_down
        else:
            self._send_key, self._send_iv, self._recv_key, self._recv_iv = down, iv_down, up, iv_up
        # Pass the ReplayWindow a previous run persisted to keep refusing old numbers.
        self.replay = replay if replay is not None else ReplayWindow(REPLAY_WINDOW)

    def seal(self, plaintext):
        """Encrypt `plaintext` as the next message in the sending direction."""
        seq = self.send_seq
        if seq > MAX_SEQ:
            raise ValueError("sequence numbers exhausted: rotate the device keys")
        piv = partial_iv(seq)
        out = cose.encrypt0(self._send_key, plaintext, nonce(self._send_iv, piv),
                            kid=self.kid, partial_iv=piv, aead=self.aead)
        self.send_seq = seq + 1
        return out

    def _recv_nonce(self, kid, piv):
        if kid != self.kid:
            raise RemoteProtocolError("kid " + repr(kid) + " is not device " + self.device_id, -1, BAD_KEY)
        return nonce(self._recv_iv, piv)

    def open(self, data):
        """Check, decrypt and replay-check one received message.
        Returns (plaintext, seq)."""
        kid, iv, piv, _, _ = cose.parse_encrypt0(data)
        if piv is None or iv is not None:
            raise RemoteProtocolError("session messages carry a Partial IV and no IV", -1, MALFORMED)
        seq = seq_of(piv)
        self.replay.check(seq)  # refuse a replay before spending a decryption on it
        plaintext = cose.decrypt0(data, self._recv_key, nonce_for=self._recv_nonce, aead=self.aead)[0]
        self.replay.accept(seq)
        return plaintext, seq

    def wrap(self, name, fields, now):
        """Encode catalogue message `name` stamped with time `now`, and seal it."""
        f = dict(fields)
        f["t"] = now
        return self.seal(messages.encode(name, f))

    def unwrap(self, data, now):
        """Open and decode one message. Returns (name, fields, seq)."""
        plaintext, seq = self.open(data)
        name, fields = messages.decode(plaintext)
        if self.max_skew is not None and abs(fields["t"] - now) > self.max_skew:
            raise RemoteProtocolError(name + " sent at " + str(fields["t"]) + ", " + str(now - fields["t"]) +
                                " s from now (" + str(now) + ")", -1, EXPIRED)
        return name, fields, seq

    def seal_token(self, tracking_no, fields, cti, exp):
        return seal_token(self.token_key, tracking_no, fields, cti, exp, self.aead)

    def open_token(self, data, now):
        return open_token(self.token_key, data, now, self.aead)
