"""protocol/ runs unchanged on MicroPython 1.27: the same script runs in the
VM and in CPython, and the two print the same lines (hex of every encoding,
every decoded value, every error code and offset)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import pytest

from tests.fixtures.micropython import MpyResult

pytestmark = pytest.mark.micropython

# Printed lines must not depend on dict order or repr details: sort and hex.
SHOW = """
import binascii
def show(x):
    if isinstance(x, (bytes, bytearray)):
        return "h'" + binascii.hexlify(x).decode() + "'"
    if isinstance(x, dict):
        return "{" + ", ".join(sorted([show(k) + ": " + show(v) for k, v in x.items()])) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join([show(v) for v in x]) + "]"
    if isinstance(x, str):
        return '"' + x + '"'
    return repr(x)
def err(fn, *args):
    try:
        fn(*args)
    except ProtocolError as e:
        return "ProtocolError code=%d offset=%d" % (e.code, e.offset)
    return "no error"
from protocol.errors import ProtocolError
"""


def _cpython(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    return out.getvalue()


def _same_in_both(mpy_run: Callable[..., MpyResult], code: str) -> list[str]:
    code = SHOW + code
    vm = mpy_run(code).stdout
    assert vm == _cpython(code)
    lines = vm.splitlines()
    assert lines, "the script printed nothing"
    return lines


CBOR = """
from protocol import cbor
values = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 - 1, -1, -24, -25,
          -(2**32) - 1, -(2**64), b"", b"\\x00\\xff", "", "測試甲", "Testy McTestface",
          [1, [2, [3]]], {"b": 1, 10: [True, False, None], -1: {"x": b"y"}, "aa": "測"},
          cbor.Tag(16, [b"\\xa1\\x01\\x0a", {4: b"hh-1", 6: b"\\x05"}, b"ct"])]
for v in values:
    data = cbor.dumps(v)
    back = cbor.loads(data)
    print(show(data), back == v)
for bad in [b"", b"\\x19\\x01", b"\\x82\\x01\\x9f\\x01\\xff", b"\\x01\\x02", b"\\x81" * 20 + b"\\x00",
            b"\\x62\\xff\\xfe", b"\\xa2\\x01\\x02\\x01\\x03", b"\\xf9\\x3c\\x00", b"\\xa1\\x80\\x01",
            b"\\x9b\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff"]:
    print(show(bad), err(cbor.loads, bad))
print(err(cbor.loads, b"\\x58\\xc8" + b"x" * 200, 100))
"""


def test_cbor_encodes_and_refuses_the_same_bytes_as_cpython(mpy_run: Callable[..., MpyResult]) -> None:
    lines = _same_in_both(mpy_run, CBOR)
    assert lines[0] == "h'00' True"
    assert "code=2" in lines[-1]


MESSAGES = """
from protocol import messages
S = b"\\x5e\\x55\\x10\\x11\\xca\\xfe\\x00\\x42"
cases = [
    ("hello", {"device": "hh-0042", "fw": "0.1.0", "lang": "zh-Hant"}),
    ("scan", {"tracking_no": "VP1000000001", "session": S}),
    ("reveal_request", {"req": 17, "tracking_no": "VP1000000001", "fields": [2, 3], "reason": 1,
                        "session": S}),
    ("reveal_grant", {"req": 17, "tracking_no": "VP1", "cti": b"c" * 8, "exp": 1764000120,
                      "fields": [2], "token": b"\\xd0\\x83"}),
    ("route", {"route": "R-07", "parcels": [{"tracking_no": "VP1", "name": "測**", "phone": "170******34",
               "address": "測試市測試區樣例路1號 *棟***室", "window_start": 1, "window_end": 2}]}),
    ("command", {"id": 3, "cmd": messages.CMD_CONFIG, "args": {"ttl": 30}}),
    ("error", {"code": 4, "detail": "replayed", "ref": 999}),
]
for name, fields in cases:
    data = messages.encode(name, fields, 1764000000)
    print(name, show(data))
    print(show(messages.decode(data)))
batch = messages.encode("batch", {"items": [messages.encode("seal", {"tracking_no": "VP1"}, 1)]}, 2)
print(show(messages.unbatch(messages.decode(batch)[1])))
for bad in [messages.encode("seal", {"tracking_no": "VP1"}, 1)[:-1], b"\\xa2\\x00\\x18\\x63\\x01\\x01",
            b"\\xa2\\x00\\x0c\\x01\\x01", b"\\xa3\\x00\\x0c\\x01\\x01\\x02\\x41\\x00",
            b"\\xa3\\x00\\x0c\\x01\\xf5\\x02\\x61\\x41", b"\\x80"]:
    print(show(bad), err(messages.decode, bad))
print(err(messages.encode, "scan", {"tracking_no": "VP1"}, 1))
print(err(messages.encode, "nonesuch", {}, 1))
"""


def test_messages_encode_and_decode_the_same_as_cpython(mpy_run: Callable[..., MpyResult]) -> None:
    lines = _same_in_both(mpy_run, MESSAGES)
    assert lines[0].startswith("hello h'a5000101")
    assert any("code=5" in line for line in lines)  # unknown message


REPLAY = """
from protocol.replay import ReplayWindow
w = ReplayWindow()
for seq in [0, 5, 3, 3, 40, 8, 9, 39, 2**35, 2**35 - 31, 2**35 - 32, 0]:
    print(seq, err(w.accept, seq))
print(show(w.state()))
w2 = ReplayWindow.from_state(w.state())
print(err(w2.check, 2**35), err(w2.check, 2**35 - 1), show(w2.state()) == show(w.state()))
"""


def test_replay_window_behaves_the_same_as_cpython(mpy_run: Callable[..., MpyResult]) -> None:
    lines = _same_in_both(mpy_run, REPLAY)
    assert lines[3] == "3 ProtocolError code=4 offset=-1"


TOPICS = """
from protocol import topics
print(topics.up("hh-0042"), topics.down("hh-0042"), topics.cmd("A_z-9"), topics.gateway_status("gw1"))
print(topics.SHARED_UP_FILTER)
for t in ["vp/v1/d/hh-1/up", "vp/v1/gw/g/status", "vp/v1/alarm", b"vp/v1/d/hh-1/cmd"]:
    print(show(topics.parse(t)))
for t in ["vp/v1/d/+/up", "vp/v1/d/a b/up", "vp/v2/d/x/up", b"\\xff", "vp/v1/d/" + "x" * 33 + "/up"]:
    print(err(topics.parse, t))
print(err(topics.up, "測試"))
"""


def test_topics_build_and_parse_the_same_as_cpython(mpy_run: Callable[..., MpyResult]) -> None:
    lines = _same_in_both(mpy_run, TOPICS)
    assert lines[0].startswith("vp/v1/d/hh-0042/up ")


MASKING = """
from protocol import masking
for p in ["default", "strict"]:
    for n in ["測試甲", "歐陽測試", "諸葛", "測", "測試 收件人", "Testy McTestface", "A B"]:
        m = masking.mask_name(n, p)
        print(p, m, masking.check_compliant(1, m, p))
    for n in ["17000001234", "+86 170 0000 1234", "008617000001234", "010-12345678", "0755-1234567",
              "12345", "０１０－１２３４５６７８"]:
        m = masking.mask_phone(n, p)
        print(p, m, masking.check_compliant(2, m, p))
    for a in ["測試市測試區樣例路1號 3棟502室", "測試市測試區樣例路1號3棟2单元501", "測試市樣例路88號12樓",
              "測試路1號 十二樓 三單元", "測試村18號", "測試市三里屯路", "Flat A, 12/F, Test Building",
              "Room 1203, Test Tower", "3rd Floor, 1 Test St", "#12-34 Test Ave"]:
        m = masking.mask_address(a, p)
        print(p, m, masking.check_compliant(3, m, p), masking.check_compliant(3, a, p))
print(masking.check_compliant("phone", "138****5678"))
print(show(masking.mask_parcel({"tracking_no": "VP1", "name": "測試甲", "phone": "17000001234"})))
prof = masking.load_profile('{"mask": "#", "phone": {"mobile_head": 0, "mobile_tail": 4}}')
print(masking.mask_phone("17000001234", prof))
try:
    masking.make_profile({"phone": {"min_hidden": 4}})
    print("looser profile accepted")
except ValueError:
    print("looser profile refused")
"""


def test_masking_gives_the_same_output_as_cpython(mpy_run: Callable[..., MpyResult]) -> None:
    lines = _same_in_both(mpy_run, MASKING)
    assert "default 測** True" in lines
    assert "default 170******34 True" in lines
    assert "False" == lines[-4]
    assert lines[-1] == "looser profile refused"


def test_every_protocol_module_imports_in_micropython(mpy_run: Callable[..., MpyResult]) -> None:
    from tests.fixtures.micropython import REPO

    # Every module, none excused: CPython-only code (gateway/aead.py) lives outside protocol/.
    names = sorted(".".join(p.relative_to(REPO).with_suffix("").parts)
                   for p in (REPO / "protocol").rglob("*.py") if p.name != "__init__.py")
    assert "protocol.session" in names and len(names) >= 10
    code = "import protocol\n" + "".join("import %s\nprint(%r)\n" % (n, n) for n in names)
    assert mpy_run(code).lines() == names


def test_the_error_tree_is_plain_classes_that_micropython_raises_and_catches(
        mpy_run: Callable[..., MpyResult]) -> None:
    code = (
        "from protocol import errors, topics\n"
        "try:\n"
        "    topics.up('bad id')\n"
        "except errors.ProtocolError as e:\n"
        "    print(type(e).__name__, isinstance(e, errors.LocalProtocolError),"
        " isinstance(e, errors.VeilpostError), e.code)\n"
        "try:\n"
        "    topics.parse('vp/v1/d/+/up')\n"
        "except errors.VeilpostError as e:\n"
        "    print(type(e).__name__, isinstance(e, errors.RemoteProtocolError))\n"
        "for name in ('PolicyDenied', 'StoreError', 'BrokerError', 'PrinterError', 'ConfigurationError'):\n"
        "    try:\n"
        "        raise getattr(errors, name)('x')\n"
        "    except errors.VeilpostError as e:\n"
        "        print(name, str(e))\n"
    )
    assert mpy_run(code).lines() == [
        "InvalidId True True 1", "RemoteProtocolError True",
        "PolicyDenied x", "StoreError x", "BrokerError x", "PrinterError x", "ConfigurationError x"]


def test_importing_the_package_loads_only_the_error_type(mpy_run: Callable[..., MpyResult]) -> None:
    code = "import sys\nimport protocol\nprint(sorted([m for m in sys.modules if m.startswith('protocol')]))"
    assert mpy_run(code).lines() == ["['protocol', 'protocol.errors']"]
