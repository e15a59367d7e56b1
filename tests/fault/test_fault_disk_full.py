"""The disk under the audit log fills up. The gateway runs as its own
process with a file size limit just above its database (RLIMIT_FSIZE, with
SIGXFSZ ignored, so a write past it fails with EFBIG the way a full disk
fails with ENOSPC). Once the audit log cannot grow the gateway fails
closed: every reveal is denied with "audit log unavailable", no grant
leaves without its audit entry, the process stays up, and once space is
back it grants again without a restart."""

from __future__ import annotations

import time
from typing import Any

from gateway import audit
from gateway.home import Home
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
    verdict = audit.verify(home.store, home.keys.signing_key.public_key())
    assert verdict.ok, verdict.problem
