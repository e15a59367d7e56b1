import io
import json

from gateway import audit, audit_query


def _fill(home, n=10):
    log = home.audit
    log.checkpoint_every = 4
    with home.store.transaction() as tx:
        for i in range(n):
            log.append(tx, 1000.0 + i, log.person("courier", "C-112"), "HH-1", "reveal",
                       "VP%010d" % i, "granted", "fields 2")
    return home.keys.public_key()


def test_intact_chain_verifies(gateway_home):
    pub = _fill(gateway_home)
    verdict = audit.verify(gateway_home.store, pub)
    assert verdict.ok and verdict.entries == 10 and verdict.checkpoints == 2


def test_altered_entry_is_named(gateway_home):
    pub = _fill(gateway_home)
    gateway_home.store.run("UPDATE audit SET outcome = 'denied' WHERE seq = 6")
    verdict = audit.verify(gateway_home.store, pub)
    assert not verdict.ok and verdict.first_bad == 6 and "altered" in verdict.problem


def test_removed_entry_is_named(gateway_home):
    pub = _fill(gateway_home)
    gateway_home.store.run("DELETE FROM audit WHERE seq = 3")
    verdict = audit.verify(gateway_home.store, pub)
    assert not verdict.ok and verdict.first_bad == 3


def test_reordered_entries_are_named(gateway_home):
    pub = _fill(gateway_home)
    with gateway_home.store.transaction() as tx:
        tx.run("UPDATE audit SET seq = -1 WHERE seq = 5")
        tx.run("UPDATE audit SET seq = 5 WHERE seq = 6")
        tx.run("UPDATE audit SET seq = 6 WHERE seq = -1")
    verdict = audit.verify(gateway_home.store, pub)
    assert not verdict.ok and verdict.first_bad == 5


def test_cut_off_tail_is_caught_by_signed_checkpoint(gateway_home):
    pub = _fill(gateway_home)
    gateway_home.store.run("DELETE FROM audit WHERE seq > 7")
    verdict = audit.verify(gateway_home.store, pub)
    assert not verdict.ok and verdict.first_bad == 8 and "removed" in verdict.problem


def rewrite(home, keep=lambda row: True, change=lambda row: row, resign=False):
    """What an insider with the database (and, with resign, the disk's signing
    key) can do: rebuild a consistent chain from the entries kept, changed."""
    found = [list(r) for r in home.store.all("SELECT seq, at_ms, actor, device, action, parcel, outcome,"
                                             " detail FROM audit ORDER BY seq")]
    prev, seq = audit.GENESIS, 0
    with home.store.transaction() as tx:
        tx.run("DELETE FROM audit")
        if resign:
            tx.run("DELETE FROM checkpoints")
        for row in found:
            if not keep(row):
                continue
            seq += 1
            _old, at_ms, actor, device, action, parcel, outcome, detail = change(row)
            digest = audit.entry_hash_v2(prev, seq, at_ms, actor, device, action, parcel, outcome,
                                         json.loads(detail))
            tx.run("INSERT INTO audit (seq, at, actor, device, action, parcel, outcome, detail, prev_hash,"
                   " hash, v, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 2, ?)", seq, at_ms / 1000, actor,
                   device, action, parcel, outcome, detail, prev, digest, at_ms)
            if resign and seq % 4 == 0:
                sig = home.keys.sign(audit.checkpoint_message(seq, digest, at_ms))
                tx.run("INSERT INTO checkpoints (seq, hash, at, signature, v, at_ms)"
                       " VALUES (?, ?, ?, ?, 2, ?)", seq, digest, at_ms / 1000, sig, at_ms)
            prev = digest


def test_rewritten_chain_fails_checkpoint_signature_check(gateway_home):
    pub = _fill(gateway_home)
    # An insider recomputes every hash after editing entry 2: the chain is
    # consistent again, but the signed checkpoints no longer match.
    rewrite(gateway_home, change=lambda r: r[:6] + ["denied" if r[0] == 2 else r[6]] + r[7:])
    verdict = audit.verify(gateway_home.store, pub)
    assert not verdict.ok and verdict.first_bad == 4 and "checkpoint" in verdict.problem


def test_version_1_entries_still_verify_beside_version_2(gateway_home):
    pub = gateway_home.keys.public_key()
    prev = audit.GENESIS
    with gateway_home.store.transaction() as tx:
        for seq in (1, 2):
            digest = audit.entry_hash(prev, seq, 900.5, "gateway", "HH-1", "activate", "", "ok", "free text")
            tx.run("INSERT INTO audit (seq, at, actor, device, action, parcel, outcome, detail, prev_hash,"
                   " hash) VALUES (?, 900.5, 'gateway', 'HH-1', 'activate', '', 'ok', 'free text', ?, ?)",
                   seq, prev, digest)
            prev = digest
    _fill(gateway_home, 3)
    verdict = audit.verify(gateway_home.store, pub)
    assert verdict.ok and verdict.entries == 5 and verdict.versions == {1: 2, 2: 3}
    out = io.StringIO()
    audit_query.export(gateway_home.store, out)
    first, last = (json.loads(line) for line in out.getvalue().splitlines()[::4])
    assert first["v"] == 1 and first["detail"] == {"text": "free text"} and first["at_ms"] == 900500
    assert last["v"] == 2 and last["detail"] == {"text": "fields 2"}
    gateway_home.store.run("UPDATE audit SET detail = 'other text' WHERE seq = 2")
    assert audit.verify(gateway_home.store, pub).first_bad == 2


def test_structured_detail_is_hashed_canonically(gateway_home):
    log = gateway_home.audit
    with gateway_home.store.transaction() as tx:
        log.append(tx, 1000.25, "gateway", "HH-1", "route", "", "ok",
                   {"routes": ["R-07"], "n": 2, "b": b"\x01"})
    (detail, at_ms, at) = gateway_home.store.one("SELECT detail, at_ms, at FROM audit")
    assert json.loads(detail) == {"b": "01", "n": 2, "routes": ["R-07"]}
    assert at_ms == 1000250 and at == 1000.25
    pub = gateway_home.keys.public_key()
    assert audit.verify(gateway_home.store, pub).ok
    # The same object written with other key order or spacing is the same entry.
    gateway_home.store.run("UPDATE audit SET detail = ?", '{ "routes": ["R-07"], "b": "01", "n": 2 }')
    assert audit.verify(gateway_home.store, pub).ok
    gateway_home.store.run("UPDATE audit SET detail = ?", '{"routes": ["R-07"], "b": "01", "n": 3}')
    assert audit.verify(gateway_home.store, pub).first_bad == 1
    gateway_home.store.run("UPDATE audit SET detail = ?, at = 1000.26",
                           '{"routes": ["R-07"], "b": "01", "n": 2}')
    assert audit.verify(gateway_home.store, pub).first_bad == 1


def test_people_appear_only_as_hmacs_and_export_is_json_lines(gateway_home):
    _fill(gateway_home, 3)
    out = io.StringIO()
    assert audit_query.export(gateway_home.store, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert "C-112" not in out.getvalue()
    assert lines[0]["actor"].startswith("courier:")
