"""A thief's copy of the whole gateway home -- database, WAL, logs, print
spool, bundles, config -- taken while the gateway is in use. With the keys in
a PKCS#11 token, the copy alone (no token) decrypts 0 records and reverses 0
pseudonyms, although every key-like byte string in it is tried as the
key-encryption key, as a data key and as the people-HMAC key. The same attack
on a home with the local key file opens everything: it is what the search
would find if a key were on the disk."""

from __future__ import annotations

import hmac
import json
import logging
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway import bundles, operators, registry, retention
from gateway.home import Home, init
from gateway.logs import log as gateway_log
from gateway.manifest import import_manifest
from printer_drivers.spool import Spool
from tests.fixtures.gateway import Depot, Wire
from tests.fixtures.postgres import home_on
from tools.testbed.depot import leaks, manifest_csv
from tools.testbed.softhsm import SoftToken, configure

NOW = 1_900_000_000.0
KINDS = ("courier", "officer", "staff", "agent", "it", "operator")
HEX_KEY = re.compile(rb"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


@dataclass
class Loot:
    records: int
    decrypted: int
    pseudonyms: int
    reversed: int
    candidates: int
    plaintexts: list[bytes]


def candidates(folder: Path) -> tuple[set[bytes], set[bytes]]:
    """Every 32-byte string in the copy's files (at every offset, and hex-decoded),
    and the same from its small files only (not the databases), to try as data keys."""
    every: set[bytes] = set()
    small: set[bytes] = set()
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        blob = path.read_bytes()
        found = {blob[i:i + 32] for i in range(max(0, len(blob) - 31))}
        found |= {bytes.fromhex(m.group().decode()) for m in HEX_KEY.finditer(blob)}
        every |= found
        if not path.name.startswith(("veilpost.db", "spool.sqlite3")):
            small |= found
    return every, small


ROWS = "SELECT tracking_no, data_key, ciphertext, kek_id FROM parcels WHERE data_key IS NOT NULL"
ENTRIES = "SELECT actor, detail FROM audit"
NAMES = ("SELECT courier_id FROM couriers UNION SELECT name FROM officers"
         " UNION SELECT name FROM operators UNION SELECT opened_by FROM cases")
TABLES = ("parcels", "audit", "checkpoints", "couriers", "officers", "operators", "cases", "devices",
          "key_rotations", "releases", "tokens")


def read_sqlite_copy(copy: Path) -> tuple[list[Any], str, list[str]]:
    work = copy.parent / (copy.name + "-work")  # sqlite replays the copied WAL into a scratch copy
    shutil.copytree(copy, work)
    conn = sqlite3.connect(work / "veilpost.db")
    try:
        return (conn.execute(ROWS).fetchall(), " ".join(a + " " + d for a, d in conn.execute(ENTRIES)),
                [r[0] for r in conn.execute(NAMES)])
    finally:
        conn.close()


def attack(copy: Path, db: tuple[list[Any], str, list[str]] | None = None) -> Loot:
    """What the copy alone gives away (`db`: its database's rows, when they
    are not a SQLite file in it)."""
    rows, logged, names = read_sqlite_copy(copy) if db is None else db
    people = [(kind, name) for name in names for kind in KINDS]
    pseudonyms = set(re.findall(r"\b[a-z]+:[0-9a-f]{24}\b", logged))
    every, small = candidates(copy)
    # Key-encryption key: any candidate that opens a wrapped data key.
    keks = []
    one_per_key = {r[3]: r for r in rows}.values()
    for key in every:
        aead = AESGCM(key)
        for tracking_no, wrapped, _ct, _kek in one_per_key:
            try:
                aead.decrypt(bytes(wrapped)[:12], bytes(wrapped)[12:], tracking_no.encode())
                keks.append(aead)
            except Exception:
                pass
    decrypted = 0
    plain: list[bytes] = []
    for tracking_no, wrapped, ct, _kek in rows:
        ct, aad = bytes(ct), tracking_no.encode()
        data_keys = []
        for aead in keks:
            try:
                data_keys.append(aead.decrypt(bytes(wrapped)[:12], bytes(wrapped)[12:], aad))
            except Exception:
                pass
        data_keys += list(small)  # a data key lying in a log, the spool or a bundle
        for key in data_keys:
            try:
                values = cbor2.loads(AESGCM(key).decrypt(ct[:12], ct[12:], aad))
            except Exception:
                continue
            decrypted += 1
            plain += [str(v).encode() for v in values.values()]
            break
    # People-HMAC key: any candidate that turns a known person into a pseudonym of the log.
    known = [(kind + ":" + ident).encode() for kind, ident in people]
    reversed_ = set()
    for key in every:
        for name in known:
            pseudonym = name.split(b":")[0].decode() + ":" + hmac.digest(key, name, "sha256").hex()[:24]
            if pseudonym in pseudonyms:
                reversed_.add(pseudonym)
    return Loot(len(rows), decrypted, len(pseudonyms), len(reversed_), len(every), plain)


def in_use_home(folder: Path, pg_url: str = "") -> Home:
    """A home as a working day leaves it: parcels imported, reveals, labels
    printed, an activated handheld and one waiting for its bundle, a log file."""
    home = home_on(folder, pg_url) if pg_url else init(folder)
    depot = Depot(home, NOW)
    registry.add_officer(home.store, "Officer A", "111111")
    csv = manifest_csv([("VP%010d" % (7000 + i), "R-11", "C-200", i) for i in range(10)])
    import_manifest(home.store, home.vault, home.audit, csv, home.zone, NOW, "it:test")
    operators.add(home.store, "Agent Z", "agent", NOW)
    with home.store.transaction() as tx:
        retention.deliver(tx, home.audit, depot.route[4], "C-112", "HH-1", 1, NOW)
    retention.open_case(home.store, home.audit, "CASE-1", depot.route[4], "receiver says parcel missing",
                        "Agent Z", NOW, for_account="C-112", fields=(2,))
    retention.approve_case(home.store, home.audit, home.config, "CASE-1", "Officer A", "111111", NOW)
    for t in depot.route[:3]:
        depot.label(t)
        depot.scan(t)
        assert depot.reveal(t, (2,), 1).decision.granted
    spool = Spool.at_home(folder)
    spool.submit_many("printer-1", [(t, b"^XA masked label ^XZ") for t in depot.route[:2]])
    spool.close()
    for device in ("HH-2", "HH-3"):  # bundles as `veilpost device provision` writes them
        secret = registry.add_device(home.store, home.keys.kek, device, "test")
        bundle = bundles.bundle_of(folder, device)
        bundle.mkdir(parents=True, mode=0o700)
        doc = {"device_id": device, "master_secret": secret.hex()}
        (bundle / "provision.json").write_text(json.dumps(doc))
        if device == "HH-2":
            Wire(home, device, secret).send("hello", {"device": device, "fw": "test"}, NOW)
            assert not (bundle / "provision.json").exists()
    return home


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    """The gateway's log as journald or a log file would keep it, inside the home."""
    path = tmp_path / "logs" / "gateway.log"
    path.parent.mkdir()
    handler = logging.FileHandler(path)
    gateway_log.addHandler(handler)
    level = gateway_log.level
    gateway_log.setLevel(logging.DEBUG)
    yield path
    gateway_log.removeHandler(handler)
    gateway_log.setLevel(level)
    handler.close()


def _copy_in_use(tmp_path: Path, logged: Path, provider: str, token: SoftToken | None) -> Loot:
    folder = tmp_path / provider / "vp"
    if token is not None:
        configure(folder, token)
    home = in_use_home(folder)
    try:
        shutil.copytree(logged.parent, folder / "logs")
        assert (folder / "veilpost.db-wal").exists() and (folder / "bundles" / "HH-3").exists()
        copy = tmp_path / provider / "copy"
        shutil.copytree(folder, copy)  # while the gateway has it open
    finally:
        home.close()
    return attack(copy)


def test_a_copy_of_the_home_with_keys_in_the_token_opens_nothing(tmp_path: Path, logged: Path,
                                                                 soft_token: SoftToken) -> None:
    loot = _copy_in_use(tmp_path, logged, "pkcs11", soft_token)
    assert loot.records == 26 and loot.pseudonyms >= 3 and loot.candidates > 10_000
    assert (loot.decrypted, loot.reversed) == (0, 0)
    assert loot.plaintexts == []


def test_a_copy_of_the_home_and_of_postgres_files_with_keys_in_the_token_opens_nothing(
        tmp_path: Path, logged: Path, soft_token: SoftToken, pg_url: str) -> None:
    """The same on PostgreSQL: the home folder, and the store's tables as
    their relation files (read from the data directory) and as rows (a dump)."""
    folder = tmp_path / "vp"
    configure(folder, soft_token)
    home = in_use_home(folder, pg_url)
    try:
        shutil.copytree(logged.parent, folder / "logs")
        copy = tmp_path / "copy"
        shutil.copytree(folder, copy)
        home.store.run("CHECKPOINT")
        data_dir = Path(str(home.store.one("SHOW data_directory")[0]))
        (copy / "pgdata").mkdir()
        for table in TABLES:
            relation = str(home.store.one("SELECT pg_relation_filepath(?)", table)[0])
            shutil.copy(data_dir / relation, copy / "pgdata" / table)
        dump = ([tuple(r) for r in home.store.all(ROWS)],
                " ".join(a + " " + d for a, d in home.store.all(ENTRIES)),
                [r[0] for r in home.store.all(NAMES)])
    finally:
        home.close()
    assert all((copy / "pgdata" / t).stat().st_size > 0 for t in ("parcels", "audit"))
    loot = attack(copy, dump)
    assert loot.records == 26 and loot.pseudonyms >= 3
    assert (loot.decrypted, loot.reversed) == (0, 0)


def test_the_same_copy_with_the_local_key_file_opens_everything(tmp_path: Path, logged: Path) -> None:
    loot = _copy_in_use(tmp_path, logged, "local", None)
    assert loot.records == 26 and loot.decrypted == loot.records
    assert loot.reversed == loot.pseudonyms >= 3
    assert leaks(b"".join(loot.plaintexts))


def test_nothing_personal_is_in_the_copy_in_plaintext(tmp_path: Path, logged: Path,
                                                      soft_token: SoftToken) -> None:
    folder = tmp_path / "vp"
    configure(folder, soft_token)
    home = in_use_home(folder)
    try:
        blob = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file()) + logged.read_bytes()
    finally:
        home.close()
    assert leaks(blob) == []


def test_activation_shreds_the_bundles_secret_and_keeps_the_public_ca(gateway_home: Home) -> None:
    folder = gateway_home.config.home
    secret = registry.add_device(gateway_home.store, gateway_home.keys.kek, "HH-7", "test")
    bundle = bundles.bundle_of(folder, "HH-7")
    bundle.mkdir(parents=True, mode=0o700)
    (bundle / "provision.json").write_text(json.dumps({"device_id": "HH-7", "master_secret": secret.hex()}))
    (bundle / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    wire = Wire(gateway_home, "HH-7", secret)
    wire.send("hello", {"device": "HH-7", "fw": "test"}, NOW)
    assert registry.device_state(gateway_home.store, "HH-7") == "active"
    assert not (bundle / "provision.json").exists() and (bundle / "ca.crt").exists()
    entry = gateway_home.store.one("SELECT detail FROM audit WHERE action = 'activate' AND device = 'HH-7'")
    assert entry is not None and json.loads(entry[0]) == {"bundle": "shredded"}
    # A second hello (already active) finds nothing more to do.
    wire.send("hello", {"device": "HH-7", "fw": "test"}, NOW + 1)
    assert gateway_home.store.one("SELECT COUNT(*) FROM audit WHERE action = 'activate'")[0] == 1


def test_a_bundle_shredded_leaves_zeros_not_the_secret(tmp_path: Path) -> None:
    bundle = tmp_path / "HH-8"
    bundle.mkdir()
    secret = bytes(range(32)).hex()
    (bundle / "provision.json").write_text(json.dumps({"master_secret": secret}))
    handle = open(bundle / "provision.json", "rb")  # a reader that still has it open sees the overwrite
    try:
        assert bundles.shred_bundle(bundle) and not bundle.exists()
        assert secret.encode() not in handle.read()
    finally:
        handle.close()
    assert not bundles.shred_bundle(bundle)
