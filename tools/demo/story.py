"""The six chapters of `veilpost demo`, each one a user doing what they do
with the real parts: the depot prints, couriers deliver on handhelds running
the firmware source, a rented account attacks, IT revokes a lost handheld,
and the audit log is verified."""

from __future__ import annotations

import csv
import functools
import io
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from gateway import registry
from gateway.home import Home, open_home
from protocol import topics
from tools.demo import revoke as revoke_mod
from tools.demo.stage import Broker, MqttClient, Printer, Spy, StageError, veilpost, wait_for
from tools.simulator import Handheld, SimulatorError

DEPOT = "D-DEMO"
SHIFT = "00:00-24:00"  # the demo runs at any hour
HONEST_REVEALS = 3  # per courier: the gateway allows 3 distinct parcels a minute
REVEALS = [
    (["phone"], "call-before-delivery"),
    (["address"], "address-unclear"),
    (["name", "phone"], "recipient-not-reachable"),
]
MAX_PNGS = 40
MAX_HONEST = 5


@dataclass
class Role:
    """One courier account, the handheld it works on, and its parcels."""

    badge: str
    pin: str
    device_id: str
    parcels: list[str]
    secret: bytes = b""
    mqtt: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tally:
    scans: int = 0
    delivered: int = 0
    handheld_refusals: int = 0
    remote_answers: int = 0
    remote_broker_refused: bool = False
    scrape_requests: int = 0
    scrape_records: int = 0
    incident: str = ""
    alarm_seen: bool = False
    revocation: revoke_mod.Revocation | None = None
    thief_reconnect_refused: bool = False
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
        self.problems: list[str] = []

    # ---- helpers

    def say(self, text: str) -> None:
        self.c.print(text)

    def command(self, *args: str) -> str:
        line, output = veilpost(self.home_dir, *args)
        line = line.replace(str(self.work) + "/", "")
        if len(line) > 160:
            line = line[:120] + " … " + line[-40:]
        self.c.print("[dim]$[/dim] [bold]%s[/bold]" % escape(line))
        lines = output.splitlines()
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
        config = {"device_id": role.device_id, "master_secret": role.secret, "lang": "en", "mqtt": role.mqtt}
        hh = Handheld(config, home=self.work / "handhelds" / (folder or role.device_id), timeout=timeout)
        self.handhelds[role.device_id] = hh
        return hh

    # ---- setting up

    def setup(self) -> None:
        self.c.rule("[bold]Setting up the depot")
        self.spy = Spy(self.broker)
        gw_user, gw_pass = self.broker.add_gateway("vp-gw-demo-" + self.tag)
        self.home_dir.mkdir(parents=True)
        lines = [
            'durability = "normal"',
            "[mqtt]",
            "broker = %s" % _q(self.broker.host),
            "port = %d" % self.broker.port,
            "client_id = %s" % _q("veilpost-demo-" + self.tag),
        ]
        if gw_user:
            lines += ["username = %s" % _q(gw_user), "password = %s" % _q(gw_pass or "")]
        if self.broker.kind == "embedded":
            lines.append('version = "3.1.1"')  # amqtt speaks MQTT 3.1.1 only
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
        from gateway.service import GatewayService

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
        for role in self.roles:
            self.command("courier", "add", role.badge, "--depot", DEPOT, "--shift", SHIFT, "--pin", role.pin)
        for role in self.roles:
            role.secret = registry.add_device(home.store, home.keys.kek, role.device_id, "simulator")
            username, password = self.broker.add_device(role.device_id)
            role.mqtt = {"host": self.broker.host, "port": self.broker.port, "keepalive": 30}
            if username:
                role.mqtt.update(username=username, password=password)
        self.say(
            "IT provisioned %d handhelds (%s): a device key in the gateway registry and a broker"
            " account each" % (len(self.roles), ", ".join(r.device_id for r in self.roles))
        )
        manifest = self.work / self.manifest_name
        manifest.write_bytes(self.manifest)
        self.command("route", "import", str(manifest))
        self.printer = Printer(self.home_dir, self.work)

    # ---- 1. the depot prints privacy waybills

    def print_labels(self) -> None:
        self.c.rule("[bold]1. The depot prints privacy waybills")
        assert self.printer is not None
        self.command("print", *self.parcels, "--printer", self.printer.name, "--give-up", "10")
        printed = self.printer.printed()
        self.advance(len(self.parcels))
        folder = self.out / "labels"
        folder.mkdir(parents=True, exist_ok=True)
        from printer_drivers.preview import FontMissing

        for label in printed[:MAX_PNGS]:
            if self.tally.pngs and self.left() < 15:
                break
            try:
                path = label.render_png(folder / ("%s.png" % (label.tracking_no or len(self.tally.pngs))))
            except FontMissing as e:
                self.say("[yellow]no label PNGs: %s[/yellow]" % escape(str(e)))
                break
            self.tally.pngs.append(str(path))
        self.say(
            "%d labels printed on the emulated TSPL printer (%d bytes of printer commands);"
            " %d rendered from what the printer received to [bold]%s[/bold]"
            % (len(printed), len(self.printer.wire), len(self.tally.pngs), folder)
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
            view = hh.scan(tn)
            if "error" in view:
                self.say("  %s: %s" % (tn, escape(str(view["error"]))))
                continue
            self.tally.scans += 1
            line = "  %s %s scans %s: [cyan]%s %s[/cyan]" % (
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
                else:
                    line += "; reveal refused: %s" % escape(str(got.denied))
            if hh.deliver(tn, code="135790"):
                self.tally.delivered += 1
                line += "; delivered, sealed"
            self.say(line)
            self.advance()
        held = sum(1 for t in role.parcels if hh.app.tokens.view(t, hh.now()) is not None)
        self.say("  %s ends the route: %d tokens left on the handheld" % (role.badge, held))

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
        hh.scan(tn)
        got = hh.reveal(tn, ["phone"], "recipient-requested-call")
        self.tally.handheld_refusals += 0 if got else 1
        self.say(
            "%s asks for %s's phone again: the handheld refuses (%s)"
            % (role.badge, tn, escape(str(got.denied)))
        )
        hh.app.delivered.pop(tn, None)  # a handheld that forgot the seal still asks the gateway
        hh.scan(tn)
        got = hh.reveal(tn, ["phone"], "recipient-requested-call")
        self.say(
            "with the seal forgotten on the handheld, the gateway answers: [red]%s[/red]"
            % escape(str(got.denied or "GRANTED"))
        )
        if got:
            raise StageError("the gateway granted a reveal on sealed parcel %s" % tn)
        self.advance()

    # ---- 4. a rented account attacks

    def remote_attack(self) -> None:
        self.c.rule("[bold]4a. A rented account, from far away: badge and PIN, no handheld")
        role = self.rented
        laptop = MqttClient(self.broker, role.badge, role.pin, "laptop-" + self.tag, timeout=3)
        self.tally.remote_broker_refused = not laptop.connected
        if laptop.connected:
            self.say("[yellow]this broker lets anyone in: the gateway is the only gate[/yellow]")
            laptop.close()
        else:
            self.say(
                "the renter's laptop logs in to the broker with badge %s and its PIN: [red]refused[/red]"
                " (%s)" % (role.badge, escape(laptop.refused or ""))
            )
        # Even with a broker password copied off a handheld, without the handheld's key:
        victim = self.honest[-1] if len(self.honest) > 1 else self.honest[0]
        since = time.time()
        fake = Role(role.badge, role.pin, victim.device_id, [], secrets.token_bytes(32), dict(victim.mqtt))
        answer = "no answer"
        stolen: Handheld | None = None
        try:
            if victim.device_id in self.handhelds:
                self.handhelds.pop(victim.device_id).close()
            stolen = self.handheld(fake, timeout=2.0, folder="renter-" + victim.device_id)
            stolen.login(role.badge, role.pin)
            answer = "logged in"
        except SimulatorError:
            pass
        finally:
            if stolen is not None:
                stolen.close()
                self.handhelds.pop(victim.device_id, None)
        assert self.home is not None
        sessions = self.home.store.one(
            "SELECT COUNT(*) FROM sessions WHERE device_id = ? AND started >= ?", victim.device_id, since
        )
        self.tally.remote_answers = int(sessions[0]) if sessions else 0
        if answer != "no answer":
            self.tally.remote_answers += 1
        self.say(
            "with %s's broker password but not its key, the login with a valid badge and PIN gets"
            " [red]%s[/red]: %d sessions, 0 tokens" % (victim.device_id, answer, self.tally.remote_answers)
        )
        self.advance()

    def scrape(self) -> None:
        self.c.rule("[bold]4b. A rented account on a handheld scrapes the depot")
        role = self.rented
        assert self.home is not None and self.spy is not None
        hh = self.handheld(role)
        hh.login(role.badge, role.pin)
        own = [t for t in role.parcels if t in self.parcels]
        sweep = own + [t for t in self.parcels if t not in own]
        self.say(
            "%s logs in on %s; its modified firmware fakes a scan of all %d labels in the depot and"
            " asks for every name, phone and address" % (role.badge, role.device_id, len(sweep))
        )
        now = hh.now()
        session = hh.app.session or b""
        for tn in sweep:
            hh.app.send("scan", {"tracking_no": tn, "session": session}, now)
        for i, tn in enumerate(sweep, 1000):
            hh.app.send(
                "reveal_request",
                {"req": i, "tracking_no": tn, "fields": [1, 2, 3], "reason": 1, "session": session},
                now,
            )
        hh.wait(lambda: not hh.app.outbox, "send the sweep")
        hh.settle()
        store = self.home.store

        def answered() -> int:
            row = store.one("SELECT COUNT(*) FROM requests WHERE device_id = ?", role.device_id)
            return int(row[0]) if row else 0

        wait_for(lambda: answered() >= len(sweep), 10)
        self.tally.scrape_requests = answered()
        row = store.one("SELECT COUNT(DISTINCT tracking_no) FROM tokens WHERE device_id = ?", role.device_id)
        self.tally.scrape_records = int(row[0]) if row else 0
        courier, device = (
            registry.courier_state(store, role.badge),
            registry.device_state(store, role.device_id),
        )
        self.say(
            "%d requests: %d parcels' data released before the sentinel stopped it; courier %s is"
            " [red]%s[/red], handheld %s is [red]%s[/red]"
            % (
                self.tally.scrape_requests,
                self.tally.scrape_records,
                role.badge,
                courier,
                role.device_id,
                device,
            )
        )
        wait_for(lambda: any(t == topics.ALARM for t, _ in self.spy.collect(0.1)), 3)
        alarms = [p for t, p in self.spy.seen if t == topics.ALARM]
        self.tally.alarm_seen = bool(alarms)
        if alarms:
            self.say(
                "alarm on %s: [red]%s[/red]" % (topics.ALARM, escape(alarms[-1].decode("ascii", "replace")))
            )
        row = store.one(
            "SELECT incident_id FROM incidents WHERE courier_id = ? ORDER BY opened DESC", role.badge
        )
        if row is not None:
            self.tally.incident = str(row[0])
            self.say("the security officer opens the incident: whose data did the account see?")
            self.command("incidents", "show", self.tally.incident)
        hh.close()
        self.handhelds.pop(role.device_id, None)
        self.advance()

    # ---- 5. IT revokes a lost handheld

    def revoke(self) -> None:
        self.c.rule("[bold]5. IT revokes a lost handheld, and it is wiped")
        lost_role = self.honest[0]
        hh = self.handhelds.get(lost_role.device_id)
        if hh is None:
            hh = self.handheld(lost_role)
        self.say(
            "%s reports handheld %s lost; it is still online (screen: %s)"
            % (lost_role.badge, lost_role.device_id, escape(hh.app.state))
        )
        self.say(
            "[yellow]`veilpost device revoke` is not available yet: the demo revokes with the"
            " registry, a retained wipe sealed by the gateway and the broker's account admin[/yellow]"
        )
        assert self.it is not None
        from firmware import app as appmod

        def wiped() -> bool:
            hh.step()
            return hh.app.state == appmod.WIPED

        r = revoke_mod.revoke(self.service, self.broker, self.it, lost_role.device_id, "reported lost", wiped)
        self.tally.revocation = r
        key_gone = hh.hal.keystore.get("master") is None
        self.say(
            "handheld %s: [red]%s[/red] after %s; device key erased: %s; route on flash: %s"
            % (
                lost_role.device_id,
                hh.app.state,
                _secs(r.wipe_seconds),
                key_gone,
                "gone" if not any(n == "route" for n in hh.hal.flash.names()) else "still there",
            )
        )
        if r.broker_disabled:
            self.say("broker account disabled and session kicked %s after the revoke" % _secs(r.kick_seconds))
        thief = MqttClient(
            self.broker,
            lost_role.mqtt.get("username"),
            lost_role.mqtt.get("password"),
            "thief-" + self.tag,
            timeout=3,
        )
        self.tally.thief_reconnect_refused = not thief.connected
        if thief.connected:
            thief.close()
        self.say(
            "the finder tries the handheld's broker password: %s"
            % (
                "[red]refused[/red]"
                if not thief.connected
                else "[yellow]connected (no broker admin)[/yellow]"
            )
        )
        revoke_mod.clear_retained(self.it, lost_role.device_id)
        self.advance()

    # ---- 6. the audit log verifies

    def audit(self) -> Any:
        self.c.rule("[bold]6. The audit log verifies")
        for hh in list(self.handhelds.values()):
            hh.close()
        self.handhelds.clear()
        self.service.stop()  # writes a signed checkpoint
        self.service = None
        self.command("audit", "verify")
        from gateway import audit as audit_mod

        assert self.home is not None
        verdict = audit_mod.verify(self.home.store, self.home.keys.signing_key.public_key())
        self.advance()
        return verdict

    def close(self) -> None:
        for hh in self.handhelds.values():
            hh.close()
        if self.service is not None:
            self.service.stop()
        for part in (self.it, self.spy, self.printer):
            if part is not None:
                part.close()
        if self.home is not None:
            self.home.close()


def _has_route(hh: Handheld, parcels: list[str]) -> bool:
    return all(t in hh.app.parcels for t in parcels)


def _q(text: str) -> str:
    import json

    return json.dumps(text)


def _secs(value: float | None) -> str:
    return "n/a" if value is None else "%.0f ms" % (value * 1000)
