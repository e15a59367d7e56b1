"""The story of `veilpost demo`, each chapter a user doing what they do with
the real parts: setting up the depot, printing waybills, couriers delivering
on handhelds that run the firmware source, a sealed parcel, and the audit
log verified. The attacks and the revocation are in tools/demo/attacks.py."""

from __future__ import annotations

import csv
import functools
import io
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import Progress

from gateway.home import Home, open_home
from tools.demo.stage import Broker, MqttClient, Printer, Spy, StageError, end_session, veilpost
from tools.simulator import Handheld, SimulatorError

DEPOT = "D-DEMO"
SHIFT = "00:00-24:00"  # the demo runs at any hour
IT = "Ivy Demo"  # the IT operator who enrols handhelds and cuts off the lost one (`--as`)
STAFF = "Dana Demo"  # the depot clerk who imports the manifest and prints the labels
HONEST_REVEALS = 3  # per courier: the gateway allows 3 distinct parcels a minute
REVEALS = [
    (["phone"], "call-before-delivery"),
    (["address"], "address-unclear"),
    (["name", "phone"], "recipient-not-reachable"),
]
MAX_PNGS = 40
MAX_HONEST = 5
DETAILED = 6  # parcels per courier told line by line; the rest show on the progress bar


@dataclass
class Role:
    """One courier account, the handheld it works on, and its parcels."""

    badge: str
    pin: str
    device_id: str
    parcels: list[str]
    config: dict[str, Any] = field(default_factory=dict)  # the provisioning bundle


@dataclass
class Tally:
    scans: int = 0
    delivered: int = 0
    handheld_refusals: int = 0
    remote_answers: int = 0
    remote_broker_refused: bool = False
    scrape_requests: int = 0
    scrape_records: int = 0
    scrape_strikes: int = 0
    incident: str = ""
    alarm_seen: bool = False
    revocation: dict[str, Any] | None = None
    pngs: list[str] = field(default_factory=list)


def read_manifest(data: bytes) -> tuple[list[str], dict[str, list[str]]]:
    """Tracking numbers in file order, and each courier's parcels (file order)."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    routes: dict[str, list[str]] = {}
    for row in rows:
        routes.setdefault((row.get("courier_id") or "").strip(), []).append(
            (row.get("tracking_no") or "").strip()
        )
    return [(r.get("tracking_no") or "").strip() for r in rows], routes


class Story:
    def __init__(
        self,
        console: Console,
        progress: Progress,
        task: Any,
        work: Path,
        out: Path,
        broker: Broker,
        manifest: bytes,
        manifest_name: str,
        deadline: float,
        ignore_window: bool,
    ) -> None:
        self.c, self.progress, self.task = console, progress, task
        self.work, self.out, self.broker = work, out, broker
        self.manifest, self.manifest_name = manifest, manifest_name
        self.deadline = deadline
        self.tag = secrets.token_hex(2)
        self.home_dir = work / "home"
        self.tally = Tally()
        self.handhelds: dict[str, Handheld] = {}
        self.parcels, routes = read_manifest(manifest)
        couriers = list(routes)
        if not couriers or not self.parcels:
            raise StageError("%s has no parcels" % manifest_name)
        # The last courier's account is the one rented out; the others work honestly.
        self.roles = [
            Role(b, "%04d" % (1357 + 111 * i), "HH-%s-%d" % (self.tag, i + 1), routes[b])
            for i, b in enumerate(couriers)
        ]
        self.rented = self.roles[-1]
        self.honest = self.roles[:-1][:MAX_HONEST] or [self.roles[0]]
        self.ignore_window = ignore_window
        self.home: Home | None = None
        self.service: Any = None
        self.spy: Spy | None = None
        self.printer: Printer | None = None
        self.it: MqttClient | None = None
        self.witness: Any = None  # gateway.witness.Witness: the checkpoints kept outside the database
        self.problems: list[str] = []
        self.qr: dict[str, str] = {}  # tracking number -> the QR text its printed label carries
        self.gateway_account: tuple[str | None, str | None] = (None, None)

    # ---- helpers

    def say(self, text: str) -> None:
        self.c.print(text)

    def command(self, *args: str) -> str:
        line, output = veilpost(self.home_dir, *args)
        line = line.replace(str(self.work) + "/", "")
        if len(line) > 160:
            line = line[:120] + " … " + line[-40:]
        self.c.print("[dim]$[/dim] [bold]%s[/bold]" % escape(line))
        lines = [line for line in output.splitlines() if line.strip()]
        if len(lines) > 12:
            lines = lines[:4] + ["… %d more lines …" % (len(lines) - 8)] + lines[-4:]
        if lines:
            self.c.print("[dim]%s[/dim]" % escape("\n".join(lines)))
        return output

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def handheld(self, role: Role, timeout: float = 10.0, folder: str = "") -> Handheld:
        config = dict(role.config, lang="en")
        hh = Handheld(config, home=self.work / "handhelds" / (folder or role.device_id), timeout=timeout)
        self.handhelds[role.device_id] = hh
        return hh

    # ---- setting up

    def setup(self) -> None:
        self.c.rule("[bold]Setting up the depot")
        self.spy = Spy(self.broker)
        gw_user, gw_pass = self.gateway_account = self.broker.add_gateway("vp-gw-demo-" + self.tag)
        client_id = "veilpost-demo-" + self.tag
        self.home_dir.mkdir(parents=True, exist_ok=True)
        lines = ['durability = "normal"']
        if self.broker.kind == "external":
            lines += [
                "[mqtt]",
                "broker = %s" % _q(self.broker.host),
                "port = %d" % self.broker.port,
                "username = %s" % _q(gw_user),
                "password = %s" % _q(gw_pass),
                "client_id = %s" % _q(client_id),
                # The only gateway of this run: a plain subscription, so sessions
                # other gateways left on a shared broker cannot take its messages.
                "shared = false",
            ]
            self.broker.hand_over(self.home_dir)
        else:
            # Bundles name the port the config gives handhelds: the demo's broker's.
            lines += ["[mqtt]", "embedded_port = %d" % self.broker.port]
        if self.ignore_window:
            lines += ["[reveal]", "ignore_window = true"]
        (self.home_dir / "veilpost.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.command("init")
        if self.ignore_window:
            self.say(
                "[yellow]demo config: reveal.ignore_window = true, so the manifest's delivery windows"
                " fit any hour[/yellow]"
            )
        home = self.home = open_home(self.home_dir)
        if self.broker.kind == "embedded":
            # The embedded broker runs beside the gateway, its accounts in the home
            # (where `veilpost device` finds them); the gateway joins it as a client.
            m = home.config.mqtt
            m.broker, m.port, m.username, m.password = self.broker.host, self.broker.port, gw_user, gw_pass
            m.version, m.client_id = "3.1.1", client_id  # amqtt speaks MQTT 3.1.1
        from gateway.service import GatewayService
        from gateway.witness import Witness, WitnessLog

        # A witness outside the gateway's database (another host in production, docs/audit.md).
        self.witness = Witness(WitnessLog(self.work / "witness", home.keys.public_key()),
                               listen=("127.0.0.1", 0))
        self.witness.start()
        home.config.audit.witness_urls = ["http://127.0.0.1:%d/checkpoint" % self.witness.port]
        home.config.audit.checkpoint_interval = 5  # a short run: several checkpoints, not one
        self.say("a witness keeps the audit log's signed checkpoints outside the gateway's database: witness/"
                 " (http://127.0.0.1:%d)" % self.witness.port)
        self.service = GatewayService(home)
        self.service.start()
        where = "embedded broker" if self.broker.kind == "embedded" else "broker"
        self.say(
            "gateway %s connected to the %s at %s:%d (MQTT %s)"
            % (
                home.config.gateway_id,
                where,
                self.broker.host,
                self.broker.port,
                "5" if self.service.version == 5 else "3.1.1",
            )
        )
        it_user, it_pass = self.broker.add_gateway("vp-it-demo-" + self.tag)
        self.it = MqttClient(self.broker, it_user, it_pass, "vp-it-demo-" + self.tag)
        self.command("operator", "add", IT, "--role", "it")
        self.command("operator", "add", STAFF, "--role", "staff", "--as", IT)
        for role in self.roles:
            self.command("courier", "add", role.badge, "--depot", DEPOT, "--shift", SHIFT, "--pin", role.pin,
                         "--as", STAFF)
        self.provision()
        manifest = self.work / self.manifest_name
        manifest.write_bytes(self.manifest)
        self.command("route", "import", str(manifest), "--as", STAFF)
        self.printer = Printer(self.home_dir, self.work)

    def provision(self) -> None:
        """IT enrols one handheld per courier; each bundle is what would be
        flashed onto the device, here handed to the simulator."""
        devices = self.work / "handhelds.csv"
        devices.write_text(
            "device_id,model\n" + "".join("%s,simulator\n" % r.device_id for r in self.roles),
            encoding="utf-8",
        )
        bundles = self.work / "bundles"
        self.command("device", "provision", "--csv", str(devices), "--lang", "en", "--out", str(bundles),
                     "--as", IT)
        for role in self.roles:
            self.broker.created.append(role.device_id)
            role.config = json.loads(
                (bundles / role.device_id / "provision.json").read_text(encoding="utf-8")
            )

    # ---- 1. the depot prints privacy waybills

    def print_labels(self) -> None:
        self.c.rule("[bold]1. The depot prints privacy waybills")
        assert self.printer is not None
        self.command("print", *self.parcels, "--printer", self.printer.name, "--give-up", "10", "--as", STAFF)
        printed = self.printer.printed()
        # What each label's QR holds, as the couriers' scanners will read it off the label.
        self.qr = {label.tracking_no: label.qr_payload for label in printed if label.tracking_no}
        self.advance(len(self.parcels))
        folder = self.out / "labels"
        folder.mkdir(parents=True, exist_ok=True)
        from printer_drivers.preview import FontMissing

        no_font = ""
        for label in printed[:MAX_PNGS]:
            if self.tally.pngs and self.left() < 15:
                break
            try:
                path = label.render_png(folder / ("%s.png" % (label.tracking_no or len(self.tally.pngs))))
            except FontMissing as e:
                no_font = str(e)
                self.say("[yellow]no label PNGs: %s[/yellow]" % escape(no_font))
                break
            self.tally.pngs.append(str(path))
        rendered = (" %d rendered from what the printer received to [bold]%s[/bold]"
                    % (len(self.tally.pngs), folder) if self.tally.pngs
                    else " no PNG previews (%s)" % ("no CJK font" if no_font else "none rendered"))
        self.say(
            "%d labels printed on the emulated TSPL printer (%d bytes of printer commands);%s"
            % (len(printed), len(self.printer.wire), rendered)
        )
        if printed:
            sample = printed[0]
            shown = [t for t in sample.texts if t.strip()][:6]
            self.say("label %s reads: [cyan]%s[/cyan]" % (sample.tracking_no, escape(" | ".join(shown))))

    # ---- 2. couriers deliver

    def deliver(self) -> None:
        self.c.rule("[bold]2. Couriers log in, scan, reveal with a reason, deliver")
        for role in self.honest:
            try:
                self._route(role)
            except SimulatorError as e:  # one handheld's trouble does not stop the others
                self.problems.append("%s on %s: %s" % (role.badge, role.device_id, e))
                self.say("[red]%s on %s stopped: %s[/red]" % (role.badge, role.device_id, escape(str(e))))

    def _route(self, role: Role) -> None:
        hh = self.handheld(role)
        hh.login(role.badge, role.pin)
        hh.wait(functools.partial(_has_route, hh, role.parcels), "receive the route")
        revealed = 0
        for i, tn in enumerate(role.parcels):
            if self.left() < 10:
                self.say("[yellow]time bound reached: %s stops here[/yellow]" % role.badge)
                break
            qr = self.qr.get(tn)
            view = hh.scan_label(qr) if qr else hh.scan(tn)  # the label's QR: the parcel is in hand
            if "error" in view:
                self.say("  %s: %s" % (tn, escape(str(view["error"]))))
                continue
            self.tally.scans += 1
            if self.tally.scans == 1:
                self.c.print(
                    Panel(
                        escape(str(view["screen"])),
                        title="%s screen after the scan" % role.device_id,
                        expand=False,
                    )
                )
            line = "  %s %s scans the label of %s: [cyan]%s %s[/cyan]" % (
                role.device_id,
                role.badge,
                tn,
                escape(view["name"]),
                escape(view["phone"]),
            )
            if i % 2 == 0 and revealed < HONEST_REVEALS:
                fields, reason = REVEALS[revealed % len(REVEALS)]
                got = hh.reveal(tn, fields, reason)
                revealed += 1
                if got:
                    line += "; reveals %s (%s): shown on the handheld only" % ("+".join(fields), reason)
                    if self.tally.scans == 1:
                        self._show_revealed(hh, role, got.shown)
                else:
                    line += "; reveal refused: %s" % escape(str(got.denied))
            if hh.deliver(tn, code="135790"):
                self.tally.delivered += 1
                line += "; delivered, sealed"
            if i < DETAILED:
                self.say(line)
            self.advance()
        held = sum(1 for t in role.parcels if hh.app.tokens.view(t, hh.now()) is not None)
        delivered = sum(1 for t in role.parcels if t in hh.app.delivered)
        self.say(
            "  %s ends the route: %d of %d parcels delivered (%d reveals); %d tokens left on the handheld"
            % (role.badge, delivered, len(role.parcels), revealed, held)
        )

    def _show_revealed(self, hh: Handheld, role: Role, shown: dict[str, str]) -> None:
        """The screen while a field is revealed, with the value itself blacked
        out here: the plaintext is for the courier's eyes, not this terminal."""
        screen = hh.screen()
        for value in shown.values():
            screen = screen.replace(value, "█" * len(value))
        self.c.print(
            Panel(escape(screen), title="%s screen during the reveal" % role.device_id, expand=False)
        )

    # ---- 3. a reveal on a sealed parcel

    def sealed(self) -> None:
        self.c.rule("[bold]3. A reveal on a sealed parcel is refused")
        role = self.honest[0]
        hh = self.handhelds.get(role.device_id)
        done = [t for t in role.parcels if hh is not None and t in hh.app.delivered]
        if hh is None or not done:
            self.say("[yellow]no parcel was delivered, nothing sealed to try[/yellow]")
            return
        tn = done[0]
        hh.scan_label(self.qr[tn])
        got = hh.reveal(tn, ["phone"], "recipient-requested-call")
        self.tally.handheld_refusals += 0 if got else 1
        self.say(
            "%s asks for %s's phone again: the handheld refuses (%s)"
            % (role.badge, tn, escape(str(got.denied)))
        )
        hh.app.delivered.pop(tn, None)  # a handheld that forgot the seal still asks the gateway
        hh.scan_label(self.qr[tn])
        got = hh.reveal(tn, ["phone"], "recipient-requested-call")
        self.say(
            "with the seal forgotten on the handheld, the gateway answers: [red]%s[/red]"
            % escape(str(got.denied or "GRANTED"))
        )
        if got:
            raise StageError("the gateway granted a reveal on sealed parcel %s" % tn)
        self.advance()

    # ---- 6. the audit log verifies

    def audit(self) -> Any:
        self.c.rule("[bold]6. The audit log verifies")
        for hh in list(self.handhelds.values()):
            hh.close()
        self.handhelds.clear()
        self.service.stop()  # writes a signed checkpoint and sends it to the witness
        self.service = None
        self.command("audit", "verify", "--witness", str(self.work / "witness"))
        from gateway import audit as audit_mod
        from gateway.witness import load_witnessed

        assert self.home is not None
        verdict = audit_mod.verify(self.home.store, self.home.keys.public_key(),
                                   load_witnessed(str(self.work / "witness")))
        if not verdict.witnessed:
            raise StageError("the witness holds no checkpoint of the audit log")
        self.advance()
        return verdict

    def close(self) -> None:
        for hh in self.handhelds.values():
            hh.close()
        if self.service is not None:
            self.service.stop()
        if self.home is not None and self.broker.kind == "external":
            # The gateway's persistent session would outlive the run on the broker.
            end_session(self.broker, self.home.config.mqtt.client_id, *self.gateway_account)
        for part in (self.it, self.spy, self.printer):
            if part is not None:
                part.close()
        if self.witness is not None:
            self.witness.stop()
        if self.home is not None:
            self.home.close()


def _has_route(hh: Handheld, parcels: list[str]) -> bool:
    return all(t in hh.app.parcels for t in parcels)


def _q(text: str) -> str:
    import json

    return json.dumps(text)


def ms(value: float | None) -> str:
    return "n/a" if value is None else "%.0f ms" % (value * 1000)
