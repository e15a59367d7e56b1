# COSE (RFC 9052) as veilpost uses it: COSE_Encrypt0 (tag 16) with
# AES-CCM-16-64-128 (alg 10) and COSE_Mac0 (tag 17) with HMAC 256/64 (alg 4).
# The protected header is the bstr-wrapped map {1: alg}; kid (4), IV (5) and
# Partial IV (6) travel unprotected. Every malformed or forged input raises
# ProtocolError, nothing else.

from . import cbor
from .ccm import DEFAULT_AEAD, NONCE_SIZE, TAG_SIZE, equal
from .errors import BAD_KEY, MALFORMED, RemoteProtocolError
from .hkdf import hmac_sha256

TAG_ENCRYPT0 = 16
TAG_MAC0 = 17
ALG_AES_CCM_16_64_128 = 10
ALG_HMAC_256_64 = 4
HDR_ALG = 1
HDR_CRIT = 2
HDR_KID = 4
HDR_IV = 5
HDR_PARTIAL_IV = 6
MAC_SIZE = 8
MAX_KID = 64
MAX_PARTIAL_IV = 8

_PROTECTED_CCM = cbor.dumps({HDR_ALG: ALG_AES_CCM_16_64_128})
_PROTECTED_HMAC = cbor.dumps({HDR_ALG: ALG_HMAC_256_64})
_AAD_CCM = cbor.dumps(["Encrypt0", _PROTECTED_CCM, b""])
_PROTECTED_MAPS = {_PROTECTED_CCM: {HDR_ALG: ALG_AES_CCM_16_64_128},
                   _PROTECTED_HMAC: {HDR_ALG: ALG_HMAC_256_64}}


def _malformed(what):
    return RemoteProtocolError("COSE: " + what, -1, MALFORMED)


def _enc_structure(protected, external_aad):
    if not external_aad and protected == _PROTECTED_CCM:
        return _AAD_CCM  # every session message and token: encoded once
    return cbor.dumps(["Encrypt0", protected, bytes(external_aad)])


def _mac_structure(protected, external_aad, payload):
    return cbor.dumps(["MAC0", protected, bytes(external_aad), payload])


def _unprotected(kid, iv, partial_iv):
    u = {}
    if kid:
        u[HDR_KID] = bytes(kid)
    if iv is not None:
        u[HDR_IV] = bytes(iv)
    if partial_iv is not None:
        u[HDR_PARTIAL_IV] = bytes(partial_iv)
    return u


def encrypt0(key, plaintext, nonce, kid=b"", partial_iv=None, external_aad=b"", aead=None):
    """Seal `plaintext` as a tagged COSE_Encrypt0. With `partial_iv` the
    header carries it (the receiver rebuilds `nonce` from its context, as
    OSCORE does); without, the full 13-byte `nonce` travels as IV (5)."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("AES-CCM-16-64-128 needs a 13-byte nonce")
    if partial_iv is None:
        u = _unprotected(kid, nonce, None)
    else:
        u = _unprotected(kid, None, partial_iv)
    aad = _enc_structure(_PROTECTED_CCM, external_aad)
    ct = (aead or DEFAULT_AEAD).seal(key, nonce, aad, plaintext)
    return cbor.dumps(cbor.Tag(TAG_ENCRYPT0, [_PROTECTED_CCM, u, ct]))


def _headers(protected, unprotected, want_alg):
    # Returns (kid, iv, partial_iv) after checking both header maps.
    if not isinstance(protected, bytes):
        raise _malformed("protected header must be a byte string")
    if not isinstance(unprotected, dict):
        raise _malformed("unprotected header must be a map")
    known = _PROTECTED_MAPS.get(protected)
    if known is not None:
        p = known  # the two headers we send: decoded once (never modified below)
    elif protected:
        p = cbor.loads(protected)
        if not isinstance(p, dict):
            raise _malformed("protected header must wrap a map")
    else:
        p = {}
    for label in p:
        if label in unprotected:
            raise _malformed("header " + repr(label) + " both protected and unprotected")
    if HDR_CRIT in p or HDR_CRIT in unprotected:
        raise _malformed("critical headers are not supported")
    alg = p.get(HDR_ALG, unprotected.get(HDR_ALG))
    if alg != want_alg:
        raise _malformed("algorithm " + repr(alg) + " is not " + str(want_alg))
    h = {}
    h.update(unprotected)
    h.update(p)
    kid = h.get(HDR_KID, b"")
    if not isinstance(kid, bytes) or len(kid) > MAX_KID:
        raise _malformed("kid must be a byte string of at most " + str(MAX_KID) + " bytes")
    iv = h.get(HDR_IV)
    piv = h.get(HDR_PARTIAL_IV)
    if iv is not None and piv is not None:
        raise _malformed("IV and Partial IV both present")
    if iv is not None and (not isinstance(iv, bytes) or len(iv) != NONCE_SIZE):
        raise _malformed("IV must be 13 bytes")
    if piv is not None and (not isinstance(piv, bytes) or not 1 <= len(piv) <= MAX_PARTIAL_IV):
        raise _malformed("Partial IV must be 1 to " + str(MAX_PARTIAL_IV) + " bytes")
    return kid, iv, piv


def _message(data, tag, size):
    obj = cbor.loads(data)
    if not isinstance(obj, cbor.Tag) or obj.tag != tag:
        raise _malformed("expected CBOR tag " + str(tag))
    body = obj.value
    if not isinstance(body, list) or len(body) != size:
        raise _malformed("expected an array of " + str(size))
    return body


def parse_encrypt0(data):
    """Check the structure of a COSE_Encrypt0 without decrypting it.
    Returns (kid, iv, partial_iv, protected, ciphertext); iv or partial_iv
    is None when absent."""
    protected, unprotected, ct = _message(data, TAG_ENCRYPT0, 3)
    kid, iv, piv = _headers(protected, unprotected, ALG_AES_CCM_16_64_128)
    if not isinstance(ct, bytes) or len(ct) < TAG_SIZE:
        raise _malformed("ciphertext must be a byte string of at least 8 bytes")
    return kid, iv, piv, protected, ct


def _key(key_for_kid, kid):
    key = key_for_kid(kid) if callable(key_for_kid) else key_for_kid
    if key is None:
        raise RemoteProtocolError("no key for kid " + repr(kid), -1, BAD_KEY)
    return key


def decrypt0(data, key_for_kid, external_aad=b"", nonce_for=None, aead=None):
    """Open a COSE_Encrypt0. `key_for_kid` is a key or a callable kid -> key
    (None: unknown). A message with a Partial IV needs `nonce_for(kid,
    partial_iv) -> 13 bytes`. Returns (plaintext, kid, partial_iv)."""
    kid, iv, piv, protected, ct = parse_encrypt0(data)
    if iv is None:
        if piv is None or nonce_for is None:
            raise _malformed("no IV, and no context to rebuild one from a Partial IV")
        iv = nonce_for(kid, piv)
    key = _key(key_for_kid, kid)
    aad = _enc_structure(protected, external_aad)
    plaintext = (aead or DEFAULT_AEAD).open(key, iv, aad, ct)
    return plaintext, kid, piv


def mac0_input(payload, external_aad=b""):
    """The bytes HMAC 256/64 covers in a COSE_Mac0 over `payload` (RFC 9052
    section 6.3), for a caller whose key lives elsewhere (a token)."""
    return _mac_structure(_PROTECTED_HMAC, external_aad, bytes(payload))


def mac0_assemble(payload, tag, kid=b""):
    """A tagged COSE_Mac0 from its payload and an 8-byte tag made over `mac0_input(payload)`."""
    if len(tag) != MAC_SIZE:
        raise ValueError("HMAC 256/64 tag must be 8 bytes")
    u = _unprotected(kid, None, None)
    return cbor.dumps(cbor.Tag(TAG_MAC0, [_PROTECTED_HMAC, u, bytes(payload), bytes(tag)]))


def mac0(key, payload, kid=b"", external_aad=b""):
    """A tagged COSE_Mac0 over `payload` with HMAC-SHA256 truncated to 64 bits."""
    tag = hmac_sha256(key, mac0_input(payload, external_aad))[:MAC_SIZE]
    return mac0_assemble(payload, tag, kid)


def parse_mac0(data, external_aad=b""):
    """(payload, kid, tag, bytes the tag covers) of a COSE_Mac0, unchecked."""
    protected, unprotected, payload, tag = _message(data, TAG_MAC0, 4)
    kid = _headers(protected, unprotected, ALG_HMAC_256_64)[0]
    if not isinstance(payload, bytes):
        raise _malformed("payload must be a byte string (detached payloads are not used)")
    if not isinstance(tag, bytes) or len(tag) != MAC_SIZE:
        raise _malformed("HMAC 256/64 tag must be 8 bytes")
    return payload, kid, tag, _mac_structure(protected, external_aad, payload)


def verify_mac0(data, key_for_kid, external_aad=b""):
    """Check a COSE_Mac0. Returns (payload, kid); raises ProtocolError
    (BAD_KEY) when the tag does not match."""
    payload, kid, tag, covered = parse_mac0(data, external_aad)
    key = _key(key_for_kid, kid)
    if not equal(hmac_sha256(key, covered)[:MAC_SIZE], tag):
        raise RemoteProtocolError("MAC check failed: wrong key or forged label", -1, BAD_KEY)
    return payload, kid
