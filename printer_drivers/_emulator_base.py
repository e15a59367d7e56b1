"""What every emulated-printer parser shares: the label being built, the
printed output, and the hooks the parsers call."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from printer_drivers.layout import Code128, Element, QRCode, Text

SGD_GETVAR = re.compile(rb'! U1 getvar "([a-z0-9_.]+)"\r?\n')


@dataclass
class PrintedLabel:
    language: str
    width: int
    height: int
    elements: list[Element] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.elements if isinstance(e, Text)]

    @property
    def tracking_no(self) -> str | None:
        codes = [e.data for e in self.elements if isinstance(e, Code128)]
        return codes[0] if codes else None

    @property
    def qr_payload(self) -> str | None:
        codes = [e.data for e in self.elements if isinstance(e, QRCode)]
        return codes[0] if codes else None

    def render_png(self, path: str | Path) -> Path:
        from printer_drivers.preview import render_elements

        out = Path(path)
        render_elements(self.width, self.height, self.elements).save(out, format="PNG")
        return out


class EmulatorBase:
    _buf: bytes
    _cur: PrintedLabel | None
    errors: list[str]

    def status_reply(self) -> bytes:
        raise NotImplementedError

    def sgd(self, name: bytes) -> bytes:
        raise NotImplementedError

    def _complete(self, label: PrintedLabel) -> None:
        raise NotImplementedError

    def _add(self, el: Element) -> None:
        if self._cur is None:
            self._error("element before CLS")
            return
        self._cur.elements.append(el)

    def _finish(self) -> None:
        if self._cur is not None:
            label, self._cur = self._cur, None
            self._complete(label)

    def _error(self, text: str) -> None:
        self.errors.append(text)
