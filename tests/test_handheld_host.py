"""The firmware on CPython with the host HAL: provisioning, screen text,
bad input from the gateway, time-outs, a full offline queue and terminal
input. (The same state machine runs in the MicroPython VM in
tests/micropython/test_mpy_firmware.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from firmware import i18n
from firmware.app import App
from firmware.hal.host.board import FolderFlash, HostHAL, TerminalInput
from firmware.hal.host.memory import MemoryHAL
from protocol import labels, session, topics

MASTER = bytes(range(32))
DOWN = topics.down("hh-host-1")
T0 = 1_800_000_000
PARCEL = {"tracking_no": "VP0001", "name": "測*", "phone": "170******34",
          "address": "測試市測試區樣例路1號 *棟***室", "sort_code": "A-07"}


def qr(tracking_no: str, label_no: int = 1) -> str:
    """A label's QR text as the gateway prints it (the handheld cannot check
    the MAC, so any tag does here)."""
    return labels.to_text(labels.assemble(b"label-k1", tracking_no, label_no, T0, bytes(8)))


def ready_app(hal: Any | None = None, **config: Any) -> tuple[App, Any, session.Channel]:
    """An app logged in with route R-07, talking to a gateway-side channel directly."""
    hal = hal or MemoryHAL()
    hal.keystore.put("master", MASTER)
    cfg = {"device_id": "hh-host-1", "lang": "en", **config}
    app = App(hal, cfg)
    gw = session.Channel(MASTER, "hh-host-1", "gateway")
    app.boot(T0)
    app.on_link(True, T0)
    app.on_scan("C-112", T0)
    for k in "2468#":
        app.on_key(k, T0)
    app.on_message(DOWN, gw.wrap("login_result", {"ok": True, "session": b"s1"}, T0), T0)
    app.on_message(DOWN, gw.wrap("route", {"route": "R-07", "parcels": [PARCEL]}, T0), T0)
    app.outbox.clear()
    return app, hal, gw


def sent(app: App, gw: session.Channel) -> list[str]:
    names = [gw.unwrap(p, T0)[0] for _t, p, _q, _tag in app.outbox]
    app.outbox.clear()
    return names


def test_every_screen_text_exists_in_all_three_languages() -> None:
    keys = set(i18n.catalog("en").TEXT)
    for lang in i18n.LANGS:
        catalog = i18n.catalog(lang)
        assert set(catalog.TEXT) == keys and all(catalog.TEXT.values()), lang
    for key in keys:      # every value placeholder is in every language
        assert len({i18n.catalog(lang).TEXT[key].count("{}") for lang in i18n.LANGS}) == 1, key
    assert i18n.text("zh-Hant", "wiped") == "設備已清除"
    assert i18n.text("zh-Hans", "route_loaded", "R-07", 3) == "路线 R-07：3 件"
    assert i18n.text("fr", "wiped") == "Device wiped"      # unknown language falls back to English


def test_unprovisioned_handheld_says_so_and_sends_nothing() -> None:
    hal = MemoryHAL()
    app = App(hal, {"device_id": "hh-host-1", "lang": "zh-Hans"})
    app.boot(T0)
    app.on_link(True, T0)
    assert app.state == "unprovisioned" and app.outbox == []
    assert hal.display.text() == "设备未配置，请联系站点"


def test_provisioning_bundle_moves_the_secret_into_the_key_store(tmp_path: Path) -> None:
    hal = HostHAL(str(tmp_path / "flash"), str(tmp_path / "nvs"))
    bundle = {"device_id": "hh-host-2", "master_secret": MASTER.hex(), "lang": "en"}
    hal.flash.write("provision.json", json.dumps(bundle).encode())
    config: dict[str, Any] = {}
    app = App(hal, config)
    app.boot(T0)
    assert app.state == "badge" and config["device_id"] == "hh-host-2"
    assert hal.keystore.get("master") == MASTER
    assert "master_secret" not in json.loads(hal.flash.read("provision.json") or b"{}")
    assert MASTER.hex().encode() not in b"".join((tmp_path / "flash" / n).read_bytes()
                                                  for n in os.listdir(tmp_path / "flash"))


def test_forged_or_replayed_messages_change_nothing() -> None:
    app, hal, gw = ready_app()
    grant = gw.wrap("login_result", {"ok": False, "reason": "x"}, T0)
    app.on_message(DOWN, b"\xa0garbage", T0)
    app.on_message(DOWN, grant, T0)
    app.on_message(DOWN, grant, T0)                 # replayed
    assert app.state == "ready" and app.session == b"s1"
    other = session.Channel(bytes(32), "hh-host-1", "gateway")
    app.on_message(DOWN, other.wrap("command", {"id": 1, "cmd": 1}, T0), T0)   # wrong key
    assert app.state == "ready" and hal.keystore.get("master") == MASTER


def test_reveal_without_an_answer_times_out_back_to_the_parcel() -> None:
    app, hal, gw = ready_app(reveal_timeout=20)
    app.on_scan(qr("VP0001"), T0)
    for k in "A2#1":
        app.on_key(k, T0)
    assert app.state == "reveal_wait"
    app.tick(T0 + 19)
    assert app.state == "reveal_wait"
    app.tick(T0 + 20)
    assert app.state == "parcel" and app.pending is None and "No answer" in (app.last_denial or "")


def test_gateway_error_without_a_reference_ends_the_wait() -> None:
    app, hal, gw = ready_app()
    app.on_scan(qr("VP0001"), T0)
    for k in "A2#1":
        app.on_key(k, T0)
    error = gw.wrap("error", {"code": 1, "detail": "reveal_request is missing required field 'reason'"}, T0)
    app.on_message(DOWN, error, T0)
    assert app.state == "parcel" and app.last_denial == "Error: malformed message"
    assert any("missing required field" in line for line in app.log_lines)   # the detail is logged


def test_policy_refusal_of_an_earlier_scan_does_not_end_the_reveal_wait() -> None:
    app, hal, gw = ready_app()
    app.on_scan(qr("VP0001"), T0)
    for k in "A2#1":
        app.on_key(k, T0)
    refusal = gw.wrap("error", {"code": 9, "deny": 11, "detail": "scan refused: label #1 was replaced"}, T0)
    app.on_message(DOWN, refusal, T0)
    assert app.state == "reveal_wait" and app.pending is not None
    assert app.notice == "label not valid: scan the label's QR code"


def test_full_offline_queue_refuses_more_and_keeps_what_it_has() -> None:
    app, hal, gw = ready_app(queue_limit=2)
    app.on_link(False, T0)
    app.on_scan(qr("VP0001"), T0)
    app.on_scan(qr("VP0001"), T0 + 1)
    app.on_scan(qr("VP0001"), T0 + 2)
    assert len(app.queue) == 2
    assert app.notice == "Offline store full: reconnect"
    for k in "B1234#":
        app.on_key(k, T0 + 3)
    assert app.state == "pod" and "VP0001" not in app.delivered    # not lost: still to be done


def _batches(app: App, gw: session.Channel) -> list[dict[str, Any]]:
    out = []
    for _t, payload, _q, _tag in app.outbox:
        name, fields, _seq = gw.unwrap(payload, T0)
        if name == "batch":
            out.append(fields)
    app.outbox.clear()
    return out


def test_offline_items_leave_flash_only_on_the_gateways_batch_ack() -> None:
    app, hal, gw = ready_app()
    app.on_link(False, T0)
    app.on_scan(qr("VP0001"), T0 + 1)
    for k in "B1234#":
        app.on_key(k, T0 + 2)
    assert len(app.queue) == 2
    app.on_link(True, T0 + 3)
    first = _batches(app, gw)
    assert len(first) == 1 and len(first[0]["ids"]) == 2
    app.on_acked("batch", T0 + 3)                 # the broker's PUBACK: not the gateway's word
    assert len(app.queue) == 2
    # The link drops before any batch_ack: after reconnect the same items go again, same ids.
    app.on_link(False, T0 + 4)
    again = App(hal, {"device_id": "hh-host-1", "lang": "en"})    # even across a reboot
    again.boot(T0 + 5)
    again.on_link(True, T0 + 5)
    resent = _batches(again, gw)
    assert resent[0]["ids"] == first[0]["ids"] and resent[0]["items"] == first[0]["items"]
    # The gateway kept the scan and refused the delivery for good: both leave flash, the refusal logged.
    ids = first[0]["ids"]
    ack = gw.wrap("batch_ack", {"ids": ids, "outcomes": [0, 9]}, T0 + 6)
    again.on_message(DOWN, ack, T0 + 6)
    assert len(again.queue) == 0 and again.uploads.in_flight == 0
    assert any(str(ids[1]) in line and "refused" in line for line in again.log_lines)


def test_unacknowledged_batch_is_sent_again_after_the_resend_time() -> None:
    app, hal, gw = ready_app(batch_resend=30)
    app.on_link(False, T0)
    app.on_scan(qr("VP0001"), T0)
    app.on_link(True, T0 + 1)
    assert len(_batches(app, gw)) == 1
    app.tick(T0 + 20)
    assert _batches(app, gw) == []
    app.tick(T0 + 31)
    assert len(_batches(app, gw)) == 1 and len(app.queue) == 1


def test_new_items_get_new_ids_after_acknowledged_ones() -> None:
    app, hal, gw = ready_app()
    app.on_link(False, T0)
    app.on_scan(qr("VP0001"), T0)
    app.on_link(True, T0 + 1)
    ids = _batches(app, gw)[0]["ids"]
    app.on_message(DOWN, gw.wrap("batch_ack", {"ids": ids, "outcomes": [0]}, T0 + 1), T0 + 1)
    app.on_link(False, T0 + 2)
    app.on_scan(qr("VP0001"), T0 + 2)
    app.on_link(True, T0 + 3)
    second = _batches(app, gw)[0]["ids"]
    assert second[0] > ids[-1]
    # A late second ack for the first batch (it went twice) does not release the one in flight.
    app.on_message(DOWN, gw.wrap("batch_ack", {"ids": ids, "outcomes": [1]}, T0 + 4), T0 + 4)
    assert app.uploads.in_flight == 1 and len(app.queue) == 1 and _batches(app, gw) == []


def test_message_on_another_devices_topic_is_ignored_with_a_log_line() -> None:
    from protocol import topics as t

    app, hal, gw = ready_app()
    lock = gw.wrap("command", {"id": 7, "cmd": 2}, T0)
    app.on_message(t.cmd("hh-host-2"), lock, T0)        # e.g. another topic's retained message
    assert app.state != "locked" and app.master is not None and any(app.master)
    assert any("hh-host-2" in line and "ignored" in line for line in app.log_lines)
    app.on_message(t.cmd("hh-host-1"), lock, T0)        # the same bytes on its own topic do act
    assert app.state == "locked"


def test_route_in_several_messages_is_merged_and_survives_reboot() -> None:
    app, hal, gw = ready_app()
    second = dict(PARCEL, tracking_no="VP0002")
    app.on_message(DOWN, gw.wrap("route", {"route": "R-07", "parcels": [second]}, T0), T0)
    assert sorted(app.parcels) == ["VP0001", "VP0002"]
    again = App(hal, {"device_id": "hh-host-1", "lang": "en"})
    again.boot(T0)
    assert sorted(again.parcels) == ["VP0001", "VP0002"] and again.route_id == "R-07"


def test_folder_flash_writes_whole_files_only(tmp_path: Path) -> None:
    flash = FolderFlash(str(tmp_path))
    flash.write("queue", b"one")
    flash.write("queue", b"two")
    assert flash.read("queue") == b"two" and flash.names() == ["queue"]
    with pytest.raises(ValueError):
        flash.write("../escape", b"x")


def test_terminal_input_turns_lines_into_scans_and_keys() -> None:
    r, w = os.pipe()
    with os.fdopen(r) as rf, os.fdopen(w, "w") as wf:
        wf.write("s VP0001\nt VP0002\nA2 #1\n")
        wf.flush()
        assert TerminalInput(rf).events() == [("scan", "VP0001"), ("typed", "VP0002"), ("key", "A"),
                                              ("key", "2"), ("key", "#"), ("key", "1")]
