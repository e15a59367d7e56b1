"""The printing commands, end to end on an emulated printer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from printer_drivers.emulated_link import PtyPrinter
from tests.fixtures.printers import PLAINTEXT, masked_view
from tools.cli import main


@pytest.fixture
def home(tmp_path: Path) -> Path:
    views = [masked_view("VPC%03d" % i) for i in range(3)]
    (tmp_path / "parcels.json").write_text(json.dumps(views, ensure_ascii=False), encoding="utf-8")
    return tmp_path


def write_printers(home: Path, **printers: dict[str, object]) -> None:
    lines = []
    for name, cfg in printers.items():
        lines.append("[printers.%s]" % name)
        lines += ["%s = %s" % (k, json.dumps(v)) for k, v in cfg.items()]
    (home / "printers.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    return result.exit_code, result.output


def test_print_sends_masked_labels_and_status_shows_them(
    home: Path, pty_printer: Callable[..., PtyPrinter]
) -> None:
    pp = pty_printer("zpl")
    write_printers(home, depot={"url": str(pp.path), "language": "zpl", "baud": 115200})
    code, out = run(
        home, "print", "VPC000", "VPC001", "--printer", "depot", "--parcels", str(home / "parcels.json")
    )
    assert code == 0, out
    assert "2 printed" in out
    assert pp.call(lambda e: [label.tracking_no for label in e.printed]) == ["VPC000", "VPC001"]
    assert PLAINTEXT["receiver"]["phone"].encode() not in bytes(pp.wire)
    code, out = run(home, "printers", "status")
    assert code == 0 and "ready" in out and "labels=2" in out and "printed=2" in out


def test_reprint_without_reason_is_refused_and_with_reason_is_audited(home: Path) -> None:
    out_file = home / "labels.prn"
    write_printers(home, desk={"url": "file:" + str(out_file), "language": "tspl"})
    parcels = str(home / "parcels.json")
    assert run(home, "print", "VPC002", "--printer", "desk", "--parcels", parcels)[0] == 0
    code, out = run(home, "reprint", "VPC002", "--printer", "desk", "--parcels", parcels)
    assert code != 0 and "--reason" in out
    code, out = run(
        home,
        "reprint",
        "VPC002",
        "--printer",
        "desk",
        "--parcels",
        parcels,
        "--reason",
        "label torn at sorting",
        "--as",
        "op-3",
    )
    assert code == 0, out
    assert out_file.read_bytes().count(b"PRINT 1,1") == 2
    audit = [
        json.loads(line) for line in (home / "print-audit.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [(a["action"], a["tracking_no"], a["reason"]) for a in audit] == [
        ("label.reprint", "VPC002", "label torn at sorting")
    ]


def test_unknown_parcel_and_unknown_printer_give_clear_errors(home: Path) -> None:
    write_printers(home, desk={"url": "file:" + str(home / "x.prn"), "language": "cpcl"})
    parcels = str(home / "parcels.json")
    code, out = run(home, "print", "VPNOPE", "--printer", "desk", "--parcels", parcels)
    assert code != 0 and "VPNOPE" in out
    code, out = run(home, "print", "VPC000", "--printer", "nowhere", "--parcels", parcels)
    assert code != 0 and "desk" in out


def test_plaintext_view_is_refused_by_print(home: Path) -> None:
    bad = masked_view("VPC009")
    bad["receiver"] = dict(PLAINTEXT["receiver"])
    (home / "bad.json").write_text(json.dumps([bad], ensure_ascii=False), encoding="utf-8")
    write_printers(home, desk={"url": "file:" + str(home / "x.prn"), "language": "tspl"})
    code, out = run(home, "print", "VPC009", "--printer", "desk", "--parcels", str(home / "bad.json"))
    assert code != 0 and "refusing" in out
    assert not (home / "x.prn").exists()


@pytest.mark.parametrize("template, size", [("76x130", (608, 1040)), ("100x150", (800, 1200))])
def test_label_preview_writes_a_png_of_the_template(home: Path, template: str, size: tuple[int, int]) -> None:
    out = home / "label.png"
    code, text = run(
        home,
        "label",
        "preview",
        "VPC001",
        "--out",
        str(out),
        "--template",
        template,
        "--parcels",
        str(home / "parcels.json"),
    )
    assert code == 0, text
    img = Image.open(out)
    assert img.size == size
    ink = img.convert("L").histogram()[0] / (size[0] * size[1])
    assert 0.03 < ink < 0.5  # a printed label, not a blank page


def test_label_preview_without_a_cjk_font_says_what_to_install(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from printer_drivers import preview

    monkeypatch.setattr(preview, "FONT_DIRS", (str(home / "no-fonts"),))
    monkeypatch.setattr(preview, "FONT_PACKAGES", ())  # nor the font veilpost installs
    monkeypatch.delenv("VEILPOST_CJK_FONT", raising=False)
    preview.find_cjk_font.cache_clear()
    preview._font.cache_clear()
    try:
        code, out = run(
            home,
            "label",
            "preview",
            "VPC001",
            "--out",
            str(home / "x.png"),
            "--parcels",
            str(home / "parcels.json"),
        )
    finally:
        preview.find_cjk_font.cache_clear()
        preview._font.cache_clear()
    assert code != 0 and "fonts-wqy-zenhei" in out and "VEILPOST_CJK_FONT" in out
    assert not (home / "x.png").exists()


def test_stalled_print_is_kept_and_drained_once_paper_is_back(
    home: Path, pty_printer: Callable[..., PtyPrinter]
) -> None:
    pp = pty_printer("escpos", paper=0)
    write_printers(home, depot={"url": str(pp.path), "language": "escpos", "timeout": 0.3})
    parcels = str(home / "parcels.json")
    code, out = run(home, "print", "VPC000", "--printer", "depot", "--parcels", parcels, "--give-up", "0.5")
    assert code != 0 and "paper out" in out and "printers drain depot" in out
    code, out = run(home, "print", "VPC000", "--printer", "depot", "--parcels", parcels)
    assert code != 0 and "reprint with a reason" in out  # no second label by the back door
    pp.call(lambda e: e.load_paper())
    code, out = run(home, "printers", "drain", "depot")
    assert code == 0 and "1 printed" in out
    assert pp.call(lambda e: [label.tracking_no for label in e.printed]) == ["VPC000"]


def test_printers_status_exits_4_for_an_offline_printer_and_1_for_one_not_ready(
    home: Path, pty_printer: Callable[..., PtyPrinter]
) -> None:
    import socket

    from tools.cli.common import EXIT_FAILED, EXIT_UNAVAILABLE

    pp = pty_printer("tspl")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    write_printers(home, depot={"url": str(pp.path), "language": "tspl", "baud": 115200},
                   gone={"url": "socket://127.0.0.1:%d" % dead, "language": "zpl", "timeout": 0.3})
    code, out = run(home, "printers", "status")
    assert code == EXIT_UNAVAILABLE, out
    assert "gone" in out and "offline" in out and "ready" in out
    code, out = run(home, "--json", "printers", "status")
    assert code == EXIT_UNAVAILABLE
    shown = {p["printer"]: (p["online"], p["ready"]) for p in json.loads(out)}
    assert shown == {"depot": (True, True), "gone": (False, False)}
    write_printers(home, depot={"url": str(pp.path), "language": "tspl", "baud": 115200})
    assert run(home, "printers", "status")[0] == 0
    pp.call(lambda e: e.run_out_of_paper())
    code, out = run(home, "printers", "status", "--json")
    assert code == EXIT_FAILED, out
    assert json.loads(out)[0]["state"] == "paper out"


def test_printers_status_without_printers_toml_is_a_config_to_fix(home: Path) -> None:
    code, out = run(home, "printers", "status")
    assert code == 3 and "no printers configured" in out
