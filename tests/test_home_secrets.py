"""Nothing under a gateway's home is readable by anyone but its owner,
whatever the umask: the config (it may hold the broker password), keys, the
broker accounts file, the admin secret, bundles, the database and its WAL.
The broker password may come from a file or the environment instead."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.broker_accounts import ACCOUNTS_FILE, AccountsFileAdmin
from gateway.config import ConfigError
from gateway.deploy import depot
from gateway.home import init, open_home
from gateway.permissions import secure_tree
from printer_drivers.spool import Spool
from tests.fixtures.gateway import manifest_csv


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _modes(folder: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in sorted(folder.rglob("*")):
        out[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def _loose(folder: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in _modes(folder).items()
            if mode != (0o700 if (folder / name).is_dir() else 0o600)}


def test_everything_a_working_home_holds_is_owner_only(tmp_path: Path, umask: int) -> None:
    from gateway.manifest import import_manifest
    from gateway.provision import BrokerLink, provision

    folder = tmp_path / "vp"
    home = init(folder)
    try:
        home.store.run("INSERT INTO couriers (courier_id, depot, shift, pin_salt, pin_hash, state, created)"
                       " VALUES ('C-1', 'D-1', '07:00-21:00', x'00', x'00', 'active', 0)")
        import_manifest(home.store, home.vault, home.audit, manifest_csv([("VP0000001", "R-1", "C-1", 0)]),
                        home.zone, 0.0, "it:test")
        source = tmp_path / "depot"
        source.mkdir()
        (source / "ca.crt").write_text("not a real certificate\n")
        (source / "admin.secret").write_text("veilpost-admin\nnot-a-real-password\n")
        depot.copy_to_home(source, folder)
        admin = AccountsFileAdmin(folder / ACCOUNTS_FILE)
        link = BrokerLink(admin, "127.0.0.1", 18830, None, "127.0.0.1", 18830,
                          operator_file=folder / "broker" / "operator.secret")
        bundle = provision(home, link, "hh-001", folder, now=0.0, actor="it:test")
        spool = Spool.at_home(folder)
        spool.close()
        names = set(_modes(folder))  # while the database is open: with its -wal and -shm
        loose_open = _loose(folder)
    finally:
        home.close()
    assert loose_open == {}
    for expected in ("veilpost.toml", "veilpost.db", "veilpost.db-wal", "keys", "keys/kek", "keys/audit.hmac",
                     ACCOUNTS_FILE, "broker/admin.secret", "broker/operator.secret",
                     str(bundle.relative_to(folder) / "provision.json")):
        assert expected in names, sorted(names)
    assert _loose(folder) == {}


def test_init_tightens_a_home_that_older_versions_left_open(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    os.chmod(folder, 0o755)
    os.chmod(folder / "veilpost.toml", 0o644)
    os.chmod(folder / "keys" / "audit.hmac", 0o644)
    init(folder).close()
    assert _loose(folder) == {}
    assert secure_tree(folder) == []  # nothing left to change


def _set(folder: Path, **values: str) -> None:
    path = folder / config_mod.CONFIG_NAME
    text = path.read_text()
    for key, value in values.items():
        text, n = __import__("re").subn(r"(?m)^%s = .*$" % key, "%s = %s" % (key, value), text, count=1)
        assert n == 1, key
    path.write_text(text)


def test_a_config_holding_the_broker_password_must_be_private(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    _set(folder, broker='"127.0.0.1"', password='"pw-in-the-toml"')
    os.chmod(folder / "veilpost.toml", 0o644)
    with pytest.raises(ConfigError, match=r"veilpost.toml holds the broker password and is readable by oth"):
        config_mod.load(folder)
    os.chmod(folder / "veilpost.toml", 0o600)
    assert config_mod.load(folder).mqtt.password == "pw-in-the-toml"


def test_the_broker_password_can_come_from_a_private_file(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    (folder / "mqtt.password").write_text("pw-from-a-file\n")
    os.chmod(folder / "mqtt.password", 0o600)
    _set(folder, broker='"127.0.0.1"', password_file='"mqtt.password"')
    cfg = config_mod.load(folder)
    assert cfg.mqtt.password == "pw-from-a-file"
    assert config_mod.password_source(cfg) == "file " + str(folder / "mqtt.password")
    os.chmod(folder / "mqtt.password", 0o640)
    with pytest.raises(ConfigError, match=r"\[mqtt\] password_file .*mqtt.password is readable by others"):
        config_mod.load(folder)
    os.chmod(folder / "mqtt.password", 0o600)
    _set(folder, password='"and-one-in-the-toml"')
    with pytest.raises(ConfigError, match="give the broker password once"):
        config_mod.load(folder)


def test_a_missing_or_empty_password_file_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    _set(folder, broker='"127.0.0.1"', password_file='"nowhere.password"')
    with pytest.raises(ConfigError, match=r"\[mqtt\] password_file .*nowhere.password: no such file"):
        config_mod.load(folder)
    (folder / "nowhere.password").write_text("\n")
    os.chmod(folder / "nowhere.password", 0o600)
    with pytest.raises(ConfigError, match="is empty"):
        config_mod.load(folder)


def test_the_broker_password_can_come_from_the_environment(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "vp"
    init(folder).close()
    _set(folder, broker='"127.0.0.1"')
    monkeypatch.setenv(config_mod.PASSWORD_ENV, "pw-from-the-environment")
    cfg = config_mod.load(folder)
    assert cfg.mqtt.password == "pw-from-the-environment"
    assert config_mod.password_source(cfg) == "environment " + config_mod.PASSWORD_ENV
    home = open_home(folder)  # what the gateway opens sees the same
    try:
        assert home.config.mqtt.password == "pw-from-the-environment"
    finally:
        home.close()
