"""The witness outside the database: checkpoints POSTed to a real local
HTTP witness (and, in test_audit_witness_broker.py, heard on a real broker)
are kept in the witness's own file, and `verify` against them fails, naming
the first missing or altered checkpoint, after each attack an insider with
the gateway's disk can make: truncation, emptying, reordering, rewriting,
and rewriting re-signed with the disk's own signing key."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from gateway import audit
from gateway.checkpoint_out import CheckpointOut, post
from gateway.witness import CheckpointRefused, Witness, WitnessLog, load_witnessed
from tests.test_audit import rewrite


def _entries(home, start, n, device="HH-1"):
    log = home.audit
    with home.store.transaction() as tx:
        for i in range(start, start + n):
            log.append(tx, 1000.0 + i, log.person("courier", "C-112"), device if i % 3 else "HH-2", "reveal",
                       "VP%010d" % i, "granted", {"fields": [2]})


@pytest.fixture
def witnessed(gateway_home, tmp_path):
    """A log of 12 entries whose checkpoints at 4, 8 and 12 a live HTTP witness holds."""
    home = gateway_home
    home.audit.checkpoint_every = 1000  # only the checkpoints the gateway sends
    witness = Witness(WitnessLog(tmp_path / "witness", home.keys.public_key()), listen=("127.0.0.1", 0))
    witness.start()
    out = CheckpointOut(["http://127.0.0.1:%d/checkpoint" % witness.port])
    for step in range(3):
        _entries(home, step * 4 + 1, 4)
        with home.store.transaction() as tx:
            cp = home.audit.checkpoint(tx, 2000.0 + step)
        out.send(cp, None, wait=True)
    yield home, witness
    witness.stop()


def _verify(home, witness):
    return audit.verify(home.store, home.keys.public_key(), load_witnessed(str(witness.log.folder)))


def test_an_intact_log_matches_every_witnessed_checkpoint(witnessed):
    home, witness = witnessed
    assert sorted(witness.log.held) == [4, 8, 12]
    verdict = _verify(home, witness)
    assert verdict.ok and verdict.witnessed == 3 and verdict.entries == 12
    url = "http://127.0.0.1:%d" % witness.port
    assert [c.seq for c in load_witnessed(url)] == [4, 8, 12]


def test_truncating_the_newest_entries_names_the_missing_checkpoint(witnessed):
    home, witness = witnessed
    with home.store.transaction() as tx:  # entries and the checkpoints above them, as in the issue
        tx.run("DELETE FROM audit WHERE seq > 6")
        tx.run("DELETE FROM checkpoints WHERE seq > 6")
    assert audit.verify(home.store, home.keys.public_key()).ok  # the database alone cannot tell
    verdict = _verify(home, witness)
    assert not verdict.ok and verdict.bad_checkpoint == 8
    assert "witnessed checkpoint at entry 8" in verdict.problem and "missing" in verdict.problem
    assert "ends at entry 6" in verdict.problem


def test_emptying_the_log_names_the_first_checkpoint(witnessed):
    home, witness = witnessed
    with home.store.transaction() as tx:
        tx.run("DELETE FROM audit")
        tx.run("DELETE FROM checkpoints")
    own = audit.verify(home.store, home.keys.public_key())
    assert own.ok and own.entries == 0  # "0 entries, intact" without a witness
    verdict = _verify(home, witness)
    assert not verdict.ok and verdict.bad_checkpoint == 4 and "missing" in verdict.problem


def test_reordering_entries_names_the_altered_checkpoint(witnessed):
    home, witness = witnessed
    rewrite(home, change=lambda r: r, resign=True)  # a faithful rewrite changes nothing
    assert _verify(home, witness).ok
    rows = {r[0]: r for r in (list(x) for x in home.store.all(
        "SELECT seq, at_ms, actor, device, action, parcel, outcome, detail FROM audit"))}
    # Swap entries 6 and 7 and re-chain and re-sign: consistent in the database.
    rewrite(home, change=lambda r: [r[0]] + rows[{6: 7, 7: 6}.get(r[0], r[0])][1:], resign=True)
    assert audit.verify(home.store, home.keys.public_key()).ok
    verdict = _verify(home, witness)
    assert not verdict.ok and verdict.bad_checkpoint == 8 and "altered" in verdict.problem


def test_reordering_without_rechaining_names_the_entry_and_the_checkpoint(witnessed):
    home, witness = witnessed
    with home.store.transaction() as tx:
        tx.run("UPDATE audit SET seq = -1 WHERE seq = 5")
        tx.run("UPDATE audit SET seq = 5 WHERE seq = 6")
        tx.run("UPDATE audit SET seq = 6 WHERE seq = -1")
    verdict = _verify(home, witness)
    assert not verdict.ok and verdict.first_bad == 5 and verdict.bad_checkpoint == 8
    assert "intact only up to entry 4" in verdict.problem


def test_rewriting_without_one_device_and_re_signing_with_the_disk_key_still_fails(witnessed):
    home, witness = witnessed
    rewrite(home, keep=lambda r: r[3] != "HH-2", resign=True)
    own = audit.verify(home.store, home.keys.public_key())
    assert own.ok and own.entries == 8 and own.checkpoints == 2  # the disk's key re-signed it all
    verdict = _verify(home, witness)
    assert not verdict.ok and verdict.bad_checkpoint == 4 and "altered" in verdict.problem


def test_the_witness_refuses_forgeries_backward_steps_and_forks(witnessed, tmp_path):
    home, witness = witnessed
    log = witness.log
    newest = log.newest
    assert newest is not None and newest.seq == 12
    forged = audit.Checkpoint(13, b"\1" * 32, newest.at_ms + 1, b"\2" * 64)
    with pytest.raises(CheckpointRefused, match="not signed"):
        log.accept(forged)

    def signed(seq, head, at_ms):
        return audit.Checkpoint(seq, head, at_ms, home.keys.sign(audit.checkpoint_message(seq, head, at_ms)))

    with pytest.raises(CheckpointRefused, match="forks"):
        log.accept(signed(12, b"\3" * 32, newest.at_ms))
    with pytest.raises(CheckpointRefused, match="backwards"):
        log.accept(signed(10, b"\3" * 32, newest.at_ms))
    with pytest.raises(CheckpointRefused, match="dated more than 300 s before"):
        log.accept(signed(13, b"\3" * 32, newest.at_ms - 301_000))
    assert log.accept(newest) is False  # the retained copy heard again: already held
    # Over HTTP: a refusal is 409, garbage 409 with the reason, oversize 413.
    url = "http://127.0.0.1:%d/checkpoint" % witness.port
    assert post(url, signed(12, b"\3" * 32, newest.at_ms)) is False
    for body, code in ((b"\xa1garbage", 409), (b"x" * 600, 413)):
        request = urllib.request.Request(url, data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=5)
        assert e.value.code == code
    assert sorted(log.held) == [4, 8, 12]
    lines = (log.folder / "checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [4, 8, 12]


def test_the_witness_file_is_reread_and_a_torn_last_line_is_dropped(witnessed):
    home, witness = witnessed
    path: Path = witness.log.path
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with path.open("a") as f:
        f.write('{"seq": 16, "head": "ab')  # a crash while writing
    again = WitnessLog(path.parent, home.keys.public_key())
    assert sorted(again.held) == [4, 8, 12]
    path.write_text(path.read_text().replace('"seq": 8', '"seq": 9'))
    with pytest.raises(Exception, match="did not sign"):
        WitnessLog(path.parent, home.keys.public_key())


def test_a_witness_with_another_gateways_key_is_named(witnessed, tmp_path):
    from gateway.home import init

    home, witness = witnessed
    other = init(tmp_path / "other")
    try:
        verdict = audit.verify(other.store, other.keys.public_key(), load_witnessed(str(witness.log.path)))
    finally:
        other.close()
    assert not verdict.ok and "bad signature" in verdict.problem


def test_checkpoints_go_only_once_and_an_unreachable_witness_is_logged(gateway_home, caplog):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    _entries(gateway_home, 1, 2)
    with gateway_home.store.transaction() as tx:
        cp = gateway_home.audit.checkpoint(tx, 3000.0)
    with gateway_home.store.transaction() as tx:
        assert gateway_home.audit.checkpoint(tx, 3001.0) == cp  # the head did not move: the same one
    out = CheckpointOut(["http://127.0.0.1:%d/checkpoint" % dead])
    with caplog.at_level("INFO", logger="veilpost"):
        assert len(out.send(cp, None, wait=True)) == 1
        assert out.send(cp, None, wait=True) == []
    assert "witness-unreachable" in caplog.text


def test_verify_cli_names_the_checkpoint_and_reads_a_witness_by_address(witnessed):
    from click.testing import CliRunner

    from tools.cli import main

    home, witness = witnessed

    def cli(*args):
        result = CliRunner().invoke(main, ["--home", str(home.config.home), *args])
        return result.exit_code, result.output

    post_url = "http://127.0.0.1:%d/checkpoint" % witness.port  # the address the gateway POSTs to will do
    code, out = cli("audit", "verify", "--witness", post_url)
    assert code == 0 and "3 witnessed checkpoints matched" in out, out
    with home.store.transaction() as tx:
        tx.run("DELETE FROM audit WHERE seq > 10")
        tx.run("DELETE FROM checkpoints WHERE seq > 10")
    code, out = cli("audit", "verify", "--witness", post_url)
    assert code == 1 and "BROKEN at entry 11" in out and "witnessed checkpoint at entry 12" in out, out
    code, out = cli("--json", "audit", "verify", "--witness", str(witness.log.folder))
    report = json.loads(out.splitlines()[-1])
    assert code == 1 and report["first_bad_checkpoint"] == 12 and report["witnessed"] == 3
    empty = witness.log.folder.parent / "empty-witness"
    empty.mkdir()
    (empty / "checkpoints.jsonl").write_text("")
    code, out = cli("audit", "verify", "--witness", str(empty))
    assert code == 0 and "holds no checkpoints yet" in out


def test_witness_cli_refuses_a_bad_key_with_one_line(tmp_path):
    from click.testing import CliRunner

    from tools.cli import main

    for key, said in (("abcd", "64 hex digits"), ("@" + str(tmp_path / "missing.pub"), "cannot be read")):
        result = CliRunner().invoke(main, ["audit", "witness", "--store", str(tmp_path / "w"), "--key", key,
                                           "--listen", "127.0.0.1:0", "--for", "0.1"])
        assert result.exit_code == 3 and said in result.output, result.output
    result = CliRunner().invoke(main, ["audit", "witness", "--store", str(tmp_path / "w"), "--key", "0" * 64])
    assert result.exit_code != 0 and "--listen" in result.output
