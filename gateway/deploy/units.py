"""The systemd units of one depot, written with the real paths of this
machine: veilpost-gateway.service runs the `veilpost` that pip installed
(beside the Python running this, in a venv or not; never a guessed
/usr/local/bin), ordered after veilpost-mosquitto.service, the depot's own
Mosquitto started from the config make-depot.sh rendered.

Why a rendered unit and not `ExecStart=/usr/bin/env veilpost`: systemd runs
services with a fixed PATH that does not hold a venv's bin folder, and a unit
that names a missing program only fails when it starts. Rendering resolves
the path once, where it can be checked (`systemd-analyze verify` does).

    python3 -m gateway.deploy.units [--out /etc/systemd/system]
        [--depot-config /etc/mosquitto/veilpost/mosquitto.conf]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from gateway.deploy.depot import DepotSetupError

DEPLOY = Path(__file__).parent
GATEWAY_UNIT = "veilpost-gateway.service"
MOSQUITTO_UNIT = "veilpost-mosquitto.service"
DEFAULT_CONF = Path("/etc/mosquitto/veilpost/mosquitto.conf")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_veilpost() -> Path:
    """The `veilpost` console script pip installed for this Python, else the
    one on PATH; DepotSetupError when there is none."""
    beside = Path(sysconfig.get_path("scripts")) / "veilpost"
    if _executable(beside):
        return beside.absolute()
    found = shutil.which("veilpost")
    if found:
        return Path(found).absolute()
    raise DepotSetupError("no `veilpost` program installed for %s: pip install veilpost first"
                          % sys.executable)


def find_mosquitto() -> Path:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and _executable(Path(candidate)):
            return Path(candidate)
    raise DepotSetupError("mosquitto is not installed (Debian/Ubuntu: apt install mosquitto)")


def render(veilpost: Path, mosquitto: Path, depot_config: Path = DEFAULT_CONF) -> dict[str, str]:
    """Unit file name -> text, with every placeholder filled in."""
    for name, path in (("veilpost", veilpost), ("mosquitto", mosquitto), ("the depot config", depot_config)):
        if not Path(path).is_absolute():
            raise DepotSetupError("%s must be an absolute path, not %s" % (name, path))
        if any(c.isspace() for c in str(path)):
            raise DepotSetupError("%s path %r has white space, which a unit's ExecStart would split"
                                  % (name, path))
    values = {"@VEILPOST@": str(veilpost), "@MOSQUITTO@": str(mosquitto),
              "@MOSQUITTO_CONF@": str(depot_config)}
    out = {}
    for unit in (GATEWAY_UNIT, MOSQUITTO_UNIT):
        text = (DEPLOY / unit).read_text(encoding="utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        out[unit] = text
    return out


def write_units(out_dir: Path, veilpost: Path | None = None, mosquitto: Path | None = None,
                depot_config: Path = DEFAULT_CONF) -> list[Path]:
    """Render both units into `out_dir` (mode 0644, as systemd expects)."""
    units = render(veilpost or find_veilpost(), mosquitto or find_mosquitto(), depot_config)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o644)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m gateway.deploy.units", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/etc/systemd/system"), help="where the units go")
    parser.add_argument("--depot-config", type=Path, default=DEFAULT_CONF,
                        help="the mosquitto.conf make-depot.sh rendered (default %(default)s)")
    parser.add_argument("--veilpost", type=Path, default=None, help="the veilpost program (default: found)")
    parser.add_argument("--mosquitto", type=Path, default=None, help="the mosquitto program (default: found)")
    args = parser.parse_args(argv)
    try:
        written = write_units(args.out, args.veilpost, args.mosquitto, args.depot_config)
    except DepotSetupError as exc:
        print("units: " + str(exc), file=sys.stderr)
        return 1
    for path in written:
        print("wrote %s" % path)
    print("then: systemctl daemon-reload && systemctl enable --now %s %s" % (MOSQUITTO_UNIT, GATEWAY_UNIT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
