"""Label possession proofs (protocol/labels.py has the format). The gateway
issues one for every label it prints and checks it when a handheld scans:
only a scan whose proof checks out puts the parcel "in hand" for a reveal or
a pre-issue. A reprint issues the next label number; the old label's proof
is void from then on, and so are the scans made with it. Proofs are made and
checked through `keys.label_mac`, so the label key never has to leave its
key provider, and they are never logged or sent anywhere but to a printer."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from gateway.audit import AuditLog
from gateway.store import Handle
from protocol import cose, labels
from protocol.errors import PolicyDenied, ProtocolError


class LabelKeys(Protocol):
    label_kid: bytes

    def label_mac(self, kid: bytes, data: bytes) -> bytes | None: ...


class LabelRefused(PolicyDenied, ValueError):
    """A label cannot be issued, or a scanned label is not a valid proof; the text says why."""


@dataclass(frozen=True)
class Proven:
    tracking_no: str
    label_no: int


def issue(tx: Handle, keys: LabelKeys, audit: AuditLog, tracking_no: str, now: float, actor: str,
          reprint_reason: str | None = None) -> str:
    """The QR text for a new label of the parcel. The first label needs no
    reason; every later one is a reprint and does (audited)."""
    row = tx.one("SELECT label_no, state FROM parcels WHERE tracking_no = ?", tracking_no)
    if row is None:
        raise LabelRefused("parcel %s is not in the gateway's manifests" % tracking_no)
    current, state = int(row[0]), str(row[1])
    if state != "out_for_delivery":
        raise LabelRefused("parcel %s is %s: it gets no new label" % (tracking_no, state.replace("_", " ")))
    if current and reprint_reason is None:
        raise LabelRefused("parcel %s already has label #%d: a second label is a reprint with a reason"
                           " (veilpost reprint %s --reason ...)" % (tracking_no, current, tracking_no))
    if reprint_reason is not None and not reprint_reason.strip():
        raise LabelRefused("a reprint needs a reason")
    number, issued = current + 1, int(now)
    tag = keys.label_mac(keys.label_kid, labels.mac_input(tracking_no, number, issued))
    if tag is None:
        raise LabelRefused("the label key is not available")
    tx.run("UPDATE parcels SET label_no = ?, label_issued = ? WHERE tracking_no = ?", number, issued,
           tracking_no)
    # Scans made with the old label no longer prove anything.
    tx.run("DELETE FROM scans WHERE tracking_no = ? AND label_no <> ?", tracking_no, number)
    detail: dict[str, object] = {"label": number}
    if reprint_reason is not None:
        detail["reason"] = reprint_reason.strip()
    audit.append(tx, now, actor, "", "label-issue" if number == 1 else "label-reprint", tracking_no, "ok",
                 detail)
    raw = labels.assemble(keys.label_kid, tracking_no, number, issued, tag[:cose.MAC_SIZE])
    return labels.to_text(raw)


def specimen(tracking_no: str) -> str:
    """A QR for previews: the right shape, but label number 0 with an empty
    tag, which no check accepts."""
    return labels.to_text(labels.assemble(b"specimen", tracking_no, 0, 0, bytes(cose.MAC_SIZE)))


def check(tx: Handle, keys: LabelKeys, raw: bytes, tracking_no: str) -> Proven:
    """The parcel and label a scanned QR proves; LabelRefused says why not."""
    try:
        tn, number, issued, kid, tag, covered = labels.parse(raw)
    except ProtocolError as e:
        raise LabelRefused("not a label of this gateway (%s)" % e.message) from None
    if tn != tracking_no:
        raise LabelRefused("the label is for parcel %s, not %s" % (tn, tracking_no))
    mac = keys.label_mac(kid, covered)
    if mac is None or not hmac.compare_digest(mac[:cose.MAC_SIZE], tag):
        raise LabelRefused("the label of parcel %s does not check out: forged or not from this gateway"
                           % tracking_no)
    row = tx.one("SELECT label_no, label_issued FROM parcels WHERE tracking_no = ?", tracking_no)
    if row is None:
        raise LabelRefused("parcel %s is not in the gateway's manifests" % tracking_no)
    if (number, issued) != (int(row[0]), int(row[1])):
        raise LabelRefused("label #%d of parcel %s was replaced by label #%d: scan the new label"
                           % (number, tracking_no, int(row[0])))
    return Proven(tracking_no, number)
