"""Manifest import speed: a CSV of N rows of fake parcels (50 routes, 10
couriers) checked (`check_manifest`) and imported (`import_manifest`) into a
fresh SQLite home, each size in a process of its own so that its peak RSS is
its own. Figures: rows/s for the check and the import, peak RSS, and the RSS
before the file was opened (Python, the gateway's modules)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from gateway import registry
from gateway.home import init
from gateway.manifest import check_manifest, import_manifest

folder, csv_path = Path(sys.argv[1]), Path(sys.argv[2])
home = init(folder)
for c in range(10):
    registry.add_courier(home.store, "C-%03d" % c, "4321", "D-1")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
report = check_manifest(home.store, csv_path, home.zone)
t1 = time.perf_counter()
summary = import_manifest(home.store, home.vault, home.audit, csv_path, home.zone, time.time(), "it:bench")
t2 = time.perf_counter()
assert report.ok and summary.parcels == report.rows, report.problems[:3]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": summary.parcels, "check_s": t1 - t0, "import_s": t2 - t1,
                  "rss_before_kb": before, "peak_rss_kb": peak}))
"""

HEADER = ("tracking_no,route_id,courier_id,receiver_name,receiver_phone,receiver_address,"
          "sender_name,sender_phone,sender_address,delivery_window_start,delivery_window_end\n")


def write_csv(path: Path, rows: int) -> int:
    """A manifest of `rows` obviously fake parcels; returns its size in bytes."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in range(rows):
            route = i % 50
            f.write('VP%010d,R-%02d,C-%03d,測試收件人%d,"(021) 6666-%04d ext %d",'
                    '"測試市測試區樣例路%d號 %d棟%d室",'
                    "測試寄件人,1700000%04d,測試市寄件路9號,2030-01-02T08:00:00,2030-01-02T20:00:00\n"
                    % (i, route, route % 10, i % 97, i % 10000, i % 90 + 10, i % 500, i % 30, i % 900 + 100,
                       i % 10000))
    return path.stat().st_size


def measure(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vp-manifest-bench-") as tmp:
        csv_path = Path(tmp) / "manifest.csv"
        size = write_csv(csv_path, rows)
        done = subprocess.run([sys.executable, "-c", CHILD, str(Path(tmp) / "home"), str(csv_path)], cwd=REPO,
                              capture_output=True, text=True, timeout=1800, check=False,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        got = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "rows": got["rows"],
        "file_mb": round(size / 1e6, 1),
        "check_rows_per_s": round(got["rows"] / got["check_s"]),
        "import_rows_per_s": round(got["rows"] / got["import_s"]),
        "import_s": round(got["import_s"], 1),
        "peak_rss_mb": round(got["peak_rss_kb"] / 1024, 1),
        "rss_before_mb": round(got["rss_before_kb"] / 1024, 1),
    }


def run(rows: list[int] | None = None) -> dict[str, Any]:
    return {"%d rows" % n: measure(n) for n in (rows or [10_000, 100_000])}


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    print(json.dumps(run(sizes), indent=1, ensure_ascii=False))
