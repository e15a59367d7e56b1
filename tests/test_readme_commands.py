"""Every command the README shows for each role, run as written, in the
README's order, on a fresh home (./veilpost-data in a new folder), with the
real parts they need: the gateway (`veilpost gateway run`) on its embedded
broker, an emulated TSPL printer on a pseudo-terminal, and for the courier
the wire-level handheld of tools/testbed (the README's courier works on a
handheld, not on the command line).

What the test brings is what a depot brings: the manifest, the handhelds'
CSV and printers.toml the commands name, the PINs the prompts ask for, a
broker port of its own and a time zone where it is midday (so that the
couriers are on shift whenever the suite runs). Two commands need hardware
(a handheld on a serial port) and are not run; the test checks that the
README still shows them. Long-running commands (`gateway run`, `alarms
watch`) run in the background from where they appear until the end; the
courier's day happens while the officer's `alarms watch` runs. The one
placeholder, the incident id, is the id of the incident the day opened.
Deployment's commands (make-depot.sh, `broker add-gateway`, `gateway
units`) are run by tests/test_depot_rerun.py, tests/test_broker_cli.py and
tests/test_systemd_units.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import config as config_mod
from printer_drivers.emulated_link import PtyPrinter
from protocol.labels import from_text
from tests.fixtures.gateway import own_embedded_port
from tools.testbed.depot import FAKE_PEOPLE, FAKE_SENDER, leaks
from tools.testbed.wire import Handheld

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
ROLES = ("Depot staff", "IT", "Courier", "Security officer")
NEEDS_HARDWARE = {
    'veilpost device provision HH-0005 --port /dev/ttyUSB0 --as "Ivy Test"',
    "veilpost firmware deploy --port /dev/ttyUSB0 --bundle veilpost-data/bundles/HH-0001",
}
IN_BACKGROUND = ("veilpost gateway run", "veilpost alarms watch")
PINS = {"C-112": "2468", "C-104": "1357", "C-112 new": "8642", "Officer Test": "135790",
        "Officer Other": "246801"}
PROMPTS = {
    "veilpost courier add C-112": "%s\n%s\n" % (PINS["C-112"], PINS["C-112"]),
    "veilpost courier add C-104": "%s\n%s\n" % (PINS["C-104"], PINS["C-104"]),
    "veilpost courier reset-pin C-112": "%s\n%s\n" % (PINS["C-112 new"], PINS["C-112 new"]),
    'veilpost officer add "Officer Test"': "%s\n%s\n" % (PINS["Officer Test"], PINS["Officer Test"]),
    'veilpost officer add "Officer Other"': "%s\n%s\n" % (PINS["Officer Other"], PINS["Officer Other"]),
    'veilpost suspension lift --officer "Officer Test"': PINS["Officer Test"] + "\n",
    'veilpost case approve CASE-1 --officer "Officer Test"': PINS["Officer Test"] + "\n",
    'veilpost case approve CASE-1 --officer "Officer Other"': PINS["Officer Other"] + "\n",
}
INCIDENT_PLACEHOLDER = "INC-6098D830"


def norm(line: str) -> str:
    """A command line as shlex writes it back (the README's quotes may differ)."""
    return shlex.join(shlex.split(line, comments=True))


NEEDS_HARDWARE = {norm(c) for c in NEEDS_HARDWARE}
IN_BACKGROUND = tuple(norm(c) for c in IN_BACKGROUND)
PROMPTS = {norm(k): v for k, v in PROMPTS.items()}
ROUTES = {"R-07": ("C-112", ["VP2653464097", "VP2630246633", "VP2644440001"]),
          "R-09": ("C-104", ["VP2611111111", "VP2622220002"]),
          "R-12": ("C-112", ["VP2699990001"])}


def readme_commands() -> list[tuple[str, str]]:
    """(role, command line without its comment), in the README's order."""
    text = README.read_text(encoding="utf-8")
    out = []
    for role in ROLES:
        section = text.split("\n### %s\n" % role, 1)[1]
        section = re.split(r"\n##+ ", section, maxsplit=1)[0]
        for block in re.findall(r"```sh\n(.*?)```", section, re.S):
            for line in block.splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0] == "veilpost":
                    out.append((role, shlex.join(words)))
    return out


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now."""
    now = datetime.now(UTC)
    offset = round(12 - now.hour - now.minute / 60)
    offset = (offset + 12) % 24 - 12  # -12 .. 11
    return "UTC" if offset == 0 else "Etc/GMT%+d" % -offset


def manifest(zone: str) -> bytes:
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    lines = ["tracking_no,route_id,courier_id,receiver_name,receiver_phone,receiver_address,"
             "sender_name,sender_phone,sender_address,delivery_window_start,delivery_window_end"]
    n = 0
    for route, (courier, parcels) in ROUTES.items():
        for tracking_no in parcels:
            name, phone, address = FAKE_PEOPLE[n % len(FAKE_PEOPLE)]
            n += 1
            lines.append('%s,%s,%s,%s,%s,"%s",%s,%s,"%s",%sT00:05:00,%sT23:55:00' % (
                tracking_no, route, courier, name, phone, address, *FAKE_SENDER, today, today))
    return ("\n".join(lines) + "\n").encode("utf-8")


class Day:
    """The folder a depot works in, and what runs in it."""

    def __init__(self, cwd: Path, printer: PtyPrinter) -> None:
        self.cwd = cwd
        self.home = cwd / "veilpost-data"
        self.printer = printer
        self.env = {k: v for k, v in os.environ.items() if k != "VEILPOST_HOME"}
        self.env["PYTHONPATH"] = str(REPO)
        self.env["COLUMNS"] = "200"
        self.background: dict[str, subprocess.Popen[str]] = {}
        self.outputs: dict[str, str] = {}
        self.incident = ""

    def run(self, line: str) -> str:
        argv = shlex.split(line.replace(INCIDENT_PLACEHOLDER, self.incident or INCIDENT_PLACEHOLDER))
        prompt = next((text for start, text in PROMPTS.items() if line.startswith(start)), None)
        done = subprocess.run([sys.executable, "-m", "tools", *argv[1:]], cwd=self.cwd, env=self.env,
                              input=prompt, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, "%s exited %d:\n%s%s" % (line, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        self.outputs[line] = done.stdout + done.stderr
        return self.outputs[line]

    def start(self, line: str) -> None:
        argv = shlex.split(line)
        log = open(self.cwd / (argv[1] + ".out"), "w")  # noqa: SIM115 - the child keeps it
        self.background[line] = subprocess.Popen([sys.executable, "-m", "tools", *argv[1:]], cwd=self.cwd,
                                                 env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                 text=True)
        log.close()
        want = "mqtt-connected" if argv[1] == "gateway" else "watching vp/v1/alarm"
        self.wait_for(argv[1], want)

    def output_of(self, name: str) -> str:
        path = self.cwd / (name + ".out")
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def wait_for(self, name: str, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output_of(name):
            assert time.monotonic() < deadline, "%s never said %r:\n%s" % (name, text, self.output_of(name))
            time.sleep(0.05)

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for line, proc in reversed(list(self.background.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if "alarms watch" in line else signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            codes[line] = proc.returncode
        return codes

    def handheld(self, device_id: str) -> Handheld:
        doc = json.loads((self.home / "bundles" / device_id / "provision.json").read_text())
        m = doc["mqtt"]
        return Handheld(types.SimpleNamespace(host=m["host"], port=m["port"]), device_id,
                        bytes.fromhex(doc["master_secret"]), credentials=(m["username"], m["password"]))

    def printed_label(self, tracking_no: str) -> bytes:
        """The QR of the newest label the printer printed for the parcel."""
        qrs = self.printer.call(lambda e: [label.qr_payload for label in e.printed
                                           if label.tracking_no == tracking_no])
        assert qrs and qrs[-1], tracking_no
        return from_text(qrs[-1])


def before(day: Day, line: str) -> None:
    """What the depot has at hand before the command (files, a cable that comes loose)."""
    if line == "veilpost route import manifest.csv --check":
        zone = config_mod.load(day.home).timezone
        (day.cwd / "manifest.csv").write_bytes(manifest(zone))
    elif line == norm('veilpost device provision --csv handhelds.csv --as "Ivy Test"'):
        (day.cwd / "handhelds.csv").write_text("device_id,model\nHH-0002,TS-1\nHH-0003,TS-1\nHH-0004,TS-1\n",
                                               encoding="utf-8")
    elif line.startswith("veilpost reprint VP2653464097"):
        # The cable comes loose just after the reprint reached the printer, and is plugged back:
        # the spool cannot know whether it printed (TSPL has no label counter).
        day.printer.unplug_after_label(5)
        threading.Timer(1.5, day.printer.replug).start()


def after(day: Day, line: str, out: str) -> None:
    """What the command must have done, beyond exiting 0."""
    if line == "veilpost init":
        own_embedded_port(day.home)
        config_mod.set_values(day.home, {"timezone": midday_zone()})
        (day.home / "printers.toml").write_text(
            '[printers.depot]\nurl = "%s"\nlanguage = "tspl"\nbaud = 115200\n' % day.printer.path,
            encoding="utf-8")
    checks: dict[str, Callable[[str], bool]] = {
        "veilpost config check": lambda o: "fail" not in o and "ok   database" in o,
        "veilpost courier list": lambda o: "C-112" in o and "C-104" in o,
        "veilpost route import manifest.csv --check": lambda o: "6 rows, no problems" in o,
        norm('veilpost route import manifest.csv --as "Dana Test"'):
            lambda o: o.startswith("imported 6 parcels on 3 routes"),
        "veilpost parcel list --route R-07": lambda o: o.count("VP26") == 3 and "170******34" in o,
        norm('veilpost print --route R-07 --printer depot --as "Dana Test"'):
            lambda o: "depot: 3 printed" in o,
        "veilpost printers status": lambda o: "ready" in o and "uncertain=1" in o,
        "veilpost device list": lambda o: all("HH-000%d" % i in o for i in range(1, 5)),
        "veilpost officer list": lambda o: "Officer Test" in o and "Officer Other" in o,
        "veilpost incidents list": lambda o: day.incident in o,
        "veilpost case list": lambda o: "CASE-1" in o and "open until" in o,
        "veilpost audit verify": lambda o: "audit log intact" in o,
        "veilpost retention run": lambda o: "shredded 0 parcels" in o,
    }
    check = checks.get(line)
    if check is not None:
        assert check(out), "%s printed:\n%s" % (line, out)
    if line.startswith("veilpost route withdraw R-12"):
        assert "withdrew route R-12 of courier C-112: 1 parcels removed" in out
    if line.startswith("veilpost printers settle 5"):
        assert "job 5 closed" in out, out
    if line.startswith("veilpost reprint"):
        assert "job 5" in out, out
    if line.startswith("veilpost incidents show"):
        assert day.incident in out and "courier C-104" in out, out
    if line.startswith("veilpost alarms list"):
        assert "incident " + day.incident in out, out
    if line.startswith("veilpost alarms events"):
        assert "label-damaged" in out and "VP2630246633" in out, out


def courier_day(day: Day) -> None:
    """The Courier section, on handhelds: C-112 works its route; C-104's
    account, rented out, asks for parcels it never held until the sentinel
    suspends it."""
    honest = day.handheld("HH-0001")
    try:
        assert honest.login("C-112", PINS["C-112 new"])["ok"] is True
        honest.scan("VP2653464097", day.printed_label("VP2653464097"))
        name, fields = honest.reveal("VP2653464097", [2], req=1, reason=3)
        assert name == "reveal_grant", fields
        name, fields = honest.reveal("VP2630246633", [2], req=2, reason=6)  # its QR would not scan
        assert name == "reveal_grant", fields
    finally:
        honest.close()
    rented = day.handheld("HH-0002")
    try:
        assert rented.login("C-104", PINS["C-104"])["ok"] is True
        for req, tracking_no in enumerate(ROUTES["R-07"][1] * 2, start=1):
            if "ALM-" in day.output_of("alarms"):
                break
            rented.send("reveal_request", {"req": req, "tracking_no": tracking_no, "fields": [2], "reason": 1,
                                           "session": rented.session})
            reply = rented.recv(timeout=3)  # the last may not come: the suspension kicks the handheld
            assert reply is None or reply[0] == "reveal_denied", reply
    finally:
        rented.close()
    day.wait_for("alarms", "incident INC-")
    day.incident = re.findall(r"incident (INC-[0-9A-F]{8})", day.output_of("alarms"))[0]


@pytest.fixture
def day(tmp_path: Path, pty_printer: Callable[..., PtyPrinter]) -> Iterator[Day]:
    d = Day(tmp_path, pty_printer("tspl"))
    yield d
    d.stop_all()


def test_readme_shows_the_commands_this_test_runs() -> None:
    commands = [c for _, c in readme_commands()]
    assert NEEDS_HARDWARE <= set(commands)
    assert len(commands) >= 45
    for start in (*PROMPTS, *IN_BACKGROUND):
        assert any(c.startswith(start) for c in commands), start
    assert sum(INCIDENT_PLACEHOLDER in c for c in commands) == 7


def test_every_role_command_in_the_readme_runs_on_a_fresh_home_in_order(day: Day) -> None:
    courier_done = False
    for role, line in readme_commands():
        if role == "Courier":
            continue  # `veilpost fleet` runs the firmware simulator: tests/test_handheld_fleet.py
        if line in NEEDS_HARDWARE:
            continue
        if any(line.startswith(start) for start in IN_BACKGROUND):
            day.start(line)
            if line.startswith("veilpost alarms watch"):
                courier_day(day)
                courier_done = True
            continue
        before(day, line)
        after(day, line, day.run(line))
    assert courier_done
    codes = day.stop_all()
    assert set(codes.values()) == {0}, codes
    gateway_log = day.output_of("gateway")
    assert "Traceback" not in gateway_log and " INFO transitions" not in gateway_log
    everything = "".join(day.outputs.values()) + gateway_log + day.output_of("alarms")
    assert leaks(everything.encode("utf-8")) == []  # the commands show masked data only
    assert (day.cwd / "label.png").stat().st_size > 0 and (day.cwd / "audit.jsonl").stat().st_size > 0
    assert json.loads((day.cwd / "inc.json").read_text())["incident"] == day.incident

