import os
import stat

import pytest

from gateway import registry
from gateway.keys import KeyUnavailable
from gateway.vault import RECEIVER_NAME, RECEIVER_PHONE, Shredded


def _parcel(home, tracking_no="VP0000000001"):
    with home.store.transaction() as tx:
        tx.run("INSERT INTO parcels (tracking_no, route_id, sort_code, state, window_start, window_end,"
               " masked_receiver_name, masked_receiver_phone, masked_receiver_address, masked_sender_name,"
               " masked_sender_phone, masked_sender_address) VALUES (?, 'R-1', 'R1', 'out_for_delivery',"
               " 0, 1, '*', '*', '*', '*', '*', '*')", tracking_no)
        home.vault.put(tx, tracking_no, {RECEIVER_NAME: "測試甲", RECEIVER_PHONE: "17000001234"})


def test_key_files_are_owner_only(gateway_home):
    keys = gateway_home.keys
    assert stat.S_IMODE(os.stat(keys.dir).st_mode) == 0o700
    for path in list(keys.dir.glob("*")) + list(keys.kek.dir.glob("*.key")):
        if path.is_file():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_fields_read_back_only_those_asked(gateway_home):
    _parcel(gateway_home)
    assert gateway_home.vault.read(gateway_home.store, "VP0000000001", [RECEIVER_PHONE]) == {
        RECEIVER_PHONE: "17000001234"}


def test_database_row_holds_no_plaintext(gateway_home):
    _parcel(gateway_home)
    row = gateway_home.store.one("SELECT * FROM parcels")
    blob = repr(row).encode() + b"".join(v for v in row if isinstance(v, bytes))
    assert "測試甲".encode() not in blob and b"17000001234" not in blob


def test_shredded_parcel_cannot_be_read(gateway_home):
    _parcel(gateway_home)
    with gateway_home.store.transaction() as tx:
        assert gateway_home.vault.shred(tx, "VP0000000001", 5.0)
    with pytest.raises(Shredded):
        gateway_home.vault.read(gateway_home.store, "VP0000000001", [RECEIVER_NAME])
    masked = gateway_home.store.one("SELECT masked_receiver_name, shredded_at FROM parcels")
    assert masked == ("*", 5.0)


def test_data_keys_are_wrapped_under_their_delivery_days_period_key(gateway_home):
    _parcel(gateway_home)
    kek_id = gateway_home.store.one("SELECT kek_id FROM parcels")[0]
    assert kek_id.startswith("p-19700101-") and kek_id in gateway_home.keys.kek.period_ids()


def test_rotation_rewraps_everything_and_old_key_can_be_retired(gateway_home):
    for i in range(5):
        _parcel(gateway_home, "VP000000000%d" % i)
    # One parcel from before period keys: its data key under the KEK itself.
    aad = b"VP0000000004"
    secret = gateway_home.keys.kek.unwrap(*gateway_home.store.one(
        "SELECT kek_id, data_key FROM parcels WHERE tracking_no = 'VP0000000004'"), aad)
    gateway_home.store.run("UPDATE parcels SET kek_id = ?, data_key = ? WHERE tracking_no = 'VP0000000004'",
                           *gateway_home.keys.kek.wrap(secret, aad))
    registry.add_device(gateway_home.store, gateway_home.keys.kek, "HH-1", "test")
    old = gateway_home.keys.kek.current_id()
    new = gateway_home.keys.kek.create()
    # Before re-wrapping, old entries still open (no downtime).
    assert gateway_home.vault.read(gateway_home.store, "VP0000000004", [RECEIVER_NAME])
    assert gateway_home.vault.rewrap(gateway_home.store, batch=2) == 2  # the device and the old parcel
    period = gateway_home.keys.kek.period_ids()
    assert gateway_home.vault.kek_ids_in_use(gateway_home.store) == {new, *period}
    gateway_home.keys.kek.retire(old)
    assert gateway_home.vault.read(gateway_home.store, "VP0000000003", [RECEIVER_NAME]) == {
        RECEIVER_NAME: "測試甲"}
    assert len(registry.device_secret(gateway_home.store, gateway_home.keys.kek, "HH-1")) == 32


def test_wrapped_key_moved_to_another_parcel_does_not_open(gateway_home):
    _parcel(gateway_home, "VP0000000001")
    _parcel(gateway_home, "VP0000000002")
    key = gateway_home.store.one("SELECT data_key FROM parcels WHERE tracking_no = 'VP0000000001'")[0]
    gateway_home.store.run("UPDATE parcels SET data_key = ? WHERE tracking_no = 'VP0000000002'", key)
    with pytest.raises(KeyUnavailable):
        gateway_home.vault.read(gateway_home.store, "VP0000000002", [RECEIVER_NAME])
