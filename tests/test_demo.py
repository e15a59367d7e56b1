"""`veilpost demo` end to end, as a newcomer runs it: the real CLI in a
subprocess, on the embedded broker and on the test's own Mosquitto. The
summary it leaves must show every part working and no plaintext anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools.demo.leaks import needles, plaintext_values

REPO = Path(__file__).resolve().parent.parent


def run_demo(out: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tools", "demo", "--out", str(out), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def check_summary(summary: dict[str, Any], out: Path) -> None:
    assert summary["problems"] == []
    counts = summary["counts"]
    for key in (
        "scans",
        "deliveries",
        "reveals_granted",
        "reveals_denied",
        "suspensions",
        "alarms",
        "incidents",
        "labels_printed",
        "revoked_devices",
        "audit_entries",
        "broker_messages",
    ):
        assert counts[key] > 0, key
    assert counts["labels_printed"] == counts["parcels"]
    assert summary["audit"]["verified"] is True
    plaintext = summary["plaintext"]
    assert plaintext["hits"] == 0, plaintext["hits_by_place"]
    assert plaintext["control_hits_in_manifest"] >= plaintext["values"]  # the search does find plaintext
    for place in ("broker messages", "handheld flash", "log file", "print spool", "label commands"):
        assert plaintext["scanned"][place]["bytes"] > 0, place
    attacks = summary["attacks"]
    assert attacks["remote_sessions_or_answers"] == 0
    assert attacks["scrape_records_released"] == 0  # no label in hand, no plaintext
    assert attacks["scrape_strikes"] >= 3
    assert attacks["incident"] and attacks["alarm_on_broker"]
    revocation = summary["revocation"]
    assert revocation["via"] == "veilpost device revoke" and revocation["audit"].startswith("ok")
    assert revocation["wiped"] and revocation["thief_reconnect_refused"]
    pngs = [Path(p) for p in summary["labels"]]
    assert pngs and all(p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert (out / "veilpost-demo.log").stat().st_size > 0


@pytest.mark.slow
def test_demo_on_the_embedded_broker_leaks_no_plaintext_and_verifies_its_audit_log(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    summary = run_demo(out)
    check_summary(summary, out)
    assert summary["broker"] == "embedded"
    assert summary["attacks"]["remote_broker_refused"] is True


@pytest.mark.slow
@pytest.mark.mosquitto
def test_demo_on_mosquitto_leaks_no_plaintext_verifies_its_audit_log_and_cleans_up(
    tmp_path: Path, mosquitto_broker: Any
) -> None:
    out = tmp_path / "demo"
    admin, password = mosquitto_broker.admin_credentials
    url = "mqtt://%s@%s:%d" % (admin, mosquitto_broker.host, mosquitto_broker.port)
    summary = run_demo(out, "--broker", url, env={"VEILPOST_BROKER_PASSWORD": password})
    check_summary(summary, out)
    assert summary["broker"] == "%s:%d" % (mosquitto_broker.host, mosquitto_broker.port)
    assert summary["attacks"]["remote_broker_refused"] is True
    # A second run on the same broker works: the first left no accounts, no
    # retained wipe and no gateway session behind.
    again = run_demo(tmp_path / "again", "--broker", url, env={"VEILPOST_BROKER_PASSWORD": password})
    check_summary(again, tmp_path / "again")
    # The demo removes the accounts it made: only the broker's own remain.
    assert not [
        u for u in mosquitto_broker.admin.usernames() if u.startswith(("HH-", "vp-gw-demo", "vp-it-demo"))
    ]


@pytest.mark.parametrize("url", ["http://example", "mqtt://127.0.0.1:1883"])
def test_demo_refuses_a_broker_url_it_cannot_use(tmp_path: Path, url: str) -> None:
    """An unknown scheme, or a broker without its dynamic-security admin."""
    result = subprocess.run(
        [sys.executable, "-m", "tools", "demo", "--out", str(tmp_path), "--broker", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "mqtt://admin@host:1883" in result.stderr


def test_the_leak_search_finds_each_value_in_every_encoding_a_leak_could_take() -> None:
    csv = (
        "tracking_no,route_id,courier_id,receiver_name,receiver_phone,receiver_address,sender_name,"
        "sender_phone,sender_address,delivery_window_start,delivery_window_end\n"
        'VP1,R-1,C-1,測試甲,17000001234,"測試市測試區樣例路1號 3棟502室",測試寄件人,17000009999,'
        '"測試市寄件路9號 1棟1室",2026-12-01T09:00:00,2026-12-01T20:00:00\n'
    ).encode()
    values = plaintext_values(csv)
    assert "測試甲" in values and "17000001234" in values and "VP1" not in values
    search = needles(values)
    for leak in ("測試甲".encode("gb18030"), json.dumps("測試甲").encode(), "3棟502室".encode("utf-16-le")):
        assert any(n in b"xx" + leak + b"yy" for n in search)
    masked = "測** 170******34 測試市測試區樣例路1號 *棟***室".encode()
    assert not any(n in masked for n in search)
