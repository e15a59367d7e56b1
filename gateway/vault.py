"""Field-level envelope encryption. Each parcel's personal fields are one
AES-256-GCM ciphertext under the parcel's own data key; the data key is
stored only wrapped, under the key provider's period key for the parcel's
delivery day (UTC day of its window's end). Retention destroys a period's
key in the provider once every parcel under it is due (gateway/retention.py):
from then on no copy of the database -- dead rows, WAL, a backup -- opens
those parcels, even with the provider. Shredding a row (shred) also drops
its wrapped key from the live table."""

from __future__ import annotations

import secrets

import cbor2
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.keys import PERIOD_PREFIX, KekProvider, KeyUnavailable, day_of
from gateway.store import Handle, Store
from protocol.errors import PolicyDenied

# Field ids 1-3 are the wire's personal field ids (docs/wire.md).
RECEIVER_NAME, RECEIVER_PHONE, RECEIVER_ADDRESS = 1, 2, 3
SENDER_NAME, SENDER_PHONE, SENDER_ADDRESS = 4, 5, 6
# Never on the wire: only an incident's notice reads it (gateway/incidents.py).
RECEIVER_EMAIL = 7
FIELD_NAMES = {
    RECEIVER_NAME: "receiver_name",
    RECEIVER_PHONE: "receiver_phone",
    RECEIVER_ADDRESS: "receiver_address",
    SENDER_NAME: "sender_name",
    SENDER_PHONE: "sender_phone",
    SENDER_ADDRESS: "sender_address",
    RECEIVER_EMAIL: "receiver_email",
}


class Shredded(PolicyDenied):
    """The parcel's data key has been destroyed; its fields are gone."""


class Vault:
    def __init__(self, provider: KekProvider) -> None:
        self.provider = provider

    def put(self, tx: Handle, tracking_no: str, values: dict[int, str]) -> None:
        """Encrypt `values` under a fresh data key and store them on the parcel
        row (inserted before), the data key wrapped under its delivery day's period key."""
        row = tx.one("SELECT window_end FROM parcels WHERE tracking_no = ?", tracking_no)
        if row is None:
            raise KeyUnavailable("no parcel " + tracking_no)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        aad = tracking_no.encode()
        blob = nonce + AESGCM(data_key).encrypt(nonce, cbor2.dumps(values, canonical=True), aad)
        kek_id, wrapped = self.provider.period_wrap(day_of(float(row[0])), data_key, aad)
        tx.run(
            "UPDATE parcels SET ciphertext = ?, data_key = ?, kek_id = ? WHERE tracking_no = ?",
            blob, wrapped, kek_id, tracking_no,
        )

    def read(self, tx: Handle | Store, tracking_no: str, field_ids: list[int]) -> dict[int, str]:
        row = tx.one(
            "SELECT ciphertext, data_key, kek_id FROM parcels WHERE tracking_no = ?", tracking_no
        )
        if row is None:
            raise KeyUnavailable("no parcel " + tracking_no)
        blob, wrapped, kek_id = row
        if wrapped is None:
            raise Shredded("parcel " + tracking_no + " has been shredded")
        aad = tracking_no.encode()
        data_key = self.provider.unwrap(kek_id, bytes(wrapped), aad)
        blob = bytes(blob)
        values = cbor2.loads(AESGCM(data_key).decrypt(blob[:12], blob[12:], aad))
        return {f: values[f] for f in field_ids if f in values}

    def shred(self, tx: Handle, tracking_no: str, now: float) -> bool:
        """Destroy the data key; masked columns stay for statistics."""
        changed = tx.run(
            "UPDATE parcels SET data_key = NULL, ciphertext = NULL, kek_id = NULL, "
            "shredded_at = ? WHERE tracking_no = ? AND data_key IS NOT NULL",
            now, tracking_no,
        )
        return changed > 0

    def move(self, tx: Handle, tracking_no: str, day: int) -> str:
        """Re-wrap one parcel's data key under `day`'s period key (retention
        moves a parcel still needed off a period key it is about to destroy)."""
        row = tx.one("SELECT data_key, kek_id FROM parcels WHERE tracking_no = ? AND data_key IS NOT NULL",
                     tracking_no)
        if row is None:
            raise KeyUnavailable("no readable parcel " + tracking_no)
        aad = tracking_no.encode()
        secret = self.provider.unwrap(row[1], bytes(row[0]), aad)
        new_id, new_wrapped = self.provider.period_wrap(day, secret, aad)
        tx.run("UPDATE parcels SET data_key = ?, kek_id = ? WHERE tracking_no = ?", new_wrapped, new_id,
               tracking_no)
        return new_id

    def rewrap(self, store: Store, batch: int = 200) -> int:
        """Re-wrap every device secret not under the current KEK, and every
        data key still under a KEK (from before period keys) under its period
        key, in small transactions so the service keeps running. Data keys
        already under period keys stay: retention ends those keys. Returns how many."""
        total = 0
        target = self.provider.current_id()
        while True:
            with store.transaction() as tx:
                rows = tx.all(
                    "SELECT tracking_no, data_key, kek_id, window_end FROM parcels "
                    "WHERE data_key IS NOT NULL AND kek_id NOT LIKE ? LIMIT ?",
                    PERIOD_PREFIX + "%", batch,
                )
                for tracking_no, wrapped, kek_id, window_end in rows:
                    aad = tracking_no.encode()
                    secret = self.provider.unwrap(kek_id, bytes(wrapped), aad)
                    new_id, new_wrapped = self.provider.period_wrap(day_of(float(window_end)), secret, aad)
                    tx.run(
                        "UPDATE parcels SET data_key = ?, kek_id = ? WHERE tracking_no = ?",
                        new_wrapped, new_id, tracking_no,
                    )
                devices = tx.all(
                    "SELECT device_id, secret_wrapped, secret_kek FROM devices "
                    "WHERE secret_kek <> ? LIMIT ?",
                    target, batch,
                )
                for device_id, wrapped, kek_id in devices:
                    aad = device_aad(device_id)
                    secret = self.provider.unwrap(kek_id, bytes(wrapped), aad)
                    new_id, new_wrapped = self.provider.wrap(secret, aad)
                    tx.run(
                        "UPDATE devices SET secret_wrapped = ?, secret_kek = ? WHERE device_id = ?",
                        new_wrapped, new_id, device_id,
                    )
            total += len(rows) + len(devices)
            if not rows and not devices:
                return total

    def kek_ids_in_use(self, store: Store) -> set[str]:
        rows = store.all(
            "SELECT DISTINCT kek_id FROM parcels WHERE kek_id IS NOT NULL "
            "UNION SELECT DISTINCT secret_kek FROM devices "
            # a rotation in progress holds secrets wrapped too: their keys stay
            "UNION SELECT next_kek FROM key_rotations UNION SELECT password_kek FROM key_rotations "
            "UNION SELECT prev_kek FROM key_rotations"
        )
        return {r[0] for r in rows if r[0]}


def device_aad(device_id: str) -> bytes:
    return b"device:" + device_id.encode()
