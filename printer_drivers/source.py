"""Where the printing commands get masked parcel views: a narrow interface,
so the printer side never touches the vault or a plaintext record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from protocol.errors import PrinterError

MAX_FILE_BYTES = 16 * 1024 * 1024


class ParcelNotFound(PrinterError, LookupError):
    pass


class ParcelSource(Protocol):
    def masked_view(self, tracking_no: str) -> Mapping[str, Any]:
        """The parcel as a label may show it: masked fields and the signed QR reference."""
        ...


class JsonFileSource:
    """Masked views from a JSON file: a list of views, `{"parcels": [...]}`,
    or an object keyed by tracking number."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError("%s is larger than %d bytes" % (path, MAX_FILE_BYTES))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError("%s is not a JSON file of masked parcel views: %s" % (path, exc)) from exc
        if isinstance(data, Mapping) and "parcels" in data:
            data = data["parcels"]
        if isinstance(data, Mapping):
            data = [dict(v, tracking_no=k) for k, v in data.items() if isinstance(v, Mapping)]
        if not isinstance(data, list):
            raise ValueError("%s: expected a list of masked parcel views" % path)
        self._views = {str(v.get("tracking_no")): v for v in data if isinstance(v, Mapping)}

    def masked_view(self, tracking_no: str) -> Mapping[str, Any]:
        try:
            return self._views[tracking_no]
        except KeyError:
            raise ParcelNotFound("parcel %s is not in the masked-view file" % tracking_no) from None
