"""`veilpost bench [--quick] [--json FILE]`: run every benchmark
module's function and write one JSON document. `veilpost bench`
(tools/cli/bench.py) calls `main` through the `veilpost.tools` entry point
`bench`.

Each section comes from one module of tools/bench; a module that is not
there, or that fails, is reported as such in its section ("missing" or
"error"), never filled with made-up figures, and makes the run exit 1.
`highlights` repeats the figures the README table shows.

$VEILPOST_BENCH_SECTIONS replaces the table of sections for one run:
comma-separated `name=module:function` (the function is called with no
arguments), to run a benchmark of your own or to see how a failing one is
reported.

Quick mode is sized for CI (well under two minutes on two cores); full mode
runs 200 devices x 50 reveals per configuration and the longer crypto and
label loops (a few minutes).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

REPO = Path(__file__).resolve().parents[2]

# section -> (module, function, keyword arguments in quick mode, in full mode)
SECTIONS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("reveal", "tools.bench.reveal_bench", "run", {"devices": 200, "seconds": 2.0, "rounds": 1},
     {"devices": 200, "seconds": 3.0, "rounds": 2}),
    ("scale_out", "tools.bench.scaleout", "run", {"quick": True}, {"quick": False}),
    ("labels", "tools.bench.labels", "bench", {"repeat": 3}, {"repeat": 20}),
    ("messages", "tools.bench.message_sizes", "measure", {}, {}),
    ("crypto", "tools.bench.crypto_bench", "run", {"quick": True}, {"quick": False}),
    ("firmware", "tools.bench.firmware_bench", "measure", {"quick": True}, {"quick": False}),
    ("revoke", "tools.bench.revoke_latency", "run", {"rounds": 3}, {"rounds": 20}),
    ("rotation", "tools.bench.rotation_time", "run", {"rounds": 1}, {"rounds": 5}),
    ("manifest", "tools.bench.manifest_bench", "run", {"rows": [2000]}, {"rows": [10_000, 100_000]}),
    ("notify", "tools.bench.notify", "run", {"people": 100}, {"people": 1000}),
    ("audit", "tools.bench.audit_verify", "run", {"entries": 20_000}, {"entries": 1_000_000}),
]


def sections() -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """SECTIONS, or the ones $VEILPOST_BENCH_SECTIONS names instead."""
    spec = os.environ.get("VEILPOST_BENCH_SECTIONS", "").strip()
    if not spec:
        return SECTIONS
    out: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = []
    for item in spec.split(","):
        name, _, target = item.strip().partition("=")
        module, _, function = target.partition(":")
        if not (name and module and function):
            raise click.UsageError("VEILPOST_BENCH_SECTIONS: %r is not name=module:function" % item)
        out.append((name, module, function, {}, {}))
    return out


def section(module: str, function: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """One module's figures, or why there are none."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return {"missing": "%s.py is not in this checkout yet" % module.replace(".", "/")}
        raise
    # A module that named its entry point differently is still picked up.
    names = [function] + [n for n in ("run", "measure", "bench") if n != function]
    fn: Callable[..., Any] | None = next((getattr(mod, n) for n in names if callable(getattr(mod, n, None))),
                                         None)
    if fn is None:
        return {"missing": "%s has no %s() function" % (module, function)}
    accepted = inspect.signature(fn).parameters
    result = fn(**{k: v for k, v in kwargs.items() if k in accepted})
    return result if isinstance(result, dict) else {"result": result}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except OSError:
        return ""


def _dig(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def highlights(report: dict[str, Any]) -> dict[str, Any]:
    """The handful of figures worth a table, picked out of the sections."""
    s = report["sections"]
    rev = _dig(s, "scale_out", "reveal") or {}
    out: dict[str, Any] = {}
    for label in ("paho_echo", "sqlite_1_gateway", "postgresql_1_gateway", "postgresql_2_gateways"):
        run = rev.get(label)
        if isinstance(run, dict) and "per_s" in run:
            out[label] = {k: run.get(k) for k in ("per_s", "p50_ms", "p99_ms", "fraction_of_echo")
                          if run.get(k) is not None}
    if "two_vs_one_gateway" in rev:
        out["two_vs_one_gateway"] = rev["two_vs_one_gateway"]
    gw = s.get("reveal")
    if isinstance(gw, dict) and "reveals_per_s" in gw:
        out["reveal_gateway_bench"] = {k: gw.get(k) for k in (
            "devices", "echo_per_s", "reveals_per_s", "ratio_to_echo", "reveal_p50_ms", "reveal_p99_ms",
            "reveal_paced_p50_ms", "reveal_paced_p99_ms")}
    mem = _dig(s, "scale_out", "memory")
    if isinstance(mem, dict) and "gateway_bytes_per_device" in mem:
        out["memory_per_device_bytes"] = {"devices": mem["devices"],
                                          "gateway": mem["gateway_bytes_per_device"],
                                          "broker": mem["broker_bytes_per_device"]}
    templates = _dig(s, "labels", "templates")
    if isinstance(templates, dict):
        out["label_bytes"] = {name: {lang: v["native_bytes"] for lang, v in t["languages"].items()}
                              for name, t in templates.items()}
    msgs = s.get("messages")
    if isinstance(msgs, dict) and all(isinstance(m, dict) for m in msgs.values()):  # ("error" is a message)
        out["message_wire_bytes"] = {name: m["wire"] for name, m in msgs.items() if isinstance(m, dict)
                                     and "wire" in m}
    mp = _dig(s, "crypto", "micropython")
    if isinstance(mp, dict) and "error" not in mp:
        out["micropython_open_grant"] = mp
    fw = s.get("firmware")
    if isinstance(fw, dict) and "missing" not in fw and "error" not in fw:
        out["firmware"] = fw
    for name, key in (("revoke", "revoke_ms"), ("rotation", "rotation_ms")):
        timed = s.get(name)
        if isinstance(timed, dict) and timed and all(isinstance(v, dict) and "median_ms" in v
                                                      for v in timed.values()):
            out[key] = {label: {"median": round(v["median_ms"], 1), "worst": round(v["max_ms"], 1)}
                        for label, v in timed.items()}
    verify = _dig(s, "audit", "sqlite")
    if isinstance(verify, dict) and "verify_wall_us_per_entry" in verify:
        out["audit_verify"] = {store: {k: v[k] for k in ("entries", "verify_wall_us_per_entry",
                                                         "verify_cpu_us_per_entry")}
                               for store, v in s["audit"].items() if isinstance(v, dict)}
    out["missing"] = sorted(name for name, v in s.items() if isinstance(v, dict) and "missing" in v)
    out["failed"] = sorted(name for name, v in s.items() if isinstance(v, dict) and "error" in v
                           and "traceback" in v)
    return out


def run_all(quick: bool, only: list[str] | None = None,
            echo: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.system()},
        "sections": {}, "seconds": {},
    }
    table = sections()
    unknown = sorted(set(only or ()) - {s[0] for s in table})
    if unknown:
        raise click.UsageError("no bench section %s (have: %s)" % (", ".join(unknown),
                                                                   ", ".join(s[0] for s in table)))
    for name, module, function, quick_kwargs, full_kwargs in table:
        if only and name not in only:
            continue
        echo("bench %s ..." % name)
        t0 = time.perf_counter()
        first_error = ""
        for attempt in (1, 2):  # one retry: processes and ports on a busy CI machine
            try:
                result = section(module, function, quick_kwargs if quick else full_kwargs)
                if first_error:
                    result = dict(result, first_attempt_failed=first_error)
                break
            except Exception as e:
                first_error = "%s: %s" % (type(e).__name__, e)
                result = {"error": first_error, "traceback": traceback.format_exc(limit=5),
                          "attempts": attempt}
        report["sections"][name] = result
        report["seconds"][name] = round(time.perf_counter() - t0, 2)
    report["highlights"] = highlights(report)
    return report


def summary(report: dict[str, Any]) -> list[str]:
    h = report["highlights"]
    lines = ["veilpost bench (%s mode, %s)" % (report["mode"], report["commit"] or "no commit")]
    for label in ("paho_echo", "sqlite_1_gateway", "postgresql_1_gateway", "postgresql_2_gateways"):
        if label in h:
            r = h[label]
            lines.append("  %-22s %8.1f /s   p50 %7.1f ms   p99 %7.1f ms%s" % (
                label, r["per_s"], r["p50_ms"], r["p99_ms"],
                "   %.0f%% of echo" % (100 * r["fraction_of_echo"]) if "fraction_of_echo" in r else ""))
    if "reveal_gateway_bench" in h:
        r = h["reveal_gateway_bench"]
        lines.append("  reveal bench (%s devices): %s /s vs echo %s /s (%.2fx); closed p50 %s ms p99 %s ms;"
                     " paced p50 %s ms p99 %s ms" % (r["devices"], r["reveals_per_s"], r["echo_per_s"],
                                                     r["ratio_to_echo"] or 0, r["reveal_p50_ms"],
                                                     r["reveal_p99_ms"], r["reveal_paced_p50_ms"],
                                                     r["reveal_paced_p99_ms"]))
    if "two_vs_one_gateway" in h:
        lines.append("  two gateways / one: %.2fx" % h["two_vs_one_gateway"])
    if "memory_per_device_bytes" in h:
        m = h["memory_per_device_bytes"]
        lines.append("  memory per device (%d devices): gateway %d B, broker %d B" % (
            m["devices"], m["gateway"], m["broker"]))
    fw = h.get("firmware") or {}
    if "reveal_fuel" in fw:
        lines.append("  handheld reveal (MicroPython VM): %s instructions, %s B allocated, %s B wire" % (
            fw.get("reveal_fuel"), fw.get("reveal_alloc_bytes"), fw.get("reveal_wire_bytes")))
    for key, what in (("revoke_ms", "revoke -> kicked"), ("rotation_ms", "key rotation")):
        for label, v in (h.get(key) or {}).items():
            lines.append("  %s, %s: median %.1f ms, worst %.1f ms" % (what, label, v["median"], v["worst"]))
    for store, v in (h.get("audit_verify") or {}).items():
        lines.append("  audit verify, %s, %d entries: %.1f us wall, %.1f us CPU per entry" % (
            store, v["entries"], v["verify_wall_us_per_entry"], v["verify_cpu_us_per_entry"]))
    for template, langs in (h.get("label_bytes") or {}).items():
        lines.append("  label %s: " % template + ", ".join("%s %d B" % kv for kv in langs.items()))
    for name in h.get("missing", []):
        lines.append("  %s: missing (%s)" % (name, report["sections"][name]["missing"]))
    for name in h.get("failed", []):
        lines.append("  %s: FAILED (%s)" % (name, report["sections"][name]["error"]))
    lines.append("  seconds: " + ", ".join("%s %.1f" % kv for kv in report["seconds"].items()))
    return lines


def incomplete(report: dict[str, Any]) -> list[str]:
    """The sections that failed or are missing."""
    h = highlights(report) if "highlights" not in report else report["highlights"]
    return sorted(set(h["missing"]) | set(h["failed"]))


def main(quick: bool, json_file: str | None = None, only: list[str] | None = None,
         progress: Callable[[str], None] = lambda _line: None,
         out: Callable[[str], None] = print) -> int:
    """Run the benchmarks, print a summary (and write the JSON report):
    0 when every section completed, 1 when one failed or is missing."""
    report = run_all(quick, list(only or ()) or None, echo=progress)
    if json_file:
        Path(json_file).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in summary(report):
        out(line)
    bad = incomplete(report)
    if bad:
        out("bench: not every section completed (%s)" % ", ".join(bad))
        return 1
    return 0
