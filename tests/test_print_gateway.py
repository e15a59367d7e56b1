"""Printing from the gateway store: masked columns only, a QR reference the
gateway can verify, reprints in the gateway's hash-chained audit log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import operators
from gateway.home import Home
from gateway.label_source import GatewayParcels
from gateway.labels import check as check_label
from printer_drivers.emulated_link import PtyPrinter
from printer_drivers.source import ParcelNotFound
from protocol import labels as qr
from tests.fixtures.gateway import it_env, leaks, manifest_csv
from tools.cli import main


def setup_home(gateway_home: Home, tmp_path: Path, printer_url: str) -> Path:
    from gateway import registry

    home = gateway_home.config.home
    registry.add_courier(gateway_home.store, "C-112", "4321", "D-1", "00:00-24:00")
    csv = tmp_path / "manifest.csv"
    csv.write_bytes(manifest_csv([("VPG0001", "R-07", "C-112", 0), ("VPG0002", "R-07", "C-112", 1)]))
    result = CliRunner(env=it_env(home)).invoke(main, ["--home", str(home), "route", "import", str(csv)])
    assert result.exit_code == 0, result.output
    (home / "printers.toml").write_text(
        '[printers.depot]\nurl = "%s"\nlanguage = "cpcl"\nbaud = 115200\n' % printer_url, encoding="utf-8"
    )
    return home


def test_print_from_the_gateway_store_sends_no_plaintext(
    gateway_home: Home, tmp_path: Path, pty_printer: Callable[..., PtyPrinter]
) -> None:
    pp = pty_printer("cpcl")
    home = setup_home(gateway_home, tmp_path, str(pp.path))
    result = CliRunner(env=it_env(gateway_home.config.home)).invoke(
        main, ["--home", str(home), "print", "VPG0001", "VPG0002", "--printer", "depot"]
    )
    assert result.exit_code == 0, result.output
    labels = pp.call(lambda e: list(e.printed))
    assert [label.tracking_no for label in labels] == ["VPG0001", "VPG0002"]
    assert leaks(bytes(pp.wire)) == []
    raw = qr.from_text(labels[0].qr_payload)
    tracking_no, label_no, _issued, _kid = qr.read(raw)
    assert (tracking_no, label_no) == ("VPG0001", 1)  # the first label: the gateway's possession proof
    with gateway_home.store.transaction() as tx:
        assert check_label(tx, gateway_home.keys, raw, "VPG0001").label_no == 1
    at_rest = b"".join(p.read_bytes() for p in home.glob("spool.sqlite3*"))
    assert b"VPG0001" in at_rest and leaks(at_rest) == []  # the spool holds masked labels only


def test_reprint_goes_to_the_gateway_audit_log(gateway_home: Home, tmp_path: Path) -> None:
    home = setup_home(gateway_home, tmp_path, "file:" + str(tmp_path / "out.prn"))
    operators.add(gateway_home.store, "op-5", "staff")
    args = [
        "--home",
        str(home),
        "reprint",
        "VPG0002",
        "--printer",
        "depot",
        "--reason",
        "label torn",
        "--as",
        "op-5",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = gateway_home.store.all(
        "SELECT actor, device, action, parcel, detail FROM audit WHERE action = ?", "label.reprint"
    )
    assert len(rows) == 1
    actor, device, _action, parcel, detail = rows[0]
    assert parcel == "VPG0002" and device == "printer:depot" and "label torn" in detail
    assert actor == gateway_home.audit.person("staff", "op-5")  # people are pseudonyms in the audit log
    assert not (home / "print-audit.jsonl").exists()


def test_unknown_parcel_in_the_store_is_a_clear_error(gateway_home: Home) -> None:
    with pytest.raises(ParcelNotFound, match="VPNONE"):
        GatewayParcels(gateway_home).masked_view("VPNONE")
