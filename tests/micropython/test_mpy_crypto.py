"""The crypto half of protocol/ inside the real MicroPython 1.27 VM: the same
probe runs there and on CPython, and both must print identical results."""

from __future__ import annotations

import contextlib
import io
import json

# Runs unchanged on both interpreters: fixed inputs, results as hex in JSON.
PROBE = r'''
import json
from binascii import hexlify, unhexlify
from protocol import aes, ccm, cose, hkdf, session
from protocol.errors import ProtocolError

def h(b):
    return hexlify(b).decode()

def code_of(fn):
    try:
        fn()
    except ProtocolError as e:
        return e.code
    return 0

out = {}
out["aes"] = [h(aes.AES(unhexlify(k)).encrypt_block(unhexlify("00112233445566778899aabbccddeeff")))
              for k in ("000102030405060708090a0b0c0d0e0f",
                        "000102030405060708090a0b0c0d0e0f1011121314151617",
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")]
key = unhexlify("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
nonce = unhexlify("00000003020100a0a1a2a3a4a5")
sealed = ccm.seal(key, nonce, unhexlify("0001020304050607"),
                  unhexlify("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e"))
out["ccm"] = h(sealed)
out["ccm_open"] = h(ccm.open(key, nonce, unhexlify("0001020304050607"), sealed))
out["ccm_forged"] = code_of(lambda: ccm.open(key, nonce, b"", sealed))
out["hkdf"] = [
    h(hkdf.hkdf(b"\x0b" * 22, unhexlify("000102030405060708090a0b0c"),
                unhexlify("f0f1f2f3f4f5f6f7f8f9"), 42)),
    h(hkdf.hkdf(bytes(range(0x50)), bytes(range(0x60, 0xb0)), bytes(range(0xb0, 0x100)), 82)),
    h(hkdf.hkdf(b"\x0b" * 22, b"", b"", 42)),
]
ck = bytes(range(16))
enc = cose.encrypt0(ck, "測試甲".encode(), bytes(range(13)), kid=b"HH-1", external_aad=b"x")
out["cose"] = h(enc)
out["cose_open"] = h(cose.decrypt0(enc, ck, external_aad=b"x")[0])
out["cose_bad"] = [code_of(lambda: cose.decrypt0(enc[:-1], ck)), code_of(lambda: cose.decrypt0(enc, ck))]
mac = cose.mac0(bytes(32), b"label", kid=b"gw")
out["mac0"] = h(mac)
out["mac0_verify"] = h(cose.verify_mac0(mac, bytes(32))[0])
hh = session.Channel(bytes(range(32)), "HH-mpy-01", "handheld", send_seq=300)
gw = session.Channel(bytes(range(32)), "HH-mpy-01", "gateway")
up = hh.seal(b"scan SF1234567890")
out["up"] = h(up)
pt, seq = gw.open(up)
out["up_open"] = [h(pt), seq]
out["replayed"] = code_of(lambda: gw.open(up))
down = gw.seal(b"grant")
out["down_open"] = h(hh.open(down)[0])
token = gw.seal_token("SF1234567890", {2: "17000001234"}, b"\x01" * 8, 1760000060)
out["token"] = h(token)
t = hh.open_token(token, 1760000000)
out["token_open"] = [t[0], h(t[1]), t[2], t[3][2]]
out["token_expired"] = code_of(lambda: hh.open_token(token, 1760000061))
out["send_seq"] = [hh.send_seq, gw.send_seq]
print(json.dumps(out))
'''


def cpython_result() -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(PROBE, {"__name__": "probe"})
    return json.loads(buf.getvalue())


def test_crypto_results_in_micropython_equal_cpython(mpy_run) -> None:
    expected = cpython_result()
    got = json.loads(mpy_run(PROBE).lines()[-1])
    assert got == expected
    # And CPython itself agrees with the published answers.
    assert expected["aes"] == ["69c4e0d86a7b0430d8cdb78070b4c55a", "dda97ca4864cdfe06eaf70a0ec0d7191",
                               "8ea2b7ca516745bfeafc49904b496089"]
    assert expected["ccm"] == "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"
    assert expected["hkdf"][2] == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                                   "9d201395faa4b61a96c8")
    assert expected["up_open"] == ["7363616e20534631323334353637383930", 300]
    assert expected["replayed"] == 4 and expected["token_expired"] == 8
    assert expected["cose_bad"] == [1, 3]


WRAP_PROBE = r'''
from protocol import session
hh = session.Channel(bytes(range(32)), "HH-mpy-01", "handheld")
gw = session.Channel(bytes(range(32)), "HH-mpy-01", "gateway")
wire = hh.wrap("scan", {"tracking_no": "SF1234567890", "session": b"\x01" * 8}, 1760000000)
name, fields, seq = gw.unwrap(wire, 1760000000)
print(name, fields["tracking_no"], fields["t"], seq, len(wire))
'''


def test_channel_wrap_round_trip_in_micropython(mpy_run) -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(WRAP_PROBE, {"__name__": "probe"})
    assert mpy_run(WRAP_PROBE).lines()[-1] == buf.getvalue().strip()
    assert buf.getvalue().startswith("scan SF1234567890 1760000000 0 ")
