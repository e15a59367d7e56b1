"""`veilpost incidents report`: the report for the authorities (PIPL art. 57)
built from the incident alone — categories and number of people and records,
cause, time line, possible harm, measures taken, what individuals can do and
the contact — as JSON and as an HTML document (every value escaped). It
holds counts, masked values and pseudonyms only, never a contact."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway import incidents
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.store import Handle, Store
from protocol.errors import ConfigurationError

CATEGORIES = {"receiver_name": "name", "receiver_phone": "phone number", "receiver_address": "postal address",
              "receiver_email": "e-mail address"}
HARM = {
    "sentinel": "An account or handheld received receivers' delivery details beyond what its deliveries"
                " needed. Possible harm: fraud calls or messages naming the parcels, impersonation of a"
                " courier, unwanted visits to the address.",
    "device-revoked": "A handheld that may hold receivers' delivery details (on screen or in pre-issued"
                      " tokens) was revoked. Possible harm: fraud calls or messages naming the parcels.",
    "device-lost": "A handheld that may hold receivers' delivery details (pre-issued tokens) was lost."
                   " Possible harm: fraud calls or messages naming the parcels, unwanted visits.",
}
ADVICE = ("Be wary of calls, messages or visits that mention these parcels; never give a verification code"
          " or pay anyone claiming to be a courier; report anything suspicious to the contact below.")


def build(tx: Handle | Store, cfg: Config, zone: ZoneInfo, incident_id: str) -> dict[str, Any]:
    inc = incidents.describe(tx, incident_id, zone)
    fields = sorted({f for p in inc["parcels"] for f in p["fields"]})
    notices = inc["notices"]
    measures = []
    for hold in inc["holds"]:
        measures.append("%s %s suspended (%s)" % (hold["kind"], hold["ident"], hold["state"]))
    if inc["kind"] != "sentinel":
        measures.append("handheld %s revoked: deny-listed, wiped, broker session cut"
                        % ", ".join(inc["devices"]))
    sent = sum(1 for n in notices if n["state"] == "sent")
    measures.append("%d of %d affected people notified individually" % (sent, len(notices)))
    return {
        "report": "personal information incident report",
        "incident": inc["incident"],
        "kind": inc["kind"],
        "opened": inc["opened"],
        "state": inc["state"],
        "categories": [CATEGORIES.get(f, f) for f in fields],
        "people": len(notices),
        "records": len(inc["parcels"]),
        "unreachable": sum(1 for n in notices if n["state"] == "unreachable"),
        "cause": inc["trigger"],
        "devices": inc["devices"],
        "accounts": [a["courier"] for a in inc["accounts"]],
        "timeline": [{"at": s["at"], "step": s["step"], "by": s["by"]} for s in inc["steps"]],
        "possible_harm": HARM.get(inc["kind"], HARM["sentinel"]),
        "measures": measures,
        "what_individuals_can_do": ADVICE,
        "contact": cfg.notify.contact,
        "notices": {"by_state": inc["people"]["by_state"], "by_channel": inc["people"]["by_channel"]},
    }


def render_html(report: dict[str, Any]) -> str:
    e = html.escape

    def items(values: list[Any]) -> str:
        if not values:
            return "<p>none</p>"
        return "<ul>" + "".join("<li>%s</li>" % e(str(v)) for v in values) + "</ul>"

    timeline = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>" % (e(str(s["at"])), e(s["step"]),
                                                                       e(s["by"]))
                       for s in report["timeline"])
    rows = [("Incident", report["incident"]), ("Kind", report["kind"]), ("Opened", report["opened"]),
            ("State", report["state"]), ("People affected", report["people"]),
            ("Records (parcels)", report["records"]), ("People not reachable individually",
                                                       report["unreachable"]),
            ("Cause", report["cause"]), ("Contact", report["contact"])]
    table = "".join("<tr><th>%s</th><td>%s</td></tr>" % (e(k), e(str(v))) for k, v in rows)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Incident report %s</title>"
            "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}th{text-align:left;"
            "padding-right:1em}td,th{vertical-align:top}</style></head><body>\n"
            "<h1>Personal information incident report</h1>\n<table>%s</table>\n"
            "<h2>Categories of personal information</h2>%s\n<h2>Devices and accounts involved</h2>%s%s\n"
            "<h2>Time line</h2><table><tr><th>When</th><th>Step</th><th>By</th></tr>%s</table>\n"
            "<h2>Possible harm</h2><p>%s</p>\n<h2>Measures taken</h2>%s\n"
            "<h2>What individuals can do</h2><p>%s</p>\n</body></html>\n") % (
        e(report["incident"]), table, items(report["categories"]), items(report["devices"]),
        items(report["accounts"]), timeline, e(report["possible_harm"]), items(report["measures"]),
        e(report["what_individuals_can_do"]))


def write(store: Store, audit: AuditLog, cfg: Config, zone: ZoneInfo, incident_id: str, actor: str,
          folder: Path, now: float) -> tuple[Path, Path]:
    """Write INC.json and INC.html into `folder`; the incident becomes reported."""
    current = incidents.stage(store, incident_id)
    if current not in ("notified", "reported"):
        raise incidents.IncidentError("cannot report incident %s: it is %s; notify the people first"
                                      " (`veilpost incidents notify`)" % (incident_id, current))
    as_json, as_html = folder / (incident_id + ".json"), folder / (incident_id + ".html")
    with store.transaction() as tx:  # written before the step commits: a failed write leaves it notified
        incidents.advance(tx, audit, incident_id, "reported", actor, now, "report written")
        report = build(tx, cfg, zone, incident_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            as_json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            as_html.write_text(render_html(report), encoding="utf-8")
        except OSError as e:
            why = e.strerror or e
            raise ConfigurationError("cannot write the report to %s: %s" % (folder, why)) from None
    return as_json, as_html
