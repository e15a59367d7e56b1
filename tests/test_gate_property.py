"""The gate as a property: for any sequence of requests from one account
(label scans, forged and bare scans, online and damaged-label reveals,
pre-issues, reprints, complaint cases, deliveries, time passing), through
the gateway's real per-message handler, the distinct parcels released
never exceed what the configuration allows, and every release has exactly
one ledger row and one granted audit entry, committed before the grant
was sealed for the handheld."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import registry, retention
from gateway.gate import ROUTE_SLACK
from gateway.home import init
from gateway.labels import LabelRefused
from gateway.store import SqliteStore
from protocol import cose, labels
from tests.fixtures.gateway import Depot, Wire

T0 = 1_900_000_000.0
PARCELS = 6

action = st.one_of(
    st.tuples(st.just("scan"), st.integers(0, PARCELS - 1)),
    st.tuples(st.just("bare-scan"), st.integers(0, PARCELS - 1)),
    st.tuples(st.just("forged-scan"), st.integers(0, PARCELS - 1)),
    st.tuples(st.just("reveal"), st.integers(0, PARCELS + 2), st.sets(st.integers(1, 3), min_size=1),
              st.sampled_from([1, 3, 6])),
    st.tuples(st.just("preissue"), st.one_of(st.none(), st.lists(st.integers(0, PARCELS + 2), max_size=4))),
    st.tuples(st.just("reprint"), st.integers(0, PARCELS - 1)),
    st.tuples(st.just("case"), st.integers(0, PARCELS - 1)),
    st.tuples(st.just("deliver"), st.integers(0, PARCELS - 1)),
    st.tuples(st.just("wait"), st.sampled_from([1, 20, 61, 300, 700])),
)


class World:
    def __init__(self, folder: Path) -> None:
        self.home = init(folder / "vp")
        self.now = T0
        self.depot = Depot(self.home, T0)
        cfg = self.home.config
        cfg.sentinel.strikes = 1000  # keep the account alive so long sequences reach every path
        self.wire = Wire(self.home, "HH-1", self.depot.secret, clock=lambda: self.now)
        self.wire.session = bytes.fromhex(self.depot.session)
        self.parcels = self.depot.route[:PARCELS]
        self.held: dict[str, bytes] = {t: self.depot.label(t, at=T0) for t in self.parcels[:4]}
        self.proven: set[str] = set()  # parcels whose label this account ever scanned with a valid proof
        self.cases: set[str] = set()
        self.reader = SqliteStore(self.home.config.database_path)
        registry.add_officer(self.home.store, "Officer A", "111111")
        registry.add_officer(self.home.store, "Officer B", "222222")
        self.grants: list[tuple[str, list[int], bytes]] = []

    def tn(self, i: int) -> str:
        return self.parcels[i] if i < len(self.parcels) else self.depot.other[i - len(self.parcels)]

    def send(self, name: str, fields: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        fields = dict(fields, session=self.wire.session) if name != "batch" else fields
        replies = self.wire.send(name, fields, self.now)
        for reply_name, f in replies:
            if reply_name == "reveal_grant":
                self.grants.append((f["tracking_no"], f["fields"], f["cti"]))
                self.check_committed(f["tracking_no"], f["fields"], f["cti"])
            elif reply_name == "preissue":
                for tok in f["tokens"]:
                    self.grants.append((tok["tracking_no"], tok["fields"], tok["cti"]))
                    self.check_committed(tok["tracking_no"], tok["fields"], tok["cti"])
        return replies

    def check_committed(self, tracking_no: str, fields: list[int], cti: bytes) -> None:
        """Read through another connection: only what was committed is there."""
        token = self.reader.one("SELECT audit_seq, courier_id FROM tokens WHERE cti = ?", cti)
        assert token is not None, "a grant without its token record"
        entry = self.reader.one("SELECT outcome, parcel FROM audit WHERE seq = ?", token[0])
        assert entry == ("granted", tracking_no), entry
        held = {r[0] for r in self.reader.all("SELECT field FROM releases WHERE account = 'C-112'"
                                              " AND tracking_no = ?", tracking_no)}
        assert set(fields) <= held, "a field sent without its ledger row"

    def step(self, a: tuple[Any, ...]) -> None:
        kind = a[0]
        if kind == "scan" and self.tn(a[1]) in self.held:
            t = self.tn(a[1])
            self.send("scan", {"tracking_no": t, "label": self.held[t]})
            if self.current_label(t) == self.held[t]:
                self.proven.add(t)
        elif kind == "bare-scan":
            self.send("scan", {"tracking_no": self.tn(a[1])})
        elif kind == "forged-scan":
            t = self.tn(a[1])
            self.send("scan", {"tracking_no": t, "label": labels.assemble(b"L1", t, 1, int(T0),
                                                                          bytes(cose.MAC_SIZE))})
        elif kind == "reveal":
            self.send("reveal_request", {"req": 1, "tracking_no": self.tn(a[1]), "fields": sorted(a[2]),
                                         "reason": a[3]})
        elif kind == "preissue":
            f: dict[str, Any] = {"fields": [2]}
            if a[1] is not None:
                f["tracking_nos"] = [self.tn(i) for i in a[1]]
            self.send("preissue_request", f)
        elif kind == "reprint":
            t = self.tn(a[1])
            try:
                # The courier gets the new label.
                self.held[t] = self.depot.label(t, reprint="torn", at=self.now)
            except LabelRefused:
                pass  # a delivered parcel gets no new label
        elif kind == "case" and self.tn(a[1]) not in self.cases:
            t = self.tn(a[1])
            self.cases.add(t)
            case_id = "CASE-%d" % len(self.cases)
            h = self.home
            retention.open_case(h.store, h.audit, case_id, t, "complaint", "Desk", self.now,
                                for_account="C-112", fields=(2,))
            for officer, pin in (("Officer A", "111111"), ("Officer B", "222222")):
                retention.approve_case(h.store, h.audit, h.config, case_id, officer, pin, self.now)
        elif kind == "deliver":
            self.send("delivered", {"tracking_no": self.tn(a[1]), "proof": b"482913", "kind": 3})
        elif kind == "wait":
            self.now += a[1]

    def current_label(self, t: str) -> bytes:
        row = self.home.store.one("SELECT label_no FROM parcels WHERE tracking_no = ?", t)
        return self.held[t] if labels.read(self.held[t])[1] == row[0] else b""

    def check(self) -> None:
        store, cfg = self.home.store, self.home.config
        rows = store.all("SELECT tracking_no, field, path, audit_seq, at FROM releases"
                         " WHERE account = 'C-112'")
        released = {r[0] for r in rows}
        damaged = {r[0] for r in rows if r[2] == "damaged"}
        offline = {r[0] for r in rows if r[2] == "offline"}
        assert released <= self.proven | damaged | self.cases, (released, self.proven)
        assert len(damaged) <= cfg.reveal.damaged_per_shift
        assert len(offline) <= cfg.reveal.offline_per_shift
        assert len(rows) <= cfg.sentinel.per_shift
        assert len(released) <= int(len(self.depot.route) * cfg.sentinel.route_share) + ROUTE_SLACK
        assert released <= set(self.depot.route)  # never another route's parcel
        for tn, _field, _path, seq, at in rows:
            entry = store.one("SELECT outcome, parcel, at FROM audit WHERE seq = ?", seq)
            assert entry is not None and entry[0] == "granted" and entry[1] == tn and entry[2] == at
        times = sorted({(r[4], r[3]) for r in rows if r[2] != "offline"})
        for i, (at, _seq) in enumerate(times):  # new releases in any minute, interactive paths
            assert sum(1 for t2, _ in times[i:] if t2 < at + 60) <= cfg.sentinel.per_minute
        for tn, fields, _cti in self.grants:  # each grant's fields are in the ledger, once
            for fid in fields:
                n = store.one("SELECT COUNT(*) FROM releases WHERE account = 'C-112' AND tracking_no = ?"
                              " AND field = ?", tn, fid)[0]
                assert n >= 1

    def close(self) -> None:
        self.reader.close()
        self.home.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=1, max_size=30))
def test_any_sequence_of_requests_releases_no_more_than_the_configuration_allows(steps: list[Any]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vp-gate-"))
    world = World(folder)
    try:
        for a in steps:
            world.step(a)
            world.check()
    finally:
        world.close()
        shutil.rmtree(folder, ignore_errors=True)
