"""The gateway's hot path through protocol's Channel, with cbor2's C codec.

Outgoing: the bytes are the same as protocol/cbor.py's (both follow RFC 8949
deterministic encoding; tests/test_gateway_fastwire.py proves it for every
message the gateway sends); validation still goes through
protocol.messages.pack. Incoming: an envelope that is exactly what a
handheld sends (canonical CBOR, protected {1: 10}, unprotected {4: kid,
6: partial IV}) is parsed by cbor2; anything else goes through protocol's
strict parser, so bad input gets protocol's own errors. The message inside
is always decoded by protocol.messages."""

from __future__ import annotations

from typing import Any

import cbor2

from protocol import cose, messages, session
from protocol.errors import BAD_KEY, ProtocolError
from protocol.session import Channel, nonce, partial_iv

_PROTECTED = cose._PROTECTED_CCM
_AAD = cose._enc_structure(_PROTECTED, b"")  # constant: we never send external AAD
FAST_MESSAGE_MAX = 512  # bigger messages (batches) take protocol's bounded decoder


def _dumps(obj: Any) -> bytes:
    return cbor2.dumps(obj, canonical=True)


def _encrypt0(aead: Any, key: bytes, plaintext: bytes, nonce_: bytes, unprotected: dict[int, bytes]) -> bytes:
    ct = aead.seal(key, nonce_, _AAD, plaintext)
    return _dumps(cbor2.CBORTag(cose.TAG_ENCRYPT0, [_PROTECTED, unprotected, ct]))


def _plain_envelope(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(kid, partial IV, ciphertext) of a canonical handheld envelope, else None."""
    try:
        obj = cbor2.loads(data)
    except Exception:
        return None
    if type(obj) is not cbor2.CBORTag or obj.tag != cose.TAG_ENCRYPT0:
        return None
    body = obj.value
    if type(body) is not list or len(body) != 3:
        return None
    protected, unprotected, ct = body
    if protected != _PROTECTED or type(unprotected) is not dict or set(unprotected) != {4, 6}:
        return None
    kid, piv = unprotected[cose.HDR_KID], unprotected[cose.HDR_PARTIAL_IV]
    if type(kid) is not bytes or not 1 <= len(kid) <= cose.MAX_KID:
        return None
    if type(ct) is not bytes or len(ct) < cose.TAG_SIZE:
        return None
    if type(piv) is not bytes or not 1 <= len(piv) <= session.MAX_PIV or (len(piv) > 1 and piv[0] == 0):
        return None
    if _dumps(obj) != data:  # only canonical input: there both parsers agree
        return None
    return kid, piv, ct


def _message(plaintext: bytes) -> tuple[str, dict[str, Any]]:
    """A small canonical message is decoded by cbor2, then checked field by
    field by protocol.messages.unpack; anything else by messages.decode."""
    if len(plaintext) <= FAST_MESSAGE_MAX:
        try:
            obj = cbor2.loads(plaintext)
        except Exception:
            obj = None
        if type(obj) is dict and _dumps(obj) == plaintext:
            name, fields = messages.unpack(obj)
            return name, fields
    name, fields = messages.decode(plaintext)
    return name, fields


class GatewayChannel(Channel):
    """A protocol Channel with cbor2 on the hot path (see the module comment)."""

    def unwrap(self, data: bytes, now: float) -> tuple[str, dict[str, Any], int]:
        plaintext, seq = self.open(data)
        name, fields = _message(plaintext)
        return name, fields, seq

    def open(self, data: bytes) -> tuple[bytes, int]:
        parts = _plain_envelope(data)
        if parts is None:
            return super().open(data)  # protocol's strict parser and its exact errors
        kid, piv, ct = parts
        seq = int.from_bytes(piv, "big")
        self.replay.check(seq)  # refuse a replay before spending a decryption on it
        if kid != self.kid:
            raise ProtocolError("kid " + repr(kid) + " is not device " + self.device_id, -1, BAD_KEY)
        plaintext = self.aead.open(self._recv_key, nonce(self._recv_iv, piv), _AAD, ct)
        self.replay.accept(seq)
        return plaintext, seq

    def seal(self, plaintext: bytes) -> bytes:
        seq = self.send_seq
        if seq > session.MAX_SEQ:
            raise ValueError("sequence numbers exhausted: rotate the device keys")
        piv = partial_iv(seq)
        out = _encrypt0(self.aead, self._send_key, plaintext, nonce(self._send_iv, piv),
                        {cose.HDR_KID: self.kid, cose.HDR_PARTIAL_IV: piv})
        self.send_seq = seq + 1
        return out

    def wrap(self, name: str, fields: dict[str, Any], now: int) -> bytes:
        f = dict(fields)
        f["t"] = now
        return self.seal(_dumps(messages.pack(name, f)))

    def seal_token(self, tracking_no: str, fields: dict[int, str], cti: bytes, exp: int) -> bytes:
        if len(cti) != session.CTI_SIZE:
            raise ValueError("cti must be 8 bytes")
        body: dict[int, Any] = {session.TOKEN_TRACKING_NO: tracking_no, session.TOKEN_EXP: exp}
        for fid, text in fields.items():
            if not isinstance(fid, int) or fid < 1 or not isinstance(text, str):
                raise ValueError("token fields map a field id (>= 1) to its text")
            body[fid] = text
        iv = bytes(session.IV_SIZE - session.CTI_SIZE) + bytes(cti)
        return _encrypt0(self.aead, self.token_key, _dumps(body), iv, {cose.HDR_PARTIAL_IV: bytes(cti)})
