"""On-wire size of every catalogue message against the same content as JSON.

Run: python3 -m tools.bench.message_sizes

"wire" is the whole MQTT payload: the CBOR message sealed in COSE_Encrypt0 by
protocol.session.Channel (tag 16, protected {1: 10}, unprotected {4: kid,
6: partial IV}, ciphertext = plaintext + 8-byte tag: 30 bytes for a 7-byte
device id and a 2-byte sequence number).
"json" is the same content as a JSON object with field names as text, the
message name as "type" and bytes as base64 (a batch holds its inner messages
as JSON objects). A JSON design needs the same end-to-end sealing (the broker
must see ciphertext only), so "saving" compares both inside the same
envelope; "saving_plain" compares the bare encodings.
Targets: scan <= 128 B (with its label proof), reveal_grant <= 160 B, every
message >= 40% below JSON.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from protocol import labels, messages, session

DEVICE_ID = "hh-0042"
SEQ = 1000  # a sender some way into its life: two-byte Partial IV
NOW = 1764000000
SESSION = bytes.fromhex("5e551011cafe0042")
CTI = bytes.fromhex("c7100000000000a1")
# A scan was 63 B before it carried the label's 44-byte proof (docs/wire.md).
TARGETS = {"scan": 128, "reveal_grant": 160}
MIN_SAVING = 0.40


def _parcel(n: int) -> dict[str, Any]:
    return {
        "tracking_no": "VP10000000%02d" % n,
        "name": "測**",
        "phone": "170******%02d" % n,
        "address": "測試市測試區樣例路%d號 *棟***室" % n,
        "sort_code": "A-07-%02d" % n,
        "window_start": NOW + 3600,
        "window_end": NOW + 7200,
    }


def _token(fields: dict[int, str]) -> bytes:
    """A reveal token as the gateway seals it for the handheld."""
    return bytes(session.seal_token(bytes(16), "VP1000000001", fields, CTI, NOW + 120))


def samples() -> dict[str, dict[str, Any]]:
    """One realistic (fake) instance of every message, by name."""
    inner = messages.encode("token_use", {"t": NOW, "cti": CTI, "tracking_no": "VP1000000001",
                                          "used_at": NOW - 60})
    return {
        "hello": {"device": DEVICE_ID, "fw": "0.1.0", "lang": "zh-Hant"},
        "login": {"badge": "C-112", "pin_proof": bytes(range(16))},
        "login_result": {"ok": True, "session": SESSION, "courier": "C-112", "shift_end": NOW + 8 * 3600},
        "logout": {"session": SESSION},
        "route_request": {"session": SESSION, "route": "R-07"},
        "route": {"route": "R-07", "parcels": [_parcel(n) for n in range(1, 4)]},
        # The stock handheld's scan carries the label's QR (the possession proof).
        "scan": {"tracking_no": "VP1000000001", "session": SESSION,
                 "label": labels.assemble(b"L1", "VP1000000001", 1, NOW - 3600, bytes(8))},
        "reveal_request": {"req": 17, "tracking_no": "VP1000000001", "fields": [2], "reason": 1,
                           "session": SESSION},
        "reveal_grant": {"req": 17, "tracking_no": "VP1000000001", "cti": CTI, "exp": NOW + 120,
                         "fields": [2], "token": _token({2: "17000001234"})},
        "reveal_denied": {"req": 17, "tracking_no": "VP1000000001", "code": 1,
                          "reason": messages.DENIALS[1]},
        "delivered": {"tracking_no": "VP1000000001", "session": SESSION, "proof": bytes(32), "kind": 1},
        "seal": {"tracking_no": "VP1000000001"},
        "batch": {"items": [inner, inner], "ids": [41, 42]},
        "token_use": {"cti": CTI, "tracking_no": "VP1000000001", "used_at": NOW - 60},
        "preissue_request": {"session": SESSION, "tracking_nos": ["VP1000000001", "VP1000000002"]},
        "preissue": {"tokens": [{"tracking_no": "VP1000000001", "cti": CTI, "exp": NOW + 8 * 3600,
                                 "fields": [2], "token": _token({2: "17000001234"})}]},
        "command": {"id": 3, "cmd": messages.CMD_LOCK},
        "command_ack": {"id": 3, "ok": True},
        "print_job": {"job": 901, "printer": "depot-1-zebra", "tracking_no": "VP1000000001",
                      "template": "100x150", "copies": 1},
        "print_status": {"job": 901, "state": 3},
        "error": {"code": 4, "detail": "replayed", "ref": 999},
        "batch_ack": {"ids": [41, 42], "outcomes": [messages.BATCH_OK, 1]},
    }


def _jsonable(x: Any) -> Any:
    if isinstance(x, bytes):
        return base64.b64encode(x).decode()
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    return x


def as_json(name: str, fields: dict[str, Any]) -> bytes:
    body: dict[str, Any] = {"type": name, "t": NOW}
    if name == "batch":
        inner = []
        for item in fields["items"]:
            iname, ifields = messages.decode(item)
            inner.append(json.loads(as_json(iname, ifields)))
        body["items"] = inner
    else:
        body.update(_jsonable(fields))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _seal(plaintext: bytes) -> bytes:
    ch = session.Channel(bytes(32), DEVICE_ID, session.HANDHELD, send_seq=SEQ)
    return bytes(ch.seal(plaintext))


def measure() -> dict[str, dict[str, Any]]:
    """{name: {"cbor", "wire", "json", "json_sealed", "saving", "saving_plain",
    "target", "ok"}} for every message; savings are fractions."""
    out: dict[str, dict[str, Any]] = {}
    for name, fields in samples().items():
        plaintext = messages.encode(name, fields, t=NOW)
        wire = len(_seal(plaintext))
        js = as_json(name, fields)
        js_sealed = len(_seal(js))
        saving = 1 - wire / js_sealed
        target = TARGETS.get(name)
        ok = saving >= MIN_SAVING and (target is None or wire <= target)
        out[name] = {"cbor": len(plaintext), "wire": wire, "json": len(js), "json_sealed": js_sealed,
                     "saving": round(saving, 3), "saving_plain": round(1 - len(plaintext) / len(js), 3),
                     "target": target, "ok": ok}
    return out


def main() -> None:
    rows = measure()
    print("message sizes in bytes; wire = COSE_Encrypt0 (protocol.session), device id %r, seq %d"
          % (DEVICE_ID, SEQ))
    print("%-17s %5s %5s %5s %6s %7s %7s %6s" % ("message", "cbor", "wire", "json", "json+", "saving",
                                                  "plain", "target"))
    for name, r in rows.items():
        target = "<=%d" % r["target"] if r["target"] else ""
        flag = "" if r["ok"] else "  MISSED"
        print("%-17s %5d %5d %5d %6d %6.0f%% %6.0f%% %6s%s" % (
            name, r["cbor"], r["wire"], r["json"], r["json_sealed"], 100 * r["saving"],
            100 * r["saving_plain"], target, flag))
    print("json+ = the JSON sealed in the same envelope; plain = cbor against json, both bare")


if __name__ == "__main__":
    main()
