"""Manifest import as a depot meets it: every bad row reported (row and
column) without importing, files streamed with progress, GBK and GB18030
files, phones written the way people write them, and a route withdrawn
before it goes out for delivery."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway import registry
from gateway.home import Home
from gateway.manifest import ManifestError, check_manifest, import_manifest
from gateway.routes import RouteError, gone_out, withdraw_route
from gateway.vault import RECEIVER_PHONE, SENDER_PHONE
from protocol import masking
from tests.fixtures.gateway import manifest_csv

HEADER = ("tracking_no,route_id,courier_id,receiver_name,receiver_phone,receiver_address,"
          "sender_name,sender_phone,sender_address,delivery_window_start,delivery_window_end")


def _couriers(home: Home) -> None:
    registry.add_courier(home.store, "C-112", "4321", "D-1")
    registry.add_courier(home.store, "C-200", "5555", "D-1")


def _row(tracking_no: str, phone: str = "17000001234", route: str = "R-07", courier: str = "C-112",
         name: str = "測試甲", start: str = "2030-01-02T08:00:00") -> str:
    return ('%s,%s,%s,%s,"%s","測試市測試區樣例路1號 3棟502室",測試寄件人,17000009999,"測試市寄件路9號",'
            "%s,2030-01-02T20:00:00" % (tracking_no, route, courier, name, phone, start))


def _csv(*rows: str) -> str:
    return HEADER + "\n" + "\n".join(rows) + "\n"


def _import(home: Home, data: bytes | Path, **kw: object) -> object:
    return import_manifest(home.store, home.vault, home.audit, data, home.zone, 1000.0, "it:test", **kw)  # type: ignore[arg-type]


def _count(home: Home, table: str) -> int:
    return int(home.store.one("SELECT COUNT(*) FROM %s" % table)[0])  # type: ignore[index]


def test_every_bad_row_and_column_is_reported_and_nothing_is_imported(gateway_home: Home) -> None:
    _couriers(gateway_home)
    data = _csv(_row("VP0000000101"), _row("VP0000000102", phone="not-a-phone"), _row("VP0000000103"),
                _row("vp-lower", courier="C-999"), _row("VP0000000105", start="at eight"),
                "VP0000000106,R-07,C-112,too,few,cells", _row("VP0000000101")).encode()
    with pytest.raises(ManifestError) as caught:
        _import(gateway_home, data)
    found = [(p.row, p.column) for p in caught.value.problems]
    assert found == [(3, "receiver_phone"), (5, "tracking_no"), (5, "courier_id"),
                     (6, "delivery_window_start"), (7, ""), (8, "tracking_no")]
    assert "row 3, column receiver_phone" in str(caught.value)
    assert _count(gateway_home, "parcels") == 0 and _count(gateway_home, "routes") == 0
    assert _count(gateway_home, "audit") == 0


def test_check_reports_the_same_problems_and_imports_nothing(gateway_home: Home) -> None:
    _couriers(gateway_home)
    good = _csv(_row("VP0000000101"), _row("VP0000000102", route="R-09", courier="C-200")).encode()
    report = check_manifest(gateway_home.store, good, gateway_home.zone)
    assert report.ok and report.rows == 2 and report.summary.parcels == 2
    assert sorted(report.summary.routes) == ["R-07", "R-09"]
    bad = _csv(_row("VP0000000101", phone="12"), _row("VP0000000102", name="")).encode()
    report = check_manifest(gateway_home.store, bad, gateway_home.zone)
    assert [(p.row, p.column) for p in report.problems] == [(2, "receiver_phone"), (3, "receiver_name")]
    assert _count(gateway_home, "parcels") == 0 and _count(gateway_home, "audit") == 0


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_a_gbk_or_gb18030_file_imports_when_told_its_encoding(gateway_home: Home, encoding: str) -> None:
    _couriers(gateway_home)
    data = _csv(_row("VP0000000101"), _row("VP0000000102", name="測試乙")).encode(encoding)
    with pytest.raises(ManifestError, match=r"row 2: not UTF-8 .*reads as GB.*give the encoding gb"):
        _import(gateway_home, data)
    _import(gateway_home, data, encoding=encoding)
    assert gateway_home.vault.read(gateway_home.store, "VP0000000102", [1]) == {1: "測試乙"}


def test_an_unknown_encoding_is_refused(gateway_home: Home) -> None:
    with pytest.raises(ManifestError, match="encoding 'latin-1' is not one of utf-8, gbk, gb18030"):
        _import(gateway_home, b"", encoding="latin-1")


@pytest.mark.parametrize(("written", "stored"), [
    ("(021)66667777", "021-66667777"),
    ("021-6666 7777 ext 12", "021-66667777 ext 12"),
    ("(0755) 8888-9999 转 8", "0755-88889999 ext 8"),
    ("+86 170 0000 1234", "17000001234"),
    ("0086-170-0000-1234", "17000001234"),
    ("+86 21 6666 7777", "021-66667777"),
    ("170 0000 1234", "17000001234"),
    ("１７０００００１２３４", "17000001234"),
])
def test_phones_as_people_write_them_are_accepted_and_normalised(gateway_home: Home, written: str,
                                                                 stored: str) -> None:
    _couriers(gateway_home)
    _import(gateway_home, _csv(_row("VP0000000101", phone=written)).encode())
    phone = gateway_home.vault.read(gateway_home.store, "VP0000000101", [RECEIVER_PHONE])
    assert phone == {RECEIVER_PHONE: stored}
    masked = gateway_home.store.one("SELECT masked_receiver_phone FROM parcels")[0]  # type: ignore[index]
    assert masked == masking.mask_phone(stored) and masking.check_compliant("phone", masked)
    assert gateway_home.vault.read(gateway_home.store, "VP0000000101", [SENDER_PHONE]) == {
        SENDER_PHONE: "17000009999"}


@pytest.mark.parametrize("written", ["not-a-phone", "12345", "(021 66667777", "021-6666 7777 ext",
                                     "17000001234567890", "+1 23", "170;0000;1234"])
def test_what_is_not_a_phone_is_refused_with_its_column(gateway_home: Home, written: str) -> None:
    _couriers(gateway_home)
    with pytest.raises(ManifestError, match="row 2, column receiver_phone"):
        _import(gateway_home, _csv(_row("VP0000000101", phone=written)).encode())


def test_a_file_is_streamed_with_progress_and_never_read_whole(gateway_home: Home, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _couriers(gateway_home)
    path = tmp_path / "big.csv"
    path.write_text(_csv(*(_row("VP%010d" % i) for i in range(1200))), encoding="utf-8")

    read_bytes, read_text = Path.read_bytes, Path.read_text

    def not_the_manifest(reader):  # type: ignore[no-untyped-def]
        def read(self: Path, *a: object, **k: object) -> object:
            assert self != path, "the manifest was read whole"
            return reader(self, *a, **k)
        return read

    monkeypatch.setattr(Path, "read_bytes", not_the_manifest(read_bytes))
    monkeypatch.setattr(Path, "read_text", not_the_manifest(read_text))
    calls: list[tuple[int, int, int | None]] = []
    summary = _import(gateway_home, path, progress=lambda r, b, t: calls.append((r, b, t)))
    assert str(summary).startswith("imported 1200 parcels")
    assert [c[0] for c in calls] == [500, 1000, 1200]
    assert calls[-1][1] == calls[-1][2] == path.stat().st_size
    assert calls[0][1] < calls[1][1] < calls[2][1]


class _Reading(io.RawIOBase):
    """A file that remembers how far it has been read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self.data[self.pos:self.pos + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def test_rows_are_checked_while_the_rest_of_the_file_is_still_unread(gateway_home: Home) -> None:
    _couriers(gateway_home)
    data = _csv(*(_row("VP%010d" % i) for i in range(1500))).encode()
    raw = _Reading(data)
    read_at: list[int] = []
    report = check_manifest(gateway_home.store, io.BufferedReader(raw, 8192), gateway_home.zone,  # type: ignore[arg-type]
                            progress=lambda r, _b, _t: read_at.append(raw.pos))
    assert report.ok and report.rows == 1500
    assert read_at[0] < len(data) / 2  # 500 rows in: most of the file not yet read


def _imported(home: Home) -> None:
    _couriers(home)
    home.store.run("INSERT INTO couriers (courier_id, depot, shift, pin_salt, pin_hash, state, created)"
                   " VALUES ('C-300', 'D-1', '07:00-21:00', x'00', x'00', 'active', 0)")
    _import(home, manifest_csv([("VP0000000101", "R-07", "C-112", 0), ("VP0000000102", "R-07", "C-112", 1),
                                ("VP0000000201", "R-09", "C-200", 2)]))


def test_a_route_not_yet_out_is_withdrawn_audited_and_can_be_imported_again(gateway_home: Home) -> None:
    _imported(gateway_home)
    done = withdraw_route(gateway_home.store, gateway_home.audit, "R-07", 2000.0, "depot clerk", "wrong file")
    assert (done.parcels, done.courier_id) == (2, "C-112")
    assert gateway_home.store.all("SELECT tracking_no FROM parcels") == [("VP0000000201",)]
    assert gateway_home.store.one("SELECT 1 FROM routes WHERE route_id = 'R-07'") is None
    entry = gateway_home.store.one("SELECT actor, action, detail FROM audit ORDER BY seq DESC LIMIT 1")
    assert entry is not None and entry[1] == "route-withdraw"
    assert "R-07" in entry[2] and "wrong file" in entry[2]
    _import(gateway_home, manifest_csv([("VP0000000101", "R-07", "C-300", 0)]))  # the replacement
    assert gateway_home.store.one("SELECT courier_id FROM routes WHERE route_id = 'R-07'") == ("C-300",)


@pytest.mark.parametrize("step", ["fetched", "scanned", "revealed", "delivered"])
def test_a_route_that_has_gone_out_for_delivery_cannot_be_withdrawn(gateway_home: Home, step: str) -> None:
    _imported(gateway_home)
    with gateway_home.store.transaction() as tx:
        if step == "fetched":
            gateway_home.audit.append(tx, 1500.0, "courier", "HH-1", "route", "", "ok", "R-05,R-07")
        elif step == "scanned":
            tx.run("INSERT INTO scans (device_id, tracking_no, at) VALUES ('HH-1', 'VP0000000102', 1500)")
        elif step == "revealed":
            tx.run("INSERT INTO tokens (cti, device_id, courier_id, tracking_no, fields, issued, exp, used,"
                   " audit_seq, offline) VALUES (x'01', 'HH-1', 'C-112', 'VP0000000101', '1', 1500, 1560,"
                   " NULL, 1, 0)")
        else:
            tx.run("UPDATE parcels SET state = 'delivered', delivered_at = 1500"
                   " WHERE tracking_no = 'VP0000000102'")
    assert gone_out(gateway_home.store, "R-07") is not None
    assert gone_out(gateway_home.store, "R-09") is None  # the other route is untouched
    with pytest.raises(RouteError, match="route R-07 has gone out for delivery"):
        withdraw_route(gateway_home.store, gateway_home.audit, "R-07", 2000.0, "clerk", "wrong file")
    assert _count(gateway_home, "parcels") == 3


def test_a_fetch_of_a_route_with_a_longer_id_is_not_this_route(gateway_home: Home) -> None:
    _imported(gateway_home)
    with gateway_home.store.transaction() as tx:
        gateway_home.audit.append(tx, 1500.0, "courier", "HH-1", "route", "", "ok", "R-070,XR-07")
    assert gone_out(gateway_home.store, "R-07") is None


def test_withdrawing_needs_a_known_route_and_a_reason(gateway_home: Home) -> None:
    _imported(gateway_home)
    with pytest.raises(RouteError, match="no route R-99"):
        withdraw_route(gateway_home.store, gateway_home.audit, "R-99", 2000.0, "clerk", "typo")
    with pytest.raises(RouteError, match="say why"):
        withdraw_route(gateway_home.store, gateway_home.audit, "R-07", 2000.0, "clerk", " ")
