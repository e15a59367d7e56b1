"""Label printing for privacy waybills.

A template (TOML, in millimetres, zoned per GB/T 41833-2022) plus a masked
parcel view makes a layout; one encoder per printer language (TSPL, ZPL II,
ESC/POS, CPCL) turns it into bytes that use the printer's own CJK font,
Code128 and QR commands. Status read-back, pyserial transports, a Pillow
preview and an emulated printer complete it. Nothing here sees plaintext:
`MaskedLabel.from_mapping` refuses unmasked names, phones and addresses.
"""

from printer_drivers.dialects import DEFAULT_FONT, LANGUAGES, dialect
from printer_drivers.label import LabelError, MaskedLabel
from printer_drivers.layout import Layout, Template, available_templates, layout, load_template
from printer_drivers.status import PrinterStatus

__all__ = [
    "LANGUAGES",
    "LabelError",
    "Layout",
    "MaskedLabel",
    "PrinterStatus",
    "Template",
    "available_templates",
    "dialect",
    "layout",
    "load_template",
    "render_label",
]


def render_label(view: object, language: str, template: str = "100x150", dpi: int | None = None,
                 zpl_font: str = DEFAULT_FONT) -> bytes:
    """The one entry point, for the print commands and the gateway's print
    desk alike: masked parcel view in, printer bytes out. Raises LabelError
    for a view that is not masked enough or does not fit the template."""
    label = MaskedLabel.from_mapping(view)  # type: ignore[arg-type]
    return dialect(language, zpl_font).encode(layout(load_template(template, dpi), label))
