"""`veilpost route import|withdraw|list` and `veilpost print --route`
(issue 14, item 7): every bad row and column without importing, the file's
encoding, a progress bar on long files, withdrawal until the route goes out
(audited), and a whole route printed with a possession proof per label."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import labels, registry
from gateway.home import Home, init
from printer_drivers.emulated_link import PtyPrinter
from protocol.labels import from_text
from tests.fixtures.gateway import it_env
from tools.cli import main
from tools.testbed.depot import manifest_csv

ROWS = [("VP2653464097", "R-07", "C-112", 0), ("VP2630246633", "R-07", "C-112", 1),
        ("VP2644440001", "R-07", "C-112", 2), ("VP2611111111", "R-09", "C-112", 2)]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = init(tmp_path / "vp")
    registry.add_courier(h.store, "C-112", "2468", "D-1")
    yield h
    h.close()


def run(home: Home, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(home.config.home), *args], env=it_env(home.config.home))
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception
    return result.exit_code, result.output


def write(tmp_path: Path, name: str, data: bytes) -> str:
    (tmp_path / name).write_bytes(data)
    return str(tmp_path / name)


def parcels(home: Home) -> list[str]:
    return [r[0] for r in home.store.all("SELECT tracking_no FROM parcels ORDER BY tracking_no")]


def test_check_reports_every_bad_row_and_column_and_imports_nothing(home: Home, tmp_path: Path) -> None:
    data = manifest_csv(ROWS).replace(b"VP2630246633", b"vp-bad").replace(b"C-112,Testy", b"C-999,Testy")
    data = data.replace(b"17000002468", b"12x", 1)
    code, out = run(home, "route", "import", write(tmp_path, "bad.csv", data), "--check")
    assert code == 3, out
    problems = [line for line in out.splitlines() if line.startswith("row ")]
    assert problems == [
        "row 3, column tracking_no: 'vp-bad' is not 6-32 of A-Z 0-9",
        "row 3, column courier_id: unknown courier 'C-999'",
        "row 4, column receiver_phone: not a phone number (digits, spaces, hyphens, parentheses, a leading"
        " +, an extension as 'ext 12')",
    ]
    assert "bad.csv: 3 problem(s) in 4 rows; nothing imported" in out
    assert parcels(home) == []
    code, out = run(home, "route", "import", str(tmp_path / "bad.csv"))
    assert code == 3 and out.count("\n") == 1 and "nothing imported" in out
    assert parcels(home) == []


def test_a_file_with_many_bad_rows_says_check_lists_them_all(home: Home, tmp_path: Path) -> None:
    rows = [("VP%010d" % i, "R-07", "C-404", 0) for i in range(25)]
    code, out = run(home, "route", "import", write(tmp_path, "many.csv", manifest_csv(rows)))
    assert code == 3 and out.count("\n") == 1
    assert "and 15 more" in out and "`veilpost route import many.csv --check` lists every one" in out
    code, out = run(home, "route", "import", str(tmp_path / "many.csv"), "--check")
    assert len([line for line in out.splitlines() if line.startswith("row ")]) == 25


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_a_gbk_file_is_refused_with_a_hint_and_imported_when_named(home: Home, tmp_path: Path,
                                                                   encoding: str) -> None:
    data = manifest_csv(ROWS).decode("utf-8").encode(encoding)
    path = write(tmp_path, "gbk.csv", data)
    code, out = run(home, "route", "import", path)
    assert code == 3 and "it reads as" in out and parcels(home) == []
    code, out = run(home, "route", "import", path, "--encoding", encoding)
    assert code == 0, out
    assert parcels(home) == sorted(r[0] for r in ROWS)
    code, out = run(home, "--json", "parcel", "list", "--route", "R-07")
    assert {p["tracking_no"]: p["receiver"]["name"] for p in json.loads(out)}["VP2653464097"] == "測**"


def test_a_long_file_gets_a_progress_bar_and_a_short_one_none(home: Home, tmp_path: Path) -> None:
    rows = [("VP%010d" % i, "R-%d" % (i % 4), "C-112", i) for i in range(8000)]
    path = write(tmp_path, "long.csv", manifest_csv(rows))
    assert Path(path).stat().st_size > 1 << 20
    code, out = run(home, "route", "import", path, "--check")
    assert code == 0, out
    assert "checked 8,000 rows" in out and "1.5/1.5 MB" in out
    code, out = run(home, "route", "import", write(tmp_path, "short.csv", manifest_csv(ROWS)))
    assert code == 0 and "rows" not in out and out.startswith("imported 4 parcels on 2 routes")


def test_withdraw_is_audited_and_refused_once_the_route_went_out(home: Home, tmp_path: Path) -> None:
    assert run(home, "route", "import", write(tmp_path, "m.csv", manifest_csv(ROWS)))[0] == 0
    code, out = run(home, "route", "withdraw", "R-09")
    assert code == 2 and "--reason" in out
    code, out = run(home, "route", "withdraw", "R-09", "--reason", "wrong manifest")
    assert code == 0 and "withdrew route R-09 of courier C-112: 1 parcels removed" in out
    [(detail,)] = home.store.all("SELECT detail FROM audit WHERE action = 'route-withdraw'")
    assert "wrong manifest" in detail and "R-09" in detail
    home.store.run("INSERT INTO scans (device_id, tracking_no, at) VALUES ('HH-1', 'VP2653464097', 0)")
    routes = {r["route"]: r for r in json.loads(run(home, "--json", "route", "list")[1])}
    assert routes["R-07"]["out_for_delivery"] is True and "R-09" not in routes
    code, out = run(home, "route", "withdraw", "R-07", "--reason", "late")
    assert code == 1 and "has gone out for delivery (parcel VP2653464097 was scanned by handheld HH-1)" in out
    assert len(parcels(home)) == 3
    assert run(home, "route", "withdraw", "R-404", "--reason", "typo") == (1, "veilpost: no route R-404\n")


def test_print_route_prints_every_parcel_with_a_label_proof(home: Home, tmp_path: Path,
                                                            pty_printer: Callable[..., PtyPrinter]) -> None:
    assert run(home, "route", "import", write(tmp_path, "m.csv", manifest_csv(ROWS)))[0] == 0
    pp = pty_printer("tspl")
    (home.config.home / "printers.toml").write_text(
        '[printers.depot]\nurl = "%s"\nlanguage = "tspl"\nbaud = 115200\n' % pp.path, encoding="utf-8")
    code, out = run(home, "print", "--route", "R-07", "--printer", "depot")
    assert code == 0, out
    assert "depot: 3 printed" in out
    printed = pp.call(lambda e: [(label.tracking_no, label.qr_payload) for label in e.printed])
    assert sorted(t for t, _ in printed) == ["VP2630246633", "VP2644440001", "VP2653464097"]
    for tracking_no, qr in printed:
        assert qr is not None
        with home.store.transaction() as tx:
            proven = labels.check(tx, home.keys, from_text(qr), str(tracking_no))
        assert proven.label_no == 1
    code, out = run(home, "print", "--route", "R-07", "--printer", "depot")
    assert code == 1 and "all 3 parcels have their label" in out
    code, out = run(home, "print", "--route", "R-404", "--printer", "depot")
    assert code == 1 and "no route R-404" in out
    assert run(home, "print", "VP2611111111", "--route", "R-09", "--printer", "depot")[0] == 2
