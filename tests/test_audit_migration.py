"""A log written before entries were typed (version 1: float seconds, free
text, version 1 checkpoints) is migrated in place, on SQLite and on
PostgreSQL: its old entries still verify, new entries (version 2) chain on
from them, the next checkpoint is version 2, and editing an old entry is
still caught."""

from __future__ import annotations

import pytest

from gateway import audit
from gateway import store as store_mod
from gateway.audit import AuditLog
from gateway.stores import open_store

TYPED = next(i for i, m in enumerate(store_mod.MIGRATIONS) if "ALTER TABLE audit ADD COLUMN v " in m)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "old.db")
    return request.getfixturevalue("pg_url")


def _old_log(location, keys, monkeypatch):
    """A store at the schema before typed entries, with three version 1 entries and a checkpoint."""
    from gateway import store_pg

    for module in (store_mod, store_pg):  # each store runs the list it imported
        monkeypatch.setattr(module, "MIGRATIONS", store_mod.MIGRATIONS[:TYPED])
    old = open_store(location)
    prev = audit.GENESIS
    with old.transaction() as tx:
        for seq, detail in ((1, "fields 2"), (2, "fields 1,2 reason 3"), (3, "")):
            at = 1_700_000_000.25 + seq
            digest = audit.entry_hash(prev, seq, at, "courier:ab", "HH-1", "reveal", "VP1", "granted", detail)
            tx.run("INSERT INTO audit (seq, at, actor, device, action, parcel, outcome, detail, prev_hash,"
                   " hash) VALUES (?, ?, 'courier:ab', 'HH-1', 'reveal', 'VP1', 'granted', ?, ?, ?)",
                   seq, at, detail, prev, digest)
            prev = digest
        signature = keys.sign(b"veilpost-audit-checkpoint/v1" + (3).to_bytes(8, "big") + prev)
        tx.run("INSERT INTO checkpoints (seq, hash, at, signature) VALUES (3, ?, 1700000004.0, ?)",
               prev, signature)
    old.close()
    monkeypatch.undo()


def test_an_old_log_is_migrated_and_still_verifies(location, gateway_home, monkeypatch):
    keys = gateway_home.keys
    _old_log(location, keys, monkeypatch)
    store = open_store(location)
    try:
        assert store.version == len(store_mod.MIGRATIONS)
        pub = keys.public_key()
        verdict = audit.verify(store, pub)
        assert verdict.ok and verdict.entries == 3 and verdict.versions == {1: 3} and verdict.checkpoints == 1
        log = AuditLog(keys)
        with store.transaction() as tx:
            log.append(tx, 1_700_000_010.0, "courier:ab", "HH-1", "deliver", "VP1", "ok", {"code": "ok"})
            cp = log.checkpoint(tx, 1_700_000_011.0)
        assert cp is not None and cp.seq == 4 and cp.v == 2
        verdict = audit.verify(store, pub, [cp])
        assert verdict.ok and verdict.versions == {1: 3, 2: 1} and verdict.witnessed == 1
        store.run("UPDATE audit SET detail = 'fields 1,2,3 reason 3' WHERE seq = 2")
        verdict = audit.verify(store, pub, [cp])
        assert not verdict.ok and verdict.first_bad == 2 and verdict.bad_checkpoint == 4
    finally:
        store.close()
