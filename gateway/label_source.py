"""Masked parcel views from the gateway store, for the printing commands and
the print desk: the gateway's side of printer_drivers.source.ParcelSource.

Reads only the masked columns of `parcels` (never the vault) and adds the
label's QR payload: a COSE_Mac0 (HMAC 256/64) over {1: tracking_no,
2: route_id} under the gateway's label key, base64url text (docs/wire.md).
"""

from __future__ import annotations

import base64
from typing import Any

from gateway.home import Home
from printer_drivers.source import ParcelNotFound
from protocol import cbor, cose

COLUMNS = (
    "route_id, sort_code, state, masked_receiver_name, masked_receiver_phone, masked_receiver_address,"
    " masked_sender_name, masked_sender_phone, masked_sender_address"
)


def label_reference(label_key: bytes, tracking_no: str, route_id: str) -> str:
    """The signed parcel reference a label's QR code carries: no personal data."""
    token = cose.mac0(label_key, cbor.dumps({1: tracking_no, 2: route_id}))
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


class GatewayParcels:
    def __init__(self, home: Home) -> None:
        self._home = home
        self._label_key = home.keys.label_key

    def masked_view(self, tracking_no: str) -> dict[str, Any]:
        row = self._home.store.one("SELECT %s FROM parcels WHERE tracking_no = ?" % COLUMNS, tracking_no)
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
            "qr_payload": label_reference(self._label_key, tracking_no, route_id),
        }
