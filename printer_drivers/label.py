"""The masked parcel view: the only thing the printing code accepts.

The gateway masks a parcel (protocol.masking) and hands the printer this view.
Nothing here can unmask; `MaskedLabel.from_mapping` refuses anything that
still looks like plaintext, so a caller mistake fails loudly instead of
printing a full phone number on a label.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from protocol.errors import PrinterError
from protocol.masking import check_compliant

MASK = "*"
TRACKING_RE = re.compile(r"^[A-Za-z0-9-]{4,32}$")
SORT_CODE_RE = re.compile(r"^[A-Za-z0-9 \-/]{1,24}$")
QR_PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_\-=.]{8,512}$")
MAX_TEXT = 96
# Seven or more digits in a row is a phone number, or most of one.
PHONE_RUN_RE = re.compile(r"\d{7,}")
MIN_PHONE_MASKED = 6  # GB/T 41833-2022: hide at least six digits of a phone

PERSON_FIELDS = ("name", "phone", "address")


class LabelError(PrinterError, ValueError):
    """A parcel view that cannot go on a label, with the reason."""


@dataclass(frozen=True)
class MaskedLabel:
    tracking_no: str
    route_id: str
    sort_code: str
    receiver_name: str
    receiver_phone: str
    receiver_address: str
    sender_name: str
    sender_phone: str
    sender_address: str
    contents: str
    qr_payload: str

    def field(self, name: str) -> str:
        value = getattr(self, name, None)
        if not isinstance(value, str):
            raise LabelError("template asks for unknown field %r" % name)
        return value

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, view: Mapping[str, Any] | Any) -> MaskedLabel:
        """Accept a flat dict, a dict with `receiver`/`sender` sub-dicts, or an
        object with the same attributes; check every personal field is masked."""
        flat = _flatten(view)
        values: dict[str, str] = {}
        for name in cls.__dataclass_fields__:
            value = flat.get(name, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise LabelError("field %s must be text, got %s" % (name, type(value).__name__))
            if len(value) > MAX_TEXT and name != "qr_payload":
                raise LabelError(
                    "field %s is %d characters, the label holds %d" % (name, len(value), MAX_TEXT)
                )
            values[name] = value.strip()
        label = cls(**values)
        label.check()
        return label

    def check(self) -> None:
        if not TRACKING_RE.match(self.tracking_no):
            raise LabelError("tracking number %r is not 4-32 letters, digits or '-'" % self.tracking_no)
        if not SORT_CODE_RE.match(self.sort_code):
            raise LabelError("sort code %r is empty or has characters a label cannot carry" % self.sort_code)
        if not QR_PAYLOAD_RE.match(self.qr_payload):
            raise LabelError(
                "QR payload must be the gateway's signed reference (base64url text, 8-512 chars)"
            )
        for side in ("receiver", "sender"):
            for key in PERSON_FIELDS:
                if not _compliant(key, getattr(self, side + "_" + key)):
                    raise LabelError(
                        "%s %s is not masked per GB/T 41833: refusing to print plaintext" % (side, key)
                    )
            if MASK not in getattr(self, side + "_name"):
                raise LabelError("%s name is not masked: refusing to print plaintext" % side)
            if getattr(self, side + "_phone").count(MASK) < MIN_PHONE_MASKED:
                raise LabelError(
                    "%s phone hides fewer than %d digits: refusing to print" % (side, MIN_PHONE_MASKED)
                )
        for name, value in self.to_dict().items():
            bad = next((c for c in value if unicodedata.category(c)[0] == "C"), None)
            if bad is not None:  # a CR/LF or ESC in a field would end a printer command early
                raise LabelError("field %s holds control character U+%04X" % (name, ord(bad)))
            if name in ("tracking_no", "qr_payload"):
                continue
            if PHONE_RUN_RE.search(value):
                raise LabelError(
                    "field %s holds a run of 7+ digits (a phone number?): refusing to print" % name
                )


def _compliant(field: str, value: str) -> bool:
    """protocol.masking is the one place that decides what masked enough means."""
    return bool(check_compliant(field, value))


def _flatten(view: Mapping[str, Any] | Any) -> dict[str, Any]:
    if not isinstance(view, Mapping):
        view = {k: getattr(view, k) for k in dir(view) if not k.startswith("_")}
    flat: dict[str, Any] = dict(view)
    for side in ("receiver", "sender"):
        sub = flat.pop(side, None)
        if isinstance(sub, Mapping):
            for key in PERSON_FIELDS:
                flat.setdefault(side + "_" + key, sub.get(key))
    return flat
