import pytest

from gateway import registry
from gateway.store import SqliteStore as Store


def test_device_secret_is_kept_wrapped_and_reads_back(gateway_home):
    secret = registry.add_device(gateway_home.store, gateway_home.keys.kek, "HH-1", "test-model")
    assert len(secret) == 32
    raw = gateway_home.store.one("SELECT secret_wrapped FROM devices")[0]
    assert secret not in bytes(raw)
    assert registry.device_secret(gateway_home.store, gateway_home.keys.kek, "HH-1") == secret
    assert registry.device_state(gateway_home.store, "HH-1") == "provisioned"


def test_bad_device_id_and_duplicate_are_refused(gateway_home):
    with pytest.raises(registry.RegistryError, match="device id"):
        registry.add_device(gateway_home.store, gateway_home.keys.kek, "bad/id", "m")
    registry.add_device(gateway_home.store, gateway_home.keys.kek, "HH-1", "m")
    with pytest.raises(registry.RegistryError, match="already exists"):
        registry.add_device(gateway_home.store, gateway_home.keys.kek, "HH-1", "m")


def test_pin_is_checked_against_scrypt_hash(gateway_home):
    registry.add_courier(gateway_home.store, "C-112", "4321", "D-1")
    assert registry.verify_pin(gateway_home.store, "C-112", "4321")
    assert not registry.verify_pin(gateway_home.store, "C-112", "1234")
    assert not registry.verify_pin(gateway_home.store, "C-999", "4321")
    assert b"4321" not in bytes(gateway_home.store.one("SELECT pin_hash FROM couriers")[0])


def test_one_session_per_device(gateway_home):
    registry.add_courier(gateway_home.store, "C-1", "1111", "D-1")
    registry.add_courier(gateway_home.store, "C-2", "2222", "D-1")
    with gateway_home.store.transaction() as tx:
        registry.login(tx, "C-1", "HH-1", 1.0)
        sid = registry.login(tx, "C-2", "HH-1", 2.0)
    assert registry.session_on(gateway_home.store, "HH-1") == (sid, "C-2")


def test_migrations_run_once(tmp_path):
    from gateway import store as store_mod

    Store(tmp_path / "x.db").close()
    store = Store(tmp_path / "x.db")
    assert store.version == len(store_mod.MIGRATIONS)


def test_an_older_database_is_migrated_forward(tmp_path, monkeypatch):
    from gateway import store as store_mod

    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:1])
    Store(tmp_path / "old.db").close()
    monkeypatch.undo()
    upgraded = Store(tmp_path / "old.db")
    assert upgraded.version == len(store_mod.MIGRATIONS)
    assert upgraded.one("SELECT COUNT(*) FROM login_failures")[0] == 0
