"""The gateway's outgoing messages, encoded by cbor2's C encoder instead of
protocol/cbor.py's pure-Python one. The bytes are the same (both follow RFC
8949 deterministic encoding; tests/test_gateway_fastwire.py proves it for
every message the gateway sends); only the speed differs. Validation still
goes through protocol.messages.pack, and everything received is still
decoded by protocol's strict decoder."""

from __future__ import annotations

from typing import Any

import cbor2

from protocol import cose, messages, session
from protocol.session import Channel, nonce, partial_iv

_PROTECTED = cose._PROTECTED_CCM
_AAD = cose._enc_structure(_PROTECTED, b"")  # constant: we never send external AAD


def _dumps(obj: Any) -> bytes:
    return cbor2.dumps(obj, canonical=True)


def _encrypt0(aead: Any, key: bytes, plaintext: bytes, nonce_: bytes, unprotected: dict[int, bytes]) -> bytes:
    ct = aead.seal(key, nonce_, _AAD, plaintext)
    return _dumps(cbor2.CBORTag(cose.TAG_ENCRYPT0, [_PROTECTED, unprotected, ct]))


class GatewayChannel(Channel):
    """A protocol Channel whose seal, wrap and seal_token encode with cbor2."""

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
