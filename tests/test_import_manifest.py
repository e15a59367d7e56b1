import pytest
from click.testing import CliRunner

from gateway import registry
from gateway.manifest import ManifestError, derive_sort_code, import_manifest
from protocol import masking
from tests.fixtures.gateway import it_env, manifest_csv
from tools.cli import main


def _couriers(home):
    registry.add_courier(home.store, "C-112", "4321", "D-1")
    registry.add_courier(home.store, "C-200", "5555", "D-1")


def _import(home, data):
    return import_manifest(home.store, home.vault, home.audit, data, home.zone, 1000.0, "it:test")


def test_import_stores_masked_values_and_summarises(gateway_home):
    _couriers(gateway_home)
    summary = _import(gateway_home, manifest_csv([
        ("VP0000000101", "R-07", "C-112", 0), ("VP0000000102", "R-07", "C-112", 1),
        ("VP0000000201", "R-09", "C-200", 2)]))
    assert str(summary).startswith("imported 3 parcels on 2 routes for 2 couriers")
    row = gateway_home.store.one("SELECT masked_receiver_name, masked_receiver_phone, sort_code, window_start"
                                 " FROM parcels WHERE tracking_no = 'VP0000000101'")
    assert row[0] == masking.mask_name("測試甲") and row[1] == masking.mask_phone("17000001234")
    assert row[2] == "R07"
    # 08:00 in the configured zone (Asia/Shanghai, UTC+8) is 00:00 UTC.
    assert row[3] % 86400 == 0
    address = gateway_home.vault.read(gateway_home.store, "VP0000000101", [3])
    assert address == {3: "測試市測試區樣例路1號 3棟502室"}


def test_bad_row_names_row_and_column_and_imports_nothing(gateway_home):
    _couriers(gateway_home)
    data = manifest_csv([("VP0000000101", "R-07", "C-112", 0), ("VP0000000102", "R-07", "C-112", 1)])
    data = data.replace(b"17000005678", b"not-a-phone")
    with pytest.raises(ManifestError, match=r"row 3, column receiver_phone"):
        _import(gateway_home, data)
    assert gateway_home.store.one("SELECT COUNT(*) FROM parcels")[0] == 0
    assert gateway_home.store.one("SELECT COUNT(*) FROM audit")[0] == 0


@pytest.mark.parametrize("change, where", [
    ((b"2030-01-02T20:00:00\n", b"2030-01-02T07:00:00\n"), "delivery_window_end"),
    ((b"T08:00:00", b"at eight"), "delivery_window_start"),
    ((b"C-112", b"C-999"), "courier_id"),
    ((b"VP0000000101", b"vp-lower"), "tracking_no"),
])
def test_each_bad_cell_is_named(gateway_home, change, where):
    _couriers(gateway_home)
    data = manifest_csv([("VP0000000101", "R-07", "C-112", 0)]).replace(*change)
    with pytest.raises(ManifestError, match="row 2, column " + where):
        _import(gateway_home, data)


def test_duplicate_and_non_utf8_and_missing_column_are_refused(gateway_home):
    _couriers(gateway_home)
    dup = manifest_csv([("VP0000000101", "R-07", "C-112", 0), ("VP0000000101", "R-07", "C-112", 1)])
    with pytest.raises(ManifestError, match="appears twice"):
        _import(gateway_home, dup)
    with pytest.raises(ManifestError, match="not UTF-8"):
        _import(gateway_home, manifest_csv([("VP0000000101", "R-07", "C-112", 0)]).replace(
            "測試甲".encode(), "測試甲".encode("gbk")))
    with pytest.raises(ManifestError, match="missing column"):
        _import(gateway_home, b"tracking_no,route_id\nVP0000000101,R-07\n")


def test_route_of_another_courier_is_refused(gateway_home):
    _couriers(gateway_home)
    _import(gateway_home, manifest_csv([("VP0000000101", "R-07", "C-112", 0)]))
    with pytest.raises(ManifestError, match="route R-07 belongs to courier C-112"):
        _import(gateway_home, manifest_csv([("VP0000000102", "R-07", "C-200", 0)]))


def test_sort_code_is_derived_from_route_id():
    assert derive_sort_code("r-07/north") == "7NORTH"


def test_optional_sort_code_column(gateway_home):
    _couriers(gateway_home)
    data = manifest_csv([("VP0000000101", "R-07", "C-112", 0)])
    head, row, _ = data.split(b"\n")
    _import(gateway_home, head + b",sort_code\n" + row + b",SZ-12\n")
    assert gateway_home.store.one("SELECT sort_code FROM parcels")[0] == "SZ-12"


def test_cli_import_prints_summary_and_error(gateway_home, tmp_path):
    _couriers(gateway_home)
    good = tmp_path / "good.csv"
    good.write_bytes(manifest_csv([("VP0000000101", "R-07", "C-112", 0)]))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(manifest_csv([("VP0000000102", "R-07", "C-999", 0)]))
    runner = CliRunner(env=it_env(gateway_home.config.home))
    home = str(gateway_home.config.home)
    ok = runner.invoke(main, ["--home", home, "route", "import", str(good)])
    assert ok.exit_code == 0 and "imported 1 parcels" in ok.output
    failed = runner.invoke(main, ["--home", home, "route", "import", str(bad)])
    assert failed.exit_code != 0 and "row 2, column courier_id" in failed.output


def test_optional_receiver_email_goes_to_the_vault_and_a_bad_one_is_refused(gateway_home):
    _couriers(gateway_home)
    data = manifest_csv([("VP0000000101", "R-07", "C-112", 0), ("VP0000000102", "R-07", "C-112", 1)])
    lines = data.decode().splitlines()
    lines[0] += ",receiver_email"
    lines[1] += ","
    lines[2] += ",testy@example.invalid"
    _import(gateway_home, ("\n".join(lines) + "\n").encode())
    assert gateway_home.vault.read(gateway_home.store, "VP0000000102", [7]) == {7: "testy@example.invalid"}
    assert gateway_home.vault.read(gateway_home.store, "VP0000000101", [7]) == {}
    stored = b"".join(bytes(r[0]) for r in gateway_home.store.all("SELECT ciphertext FROM parcels"))
    assert b"testy@" not in stored
    bad = data.decode().splitlines()
    bad[0] += ",receiver_email"
    bad[1] += ",not an address"
    bad[2] += ",x@y"
    bad = [line.replace("VP00000001", "VP00000009") for line in bad]
    with pytest.raises(ManifestError, match=r"row 2, column receiver_email: not an e-mail") as e:
        _import(gateway_home, ("\n".join(bad) + "\n").encode())
    assert "row 3, column receiver_email" in str(e.value)
