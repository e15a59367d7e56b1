"""The disk under the audit log fills up. The gateway runs as its own
process, first on a small file system the test mounts (tmpfs) and fills,
then with a file size limit just above its database (RLIMIT_FSIZE, with
SIGXFSZ ignored, so a write past it fails with EFBIG the way a full disk
fails with ENOSPC). Once the audit log cannot grow the gateway fails
closed: every request is still answered (a reveal with "audit log
unavailable", a login and a batch with "unavailable"), without a write
being needed to send the answer; no grant leaves without its ledger row
and audit entry; the process stays up; once space is back it grants again
without a restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from gateway import audit
from gateway.home import Home, init
from protocol import messages
from protocol.errors import UNAVAILABLE
from tests.conftest import require
from tests.fault.gateway_process import GatewayProcess, configure
from tests.fixtures.gateway import Depot, Handheld

HEADROOM = 160 * 1024  # bytes the database files may still grow: a handful of commits


def test_full_disk_under_the_audit_log_fails_closed_and_recovers(gateway_home: Home,
                                                                  mosquitto_broker: Any) -> None:
    home = gateway_home
    depot = Depot(home, time.time())
    configure(home.config.home, mosquitto_broker, "gw-disk", shared=False)
    t = depot.route[0]
    depot.scan(t, at=time.time() + 3600)  # fresh for the whole test
    home.store.checkpoint()  # the WAL starts empty: only the gateway's writes grow it
    db = home.config.database_path
    limit = max(p.stat().st_size for p in db.parent.glob(db.name + "*")) + HEADROOM
    gateway = GatewayProcess(home.config.home, mosquitto_broker, "gw-disk", file_limit=limit)
    hh = None
    try:
        gateway.start()
        hh = Handheld(mosquitto_broker, "HH-1", depot.secret, credentials=mosquitto_broker.add_device("HH-1"))
        hh.session = bytes.fromhex(depot.session)
        grants: list[dict[str, Any]] = []
        refused = 0
        silent = 0
        for i in range(400):
            hh.send("reveal_request", {"req": i + 1, "tracking_no": t, "fields": [2], "reason": 1,
                                       "session": hh.session})
            reply = hh.recv(timeout=3)
            if reply is None:  # no reply at all is fail-closed too, but counted: the device times out
                silent += 1
            elif reply[0] == "reveal_grant":
                grants.append(reply[1])
            else:
                assert "audit log unavailable" in reply[1]["reason"], reply
                refused += 1
            if refused + silent >= 5:
                break
        assert grants and refused >= 1, (len(grants), refused, silent)
        assert gateway.alive(), gateway.log_tail()
        # Space is back: the same process grants again.
        gateway.lift_file_limit()
        name, fields = hh.reveal(t, [2], req=1000)
        assert name == "reveal_grant", (fields, gateway.log_tail())
        grants.append(fields)
    finally:
        if hh is not None:
            hh.close()
        gateway.stop()
    # No grant without its audit entry; no granted entry without its token.
    for g in grants:
        row = home.store.one("SELECT a.outcome, a.parcel FROM tokens k JOIN audit a ON a.seq = k.audit_seq"
                             " WHERE k.cti = ?", g["cti"])
        assert row == ("granted", t), g
    granted = home.store.one("SELECT COUNT(*) FROM audit WHERE action = 'reveal' AND outcome = 'granted'")
    assert granted is not None and granted[0] == len(grants)
    verdict = audit.verify(home.store, home.keys.public_key())
    assert verdict.ok, verdict.problem


def _mount_small_disk(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", str(where)],
                          capture_output=True, text=True)
    return done.returncode == 0


def _fill(where: Path, leave: int) -> Path:
    """Fill the file system but for `leave` bytes."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    filler = where / "filler"
    with open(filler, "wb") as f:
        left = max(free - leave, 0)
        block = b"\0" * (1 << 20)
        while left > 0:
            f.write(block[:min(left, len(block))])
            left -= min(left, len(block))
    return filler


def test_a_really_full_disk_still_answers_every_request_and_grants_nothing_unrecorded(
        tmp_path: Path, mosquitto_broker: Any) -> None:
    disk = tmp_path / "disk"
    require(_mount_small_disk(disk, "24m"), "mounting a small tmpfs (needs root)")
    try:
        home = init(disk / "vp")
        depot = Depot(home, time.time())
        configure(home.config.home, mosquitto_broker, "gw-full", shared=False)
        t = depot.route[0]
        depot.scan(t, at=time.time() + 3600)
        home.store.checkpoint()
        gateway = GatewayProcess(home.config.home, mosquitto_broker, "gw-full")
        hh = None
        filler = None
        try:
            gateway.start()
            hh = Handheld(mosquitto_broker, "HH-1", depot.secret,
                          credentials=mosquitto_broker.add_device("HH-1"))
            hh.session = bytes.fromhex(depot.session)
            assert hh.reveal(t, [2], req=1)[0] == "reveal_grant"  # fine while there is room
            filler = _fill(disk, 48 * 1024)
            grants: list[dict[str, Any]] = []
            unavailable = silent = 0
            for i in range(300):
                hh.send("reveal_request", {"req": i + 2, "tracking_no": t, "fields": [2], "reason": 1,
                                           "session": hh.session})
                reply = hh.recv(timeout=3)
                if reply is None:
                    silent += 1
                elif reply[0] == "reveal_grant":
                    grants.append(reply[1])
                else:
                    assert reply[1]["code"] == messages.DENY_UNAVAILABLE, reply
                    assert "audit log unavailable" in reply[1]["reason"]
                    unavailable += 1
            assert silent == 0, "%d requests got no answer on a full disk" % silent
            assert unavailable >= 250, (len(grants), unavailable)
            # Other requests are answered too, and nothing is recorded.
            name, login = hh.ask("login", {"badge": "C-112", "pin_proof": b"4321"})
            assert name == "login_result" and not login["ok"] and login["code"] == messages.DENY_UNAVAILABLE
            item = messages.encode("delivered", {"tracking_no": t, "session": hh.session, "proof": b"482913",
                                                 "kind": 3}, int(time.time()))
            name, err = hh.ask("batch", {"items": [item], "ids": [1]})
            assert name == "error" and err["code"] == UNAVAILABLE  # no batch_ack: the handheld keeps it
            assert gateway.alive(), gateway.log_tail()
            filler.unlink()  # the operator frees space
            filler = None
            name, fields = hh.reveal(t, [2], req=1000)
            assert name == "reveal_grant", (fields, gateway.log_tail())
            grants.append(fields)
            hh.send("batch", {"items": [item], "ids": [1]})
            answers = [hh.recv(timeout=5), hh.recv(timeout=5)]  # the seal, then the batch_ack
            assert {a[0] for a in answers if a} == {"seal", "batch_ack"}, answers
            ack = next(a[1] for a in answers if a and a[0] == "batch_ack")
            assert ack["outcomes"] == [messages.BATCH_OK]
        finally:
            if hh is not None:
                hh.close()
            if filler is not None:
                filler.unlink()
            gateway.stop()
        print("full disk: %d unavailable, %d granted while full, 0 silent" % (unavailable, len(grants) - 1))
        for g in grants:  # every grant that left has its ledger row and audit entry
            row = home.store.one("SELECT a.outcome, a.parcel FROM tokens k JOIN audit a"
                                 " ON a.seq = k.audit_seq WHERE k.cti = ?", g["cti"])
            assert row == ("granted", t), g
        assert home.store.one("SELECT COUNT(*) FROM releases WHERE tracking_no = ?", t)[0] == 1
        granted = home.store.one("SELECT COUNT(*) FROM audit WHERE action = 'reveal' AND outcome = 'granted'")
        assert granted[0] == len(grants) + 1
        verdict = audit.verify(home.store, home.keys.public_key())
        assert verdict.ok, verdict.problem
        home.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
        shutil.rmtree(disk, ignore_errors=True)
