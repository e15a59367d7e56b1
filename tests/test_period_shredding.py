"""Shredding that no copy undoes (docs/keys.md, "Period keys"): data keys are
wrapped under one period key per delivery day, and retention destroys the
day's key in the provider once every parcel under it is due. Old copies of
the rows -- a backup, SQLite's WAL, PostgreSQL's dead tuples read straight
from the relation's files -- then open nothing, with every key the provider
still has; parcels an incident holds or a complaint case names stay readable
(moved to a living key first). On SQLite and PostgreSQL, local and PKCS#11."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import retention
from gateway.home import Home
from gateway.keys import KeyUnavailable, day_of
from gateway.vault import RECEIVER_PHONE
from tests.fixtures.postgres import home_on
from tools.testbed.depot import seed_parcel
from tools.testbed.softhsm import SoftToken, configure

NOW = 1_900_000_000.0  # 2030-03-17 17:46 UTC
DAY = 86400.0
WINDOW = (NOW - 3600, NOW + 3600)  # every parcel below is planned for the same UTC day


@pytest.fixture(params=["sqlite-local", "sqlite-pkcs11", "pg-local", "pg-pkcs11"])
def home(request: Any, tmp_path: Path) -> Iterator[Home]:
    kind = request.param
    folder = tmp_path / "vp"
    if kind.endswith("pkcs11"):
        token: SoftToken = request.getfixturevalue("soft_token")
        configure(folder, token)
    if kind.startswith("pg"):
        h = home_on(folder, request.getfixturevalue("pg_url"))
    else:
        from gateway.home import init

        h = init(folder)
    yield h
    h.close()


def _keys(h: Home) -> list[str]:
    return h.keys.kek.ids() + h.keys.kek.period_ids()


def opens(h: Home, tracking_no: str, wrapped: bytes) -> list[str]:
    """The provider's keys (every one it still has) that open this wrapped data key."""
    out = []
    for key_id in _keys(h):
        try:
            h.keys.kek.unwrap(key_id, wrapped, tracking_no.encode())
            out.append(key_id)
        except KeyUnavailable:
            pass
    return out


def _deliver(h: Home, tracking_no: str, at: float) -> None:
    with h.store.transaction() as tx:
        retention.deliver(tx, h.audit, tracking_no, "C-112", "HH-1", 1, at)


def _incident(h: Home, incident_id: str, parcels: list[str]) -> None:
    with h.store.transaction() as tx:
        tx.run("INSERT INTO incidents (incident_id, opened, courier_id, device_id, trigger_reason, parcels,"
               " state, accounts) VALUES (?, ?, 'C-112', 'HH-1', 'test', ?, 'open', '[\"C-112\"]')",
               incident_id, NOW, json.dumps(parcels))
        tx.run("INSERT INTO incident_holds (incident_id, kind, ident, state) VALUES (?, 'courier', 'C-112',"
               " 'held')", incident_id)


def _parcels(h: Home) -> dict[str, str]:
    """Six parcels of one delivery day, each in a different situation."""
    names = {"on-time": "VP0000000101", "undelivered": "VP0000000102", "incident": "VP0000000103",
             "case": "VP0000000104", "late": "VP0000000105", "later-day": "VP0000000106"}
    for i, (what, t) in enumerate(names.items()):
        window = (WINDOW[0] + 20 * DAY, WINDOW[1] + 20 * DAY) if what == "later-day" else WINDOW
        seed_parcel(h, t, "R-07", "C-112", i, window=window)
    _deliver(h, names["on-time"], NOW)
    _deliver(h, names["incident"], NOW)
    _deliver(h, names["case"], NOW)
    _deliver(h, names["late"], NOW + 10 * DAY)  # delivered ten days late: not due with the others
    _deliver(h, names["later-day"], NOW + 20 * DAY)
    _incident(h, "INC-1", [names["incident"]])
    retention.open_case(h.store, h.audit, "CASE-1", names["case"], "receiver says parcel missing", "Agent Z",
                        NOW + DAY, for_account="C-112", fields=(2,))
    return names


def _rows(h: Home) -> dict[str, tuple[str, bytes, bytes]]:
    return {r[0]: (r[1], bytes(r[2]), bytes(r[3])) for r in h.store.all(
        "SELECT tracking_no, kek_id, data_key, ciphertext FROM parcels WHERE data_key IS NOT NULL")}


def test_retention_destroys_the_days_key_and_keeps_what_others_still_need(home: Home) -> None:
    h = home
    p = _parcels(h)
    backup = _rows(h)  # a backup taken before retention
    day_key = backup[p["on-time"]][0]
    assert {backup[t][0] for t in p.values() if t != p["later-day"]} == {day_key}
    assert all(opens(h, t, backup[t][1]) == [day_key] for t in p.values() if t != p["later-day"])

    at = NOW + 31 * DAY
    run = retention.retention_run(h.store, h.vault, h.audit, h.config, at)

    assert sorted(run.shredded) == sorted([p["on-time"], p["undelivered"]])
    assert sorted(run.held) == sorted([p["incident"], p["case"]])
    assert run.destroyed == [day_key] and day_key not in h.keys.kek.period_ids()
    # The shredded parcels: the backup's wrapped keys open under no key the provider has.
    for t in (p["on-time"], p["undelivered"]):
        assert opens(h, t, backup[t][1]) == []
    # Those still needed were moved first: held ones to today's key, the late one to its delivery day's.
    moved = _rows(h)
    assert moved[p["incident"]][0].startswith("p-20300417-")
    assert moved[p["case"]][0] == moved[p["incident"]][0]
    assert moved[p["late"]][0] == run.moved[p["late"]] and moved[p["late"]][0].startswith("p-20300327-")
    for what in ("incident", "case", "late"):
        t = p[what]
        assert h.vault.read(h.store, t, [RECEIVER_PHONE])[RECEIVER_PHONE].startswith("1700000"), what
        assert opens(h, t, backup[t][1]) == [], what  # the old wrapping died with the day's key
    # A parcel of a later day is not touched.
    assert moved[p["later-day"]] == backup[p["later-day"]]
    assert h.store.one("SELECT COUNT(*) FROM audit WHERE action = 'period-key-destroy'")[0] == 1

    # The late parcel goes when it is due, with its day's key; the held ones stay while held.
    h.store.run("UPDATE incident_holds SET state = 'lifted'")
    later = retention.retention_run(h.store, h.vault, h.audit, h.config, NOW + 41 * DAY + 1)
    assert p["late"] in later.shredded and p["incident"] in later.shredded
    assert p["case"] in later.held  # the case was never approved: still pending
    assert opens(h, p["late"], moved[p["late"]][1]) == []
    assert h.vault.read(h.store, p["case"], [RECEIVER_PHONE])


def test_a_parcel_wrapped_for_a_day_whose_key_is_gone_gets_a_new_key(home: Home) -> None:
    seed_parcel(home, "VP0000000201", "R-07", "C-112", 0, window=WINDOW)
    first = _rows(home)["VP0000000201"][0]
    retention.run_retention(home.store, home.vault, home.audit, home.config, NOW + 31 * DAY)
    assert first not in home.keys.kek.period_ids()
    seed_parcel(home, "VP0000000202", "R-07", "C-112", 1, window=WINDOW)  # imported late, for the same day
    second = _rows(home)["VP0000000202"][0]
    assert second != first and second.startswith(first[:11])
    assert home.vault.read(home.store, "VP0000000202", [RECEIVER_PHONE])


def test_destroying_a_key_encryption_key_as_a_period_key_is_refused(home: Home) -> None:
    with pytest.raises(KeyUnavailable, match="not a period key"):
        home.keys.kek.destroy(home.keys.kek.current_id())
    assert home.keys.kek.exists()


def test_sqlite_copy_of_database_and_wal_taken_before_retention_opens_nothing_after(
        tmp_path: Path, request: Any) -> None:
    for provider in ("local", "pkcs11"):
        folder = tmp_path / provider
        if provider == "pkcs11":
            configure(folder, request.getfixturevalue("soft_token"))
        from gateway.home import init

        h = init(folder)
        try:
            _copy_then_retain(h, tmp_path / ("copy-" + provider))
        finally:
            h.close()


def _copy_then_retain(h: Home, copy: Path) -> None:
    tracking = ["VP%010d" % (300 + i) for i in range(8)]
    for i, t in enumerate(tracking):
        seed_parcel(h, t, "R-07", "C-112", i, window=WINDOW)
        _deliver(h, t, NOW)
    copy.mkdir()
    db = h.config.database_path
    assert Path(str(db) + "-wal").exists()  # taken while the gateway is using it
    for suffix in ("", "-wal", "-shm"):
        if Path(str(db) + suffix).exists():
            shutil.copy2(str(db) + suffix, copy / (db.name + suffix))
    before = _decrypted(h, copy / db.name)
    assert before == len(tracking)  # the copy holds them, and today's provider opens them

    assert sorted(retention.run_retention(h.store, h.vault, h.audit, h.config, NOW + 31 * DAY)) == tracking
    assert _decrypted(h, copy / db.name) == 0


def _decrypted(h: Home, db_copy: Path) -> int:
    """Parcels of a database copy whose wrapped key opens under any key the provider has."""
    work = db_copy.parent / ("work-" + db_copy.name)
    for suffix in ("", "-wal", "-shm"):
        if Path(str(db_copy) + suffix).exists():
            shutil.copy2(str(db_copy) + suffix, str(work) + suffix)
    conn = sqlite3.connect(work)
    try:
        rows = conn.execute("SELECT tracking_no, data_key FROM parcels WHERE data_key IS NOT NULL").fetchall()
    finally:
        conn.close()
    return sum(1 for t, wrapped in rows if opens(h, t, bytes(wrapped)))


def test_postgres_relation_files_after_retention_hold_old_rows_that_open_nothing(
        tmp_path: Path, pg_url: str, request: Any) -> None:
    configure(tmp_path / "vp", request.getfixturevalue("soft_token"))
    h = home_on(tmp_path / "vp", pg_url)
    try:
        tracking = ["VP%010d" % (400 + i) for i in range(6)]
        for i, t in enumerate(tracking):
            seed_parcel(h, t, "R-07", "C-112", i, window=WINDOW)
            _deliver(h, t, NOW)
        _incident(h, "INC-9", [tracking[0]])  # one stays readable
        old = _rows(h)
        day_key = old[tracking[1]][0]
        run = retention.retention_run(h.store, h.vault, h.audit, h.config, NOW + 31 * DAY)
        assert sorted(run.shredded) == tracking[1:] and run.destroyed == [day_key]

        h.store.run("CHECKPOINT")  # the pages on disk, as a copy of the data directory would find them
        data_dir = Path(str(h.store.one("SHOW data_directory")[0]))
        heap = (data_dir / str(h.store.one("SELECT pg_relation_filepath('parcels')")[0])).read_bytes()
        wal = b"".join(p.read_bytes() for p in sorted((data_dir / "pg_wal").glob("0*")) if p.is_file())
        carved = 0
        for t, (_kek, wrapped, ciphertext) in old.items():
            at = heap.find(wrapped)
            # The dead row version is still in the table's file, key and ciphertext both.
            assert at >= 0 and heap.find(ciphertext) >= 0, t
            carved_key = heap[at:at + len(wrapped)]
            assert opens(h, t, carved_key) == [], t
            carved += 1
            if wrapped in wal:
                assert opens(h, t, wal[wal.find(wrapped):wal.find(wrapped) + len(wrapped)]) == []
        assert carved == len(tracking)
        # What is still needed is readable through its new key, and only that.
        assert h.vault.read(h.store, tracking[0], [RECEIVER_PHONE])
        assert day_of(NOW) == day_of(WINDOW[1])
    finally:
        h.close()
