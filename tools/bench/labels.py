"""Label size and time on the wire: native printer commands against a full
203-dpi raster of the same label, per language and template.

    python3 -m tools.bench.labels          # table
    python3 -m tools.bench.labels --json   # the dict `veilpost bench` will use

Wire time is computed for 8N1 serial (10 bits a byte); a pty does not pace
bytes, so measuring it there would only time the kernel.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from printer_drivers import LANGUAGES, MaskedLabel, dialect, layout, load_template
from printer_drivers.preview import raster
from protocol import labels

TEMPLATES = ("76x130", "100x150")
BAUDS = (9600, 115200)
TARGET_BYTES = 1536
TARGET_RATIO = 50.0

# An obviously fake parcel, masked as the gateway would.
SAMPLE = {
    "tracking_no": "VP2611280007",
    "route_id": "R-07",
    "sort_code": "571-W2 07",
    "receiver": {"name": "測**", "phone": "170******34", "address": "測試市測試區樣例路1號 *棟***室"},
    "sender": {
        "name": "T**** M*********",
        "phone": "170******78",
        "address": "樣例市示範區測試街8號 **樓****室",
    },
    "contents": "文件 x1",
    # A possession proof of the gateway's format (label 1, key L1; the tag is a placeholder).
    "qr_payload": labels.to_text(labels.assemble(b"L1", "VP2611280007", 1, 1_900_000_000, bytes(8))),
}


def wire_seconds(nbytes: int, baud: int) -> float:
    return nbytes * 10 / baud


def bench(dpi: int = 203, repeat: int = 20) -> dict[str, Any]:
    label = MaskedLabel.from_mapping(SAMPLE)
    out: dict[str, Any] = {"dpi": dpi, "bauds": list(BAUDS), "templates": {}}
    for name in TEMPLATES:
        lay = layout(load_template(name, dpi), label)
        image = raster(lay)
        raw = image.width_bytes * image.height
        per_lang: dict[str, Any] = {}
        for lang in LANGUAGES:
            d = dialect(lang)
            t0 = time.perf_counter()
            for _ in range(repeat):
                native = d.encode(lay)
            encode_us = (time.perf_counter() - t0) / repeat * 1e6
            as_raster = d.encode_raster(lay, image)
            per_lang[lang] = {
                "native_bytes": len(native),
                "raster_command_bytes": len(as_raster),
                "ratio_vs_raw_raster": round(raw / len(native), 1),
                "wire_s": {str(b): round(wire_seconds(len(native), b), 3) for b in BAUDS},
                "raster_wire_s": {str(b): round(wire_seconds(len(as_raster), b), 2) for b in BAUDS},
                "encode_us": round(encode_us, 1),
                "meets_target": len(native) <= TARGET_BYTES and raw / len(native) >= TARGET_RATIO,
            }
        out["templates"][name] = {
            "dots": [lay.width, lay.height],
            "raw_raster_bytes": raw,
            "raw_raster_wire_s": {str(b): round(wire_seconds(raw, b), 1) for b in BAUDS},
            "languages": per_lang,
        }
    return out


def table(result: dict[str, Any]) -> str:
    lines = []
    for name, t in result["templates"].items():
        raw = t["raw_raster_bytes"]
        lines.append(
            "%s mm, %dx%d dots at %d dpi: raw 1-bit raster %d bytes (%.1f s at 9600, %.1f s at 115200)"
            % (name, t["dots"][0], t["dots"][1], result["dpi"], raw, *t["raw_raster_wire_s"].values())
        )
        lines.append(
            "  %-7s %7s %8s %9s %10s %12s %14s %9s"
            % ("lang", "native", "x raw", "9600 s", "115200 s", "as raster", "raster@9600 s", "target")
        )
        for lang, r in t["languages"].items():
            lines.append(
                "  %-7s %7d %7.1fx %9.3f %10.3f %12d %14.1f %9s"
                % (
                    lang,
                    r["native_bytes"],
                    r["ratio_vs_raw_raster"],
                    r["wire_s"]["9600"],
                    r["wire_s"]["115200"],
                    r["raster_command_bytes"],
                    r["raster_wire_s"]["9600"],
                    "ok" if r["meets_target"] else "MISSED",
                )
            )
    lines.append(
        "target: native <= %d bytes and >= %.0fx smaller than the raw raster" % (TARGET_BYTES, TARGET_RATIO)
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dpi", type=int, default=203, choices=(203, 300))
    args = parser.parse_args()
    result = bench(args.dpi)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
