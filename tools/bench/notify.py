"""Notices per second (docs/incidents.md): an incident listing N fake
people (one parcel each, every third person with an e-mail), notified
through the real adapters against the test servers on 127.0.0.1: an
aiosmtpd SMTP server and an http.server SMS endpoint. `open_ms` is how long
opening the incident took (listing and sealing every person's contact, in
the transaction that suspends the account). Every notice opens
the person's sealed contact, renders the template, sends it, and commits
its state and audit entry, as `veilpost incidents notify` does.

Run: python3 -m tools.bench.notify [--people N]
`run()` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def _incident(home: Any, people: int) -> tuple[str, float]:
    from gateway import incidents, registry
    from gateway.vault import RECEIVER_ADDRESS, RECEIVER_EMAIL, RECEIVER_NAME, RECEIVER_PHONE

    now = time.time()
    registry.add_courier(home.store, "C-1", "1234", "D-1", "00:00-24:00")
    with home.store.transaction() as tx:
        tx.run("INSERT INTO routes (route_id, courier_id, sort_code, state, imported) VALUES"
               " ('R-1', 'C-1', 'R1', 'active', 0)")
        for n in range(people):
            tn = "VP%010d" % n
            tx.run("INSERT INTO parcels (tracking_no, route_id, sort_code, state, window_start, window_end,"
                   " masked_receiver_name, masked_receiver_phone, masked_receiver_address,"
                   " masked_sender_name, masked_sender_phone, masked_sender_address)"
                   " VALUES (?, 'R-1', 'R1', 'out_for_delivery', 0, 4e9, '*', '*', '*', '*', '*', '*')", tn)
            values = {RECEIVER_NAME: "測試%d" % n, RECEIVER_PHONE: "1700%07d" % n,
                      RECEIVER_ADDRESS: "測試市樣例路%d號" % n}
            if n % 3 == 0:
                values[RECEIVER_EMAIL] = "person%d@example.invalid" % n
            home.vault.put(tx, tn, values)
            tx.run("INSERT INTO releases (account, shift_start, tracking_no, field, device_id, depot, path,"
                   " at, audit_seq, shown_at) VALUES ('C-1', 0, ?, 2, 'HH-1', 'D-1', 'online', ?, 0, ?)",
                   tn, now - 60, now - 60)
    with home.store.transaction() as tx:
        started = time.perf_counter()
        incident_id, _ = incidents.open_incident(tx, home.vault, home.audit, home.config.sentinel, "sentinel",
                                                 "bench", now, "C-1", "HH-1", {"C-1": {"HH-1"}}, ["HH-1"])
        opened = time.perf_counter() - started
    incidents.assign(home.store, home.audit, incident_id, "officer:bench", "Officer Bench", now)
    return incident_id, opened


def run(people: int = 300) -> dict[str, Any]:
    from gateway import notify
    from gateway.home import init
    from gateway.notifiers import SmsNotifier, SmtpNotifier
    from tools.testbed.notify import SmsSink, SmtpSink

    smtp, sms = SmtpSink(), SmsSink()
    try:
        with tempfile.TemporaryDirectory() as folder:
            home = init(Path(folder) / "vp")
            try:
                incident_id, opened = _incident(home, people)
                cfg = home.config.notify
                cfg.smtp_host, cfg.smtp_port, cfg.smtp_starttls = smtp.host, smtp.port, "off"
                cfg.sms_url = sms.url
                channels = {"email": SmtpNotifier(cfg), "sms": SmsNotifier(cfg)}
                started = time.perf_counter()
                result = notify.notify(home.store, home.keys.kek, home.audit, home.config, home.zone,
                                       incident_id,
                                       "officer:bench", channels)  # type: ignore[arg-type]
                took = time.perf_counter() - started
            finally:
                home.close()
    finally:
        smtp.close()
        sms.close()
    assert result.sent == people and len(smtp.messages) + len(sms.received) == people
    return {"people": people, "seconds": round(took, 3), "notices_per_second": round(people / took, 1),
            "email": len(smtp.messages), "sms": len(sms.received), "store": "sqlite",
            "open_ms": round(opened * 1000, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=300, help="people in the incident (default 300)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.people)))


if __name__ == "__main__":
    main()
