import io
import json

from gateway import audit


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


def test_rewritten_chain_fails_checkpoint_signature_check(gateway_home):
    pub = _fill(gateway_home)
    # An insider recomputes every hash after editing entry 2: the chain is
    # consistent again, but the signed checkpoints no longer match.
    rows = gateway_home.store.all("SELECT seq, at, actor, device, action, parcel, outcome, detail"
                                  " FROM audit ORDER BY seq")
    prev = audit.GENESIS
    with gateway_home.store.transaction() as tx:
        for seq, at, actor, device, action, parcel, outcome, detail in rows:
            if seq == 2:
                outcome = "denied"
            digest = audit.entry_hash(prev, seq, at, actor, device, action, parcel, outcome, detail)
            tx.run("UPDATE audit SET outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   outcome, prev, digest, seq)
            prev = digest
    verdict = audit.verify(gateway_home.store, pub)
    assert not verdict.ok and verdict.first_bad == 4 and "checkpoint" in verdict.problem


def test_people_appear_only_as_hmacs_and_export_is_json_lines(gateway_home):
    _fill(gateway_home, 3)
    out = io.StringIO()
    assert audit.export(gateway_home.store, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert "C-112" not in out.getvalue()
    assert lines[0]["actor"].startswith("courier:")
