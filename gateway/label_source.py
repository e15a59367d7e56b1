"""Masked parcel views from the gateway store, for the printing commands and
the print desk: the gateway's side of printer_drivers.source.ParcelSource.

Reads only the masked columns of `parcels` (never the vault). The label's
QR is the gateway's per-label possession proof (gateway/labels.py): a
printed label gets a new one from `issue_labels`, in one transaction for
the whole batch; `masked_view` (previews) carries a specimen QR that no
scan accepts.
"""

from __future__ import annotations

import time
from typing import Any

from gateway import labels
from gateway.home import Home
from gateway.labels import LabelRefused
from gateway.store import Handle
from printer_drivers.source import ParcelNotFound

COLUMNS = (
    "route_id, sort_code, state, masked_receiver_name, masked_receiver_phone, masked_receiver_address,"
    " masked_sender_name, masked_sender_phone, masked_sender_address"
)


def view(tx: Handle, tracking_no: str, qr_payload: str) -> dict[str, Any]:
    row = tx.one("SELECT %s FROM parcels WHERE tracking_no = ?" % COLUMNS, tracking_no)
    if row is None:
        raise ParcelNotFound("parcel %s is not in the gateway's manifests" % tracking_no)
    route_id, sort_code, _state, rn, rp, ra, sn, sp, sa = row
    return {
        "tracking_no": tracking_no,
        "route_id": route_id,
        "sort_code": sort_code,
        "receiver": {"name": rn, "phone": rp, "address": ra},
        "sender": {"name": sn, "phone": sp, "address": sa},
        "contents": "",
        "qr_payload": qr_payload,
    }


class GatewayParcels:
    def __init__(self, home: Home) -> None:
        self._home = home

    def masked_view(self, tracking_no: str) -> dict[str, Any]:
        """The parcel as a preview shows it (specimen QR)."""
        return view(self._home.store, tracking_no, labels.specimen(tracking_no))

    def issue_labels(self, tracking_nos: list[str], actor: str, reprint_reason: str | None = None,
                     now: float | None = None) -> list[dict[str, Any]]:
        """Views carrying a new label proof each, for labels about to be
        printed: all of them or none (LabelRefused, ParcelNotFound).
        `actor` is the audit pseudonym of the person printing."""
        home, when = self._home, time.time() if now is None else now
        with home.store.transaction() as tx:
            return [view(tx, t, labels.issue(tx, home.keys, home.audit, t, when, actor, reprint_reason))
                    for t in tracking_nos]


__all__ = ["GatewayParcels", "LabelRefused", "view"]
