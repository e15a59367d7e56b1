"""Chapters 4 and 5 of `veilpost demo`: a rented courier account attacks
from far away and then on a handheld, and IT revokes a lost handheld. Each
chapter is a function of the Story, like the Story's own chapters."""

from __future__ import annotations

import secrets
import threading
import time

from rich.markup import escape

from gateway import registry
from protocol import labels, topics
from tools.demo.stage import MqttClient, wait_for
from tools.demo.story import IT, Role, Story, ms
from tools.simulator import Handheld, SimulatorError

# ---- 4. a rented account attacks


def remote_attack(story: Story) -> None:
    story.c.rule("[bold]4a. A rented account, from far away: badge and PIN, no handheld")
    role = story.rented
    laptop = MqttClient(story.broker, role.badge, role.pin, "laptop-" + story.tag, timeout=3)
    story.tally.remote_broker_refused = not laptop.connected
    if laptop.connected:
        story.say("[yellow]this broker lets anyone in: the gateway is the only gate[/yellow]")
        laptop.close()
    else:
        story.say(
            "the renter's laptop logs in to the broker with badge %s and its PIN: [red]refused[/red]"
            " (%s)" % (role.badge, escape(laptop.refused or ""))
        )
    # Even with a broker password copied off a handheld, without the handheld's key:
    victim = story.honest[-1] if len(story.honest) > 1 else story.honest[0]
    since = time.time()
    fake = Role(
        role.badge, role.pin, victim.device_id, [], dict(victim.config, master_secret=secrets.token_hex(32))
    )
    answer = "no answer"
    stolen: Handheld | None = None
    try:
        if victim.device_id in story.handhelds:
            story.handhelds.pop(victim.device_id).close()
        stolen = story.handheld(fake, timeout=2.0, folder="renter-" + victim.device_id)
        stolen.login(role.badge, role.pin)
        answer = "logged in"
    except SimulatorError:
        pass
    finally:
        if stolen is not None:
            stolen.close()
            story.handhelds.pop(victim.device_id, None)
    assert story.home is not None
    sessions = story.home.store.one(
        "SELECT COUNT(*) FROM sessions WHERE device_id = ? AND started >= ?", victim.device_id, since
    )
    story.tally.remote_answers = int(sessions[0]) if sessions else 0
    if answer != "no answer":
        story.tally.remote_answers += 1
    story.say(
        "with %s's broker password but not its key, the login with a valid badge and PIN gets"
        " [red]%s[/red]: %d sessions, 0 tokens" % (victim.device_id, answer, story.tally.remote_answers)
    )
    story.advance()


def scrape(story: Story) -> None:
    story.c.rule("[bold]4b. A rented account on a handheld with modified firmware, and no labels")
    role = story.rented
    assert story.home is not None and story.spy is not None
    hh = story.handheld(role)
    hh.login(role.badge, role.pin)
    own = [t for t in role.parcels if t in story.parcels]
    sweep = own + [t for t in story.parcels if t not in own]
    story.say(
        "%s logs in on %s. Its modified firmware knows every tracking number of the depot but holds"
        " none of the labels: it fakes a scan of all %d parcels, asks for offline tokens for them, and"
        " asks for every name, phone and address" % (role.badge, role.device_id, len(sweep))
    )
    now = hh.now()
    session = hh.app.session or b""
    # Attack 1: fake scans (a bare number, then a made-up QR), online reveals.
    for tn in sweep:
        hh.app.send("scan", {"tracking_no": tn, "session": session}, now)
        forged = labels.assemble(b"L1", tn, 1, int(now), bytes(8))
        hh.app.send("scan", {"tracking_no": tn, "session": session, "label": forged}, now)
    for i, tn in enumerate(sweep, 1000):
        hh.app.send("reveal_request", {"req": i, "tracking_no": tn, "fields": [1, 2, 3], "reason": 1,
                                       "session": session}, now)
    # Attack 2: pre-issued offline tokens, for whatever the gateway will give and for the sweep.
    hh.app.send("preissue_request", {"session": session}, now)
    hh.app.send("preissue_request", {"session": session, "tracking_nos": sweep[:60], "fields": [1, 2, 3]},
                now)
    hh.wait(lambda: not hh.app.outbox, "send the sweep")
    hh.settle(until_cut_off=True)  # the gateway may suspend it before the broker acknowledges the last
    store = story.home.store

    def answered() -> int:
        row = store.one("SELECT COUNT(*) FROM requests WHERE device_id = ?", role.device_id)
        return int(row[0]) if row else 0

    wait_for(lambda: answered() >= len(sweep), 10)
    story.tally.scrape_requests = 4 * len(sweep) + 2
    row = store.one("SELECT COUNT(DISTINCT tracking_no) FROM releases WHERE device_id = ?", role.device_id)
    story.tally.scrape_records = int(row[0]) if row else 0
    row = store.one("SELECT COUNT(*) FROM requests WHERE device_id = ? AND strike = 1", role.device_id)
    story.tally.scrape_strikes = int(row[0]) if row else 0
    courier, device = (
        registry.courier_state(store, role.badge),
        registry.device_state(store, role.device_id),
    )
    story.say(
        "%d requests (fake scans, reveals, pre-issues): [bold]%d[/bold] parcels' data released; the first"
        " fake scans were strikes (%d recorded) and the third suspended the account: courier %s is"
        " [red]%s[/red], handheld %s is [red]%s[/red]"
        % (
            story.tally.scrape_requests,
            story.tally.scrape_records,
            story.tally.scrape_strikes,
            role.badge,
            courier,
            role.device_id,
            device,
        )
    )
    spy = story.spy
    wait_for(lambda: any(t == topics.ALARM for t, _ in spy.collect(0.1)), 3)
    alarms = [p for t, p in spy.seen if t == topics.ALARM]
    story.tally.alarm_seen = bool(alarms)
    if alarms:
        story.say(
            "alarm on %s: [red]%s[/red]" % (topics.ALARM, escape(alarms[-1].decode("ascii", "replace")))
        )
    row = store.one("SELECT incident_id FROM incidents WHERE courier_id = ? ORDER BY opened DESC", role.badge)
    if row is not None:
        story.tally.incident = str(row[0])
        story.say("the security officer opens the incident: whose data did the account see?")
        story.command("incidents", "show", story.tally.incident)
    hh.close()
    story.handhelds.pop(role.device_id, None)
    story.advance()


# ---- 5. IT revokes a lost handheld


def revoke(story: Story) -> None:
    story.c.rule("[bold]5. IT revokes a lost handheld, and it is wiped")
    lost_role = story.honest[0]
    hh = story.handhelds.get(lost_role.device_id)
    if hh is None:
        hh = story.handheld(lost_role)
    story.say(
        "%s reports handheld %s lost; it is still online (state: %s)"
        % (lost_role.badge, lost_role.device_id, escape(hh.app.state))
    )
    from firmware import app as appmod

    # The lost handheld keeps running (in someone's pocket) while IT types the command.
    stop, wiped_at = threading.Event(), list[float]()

    def pocket() -> None:
        while not stop.is_set():
            hh.step()
            if hh.app.state == appmod.WIPED and not wiped_at:
                wiped_at.append(time.monotonic())
            time.sleep(0.002)

    running = threading.Thread(target=pocket, name="lost-handheld", daemon=True)
    running.start()
    started = time.monotonic()
    try:
        story.command(
            "device", "revoke", lost_role.device_id, "--reason", "reported lost by " + lost_role.badge,
            "--as", IT,
        )
        wait_for(lambda: bool(wiped_at), 3)
    finally:
        stop.set()
        running.join(2)
    assert story.home is not None
    row = story.home.store.one(
        "SELECT outcome, detail FROM audit WHERE action = 'device-revoked' AND device = ? ORDER BY seq DESC",
        lost_role.device_id,
    )
    key_gone = hh.hal.keystore.get("master") is None
    route_gone = not any(n == "route" for n in hh.hal.flash.names())
    story.say(
        "handheld %s: [red]%s[/red] %s after the command (screen: %s); device key erased: %s;"
        " route on flash: %s"
        % (
            lost_role.device_id,
            hh.app.state,
            ms(wiped_at[0] - started if wiped_at else None),
            escape(hh.screen().strip()),
            key_gone,
            "gone" if route_gone else "still there",
        )
    )
    thief = MqttClient(
        story.broker,
        lost_role.config["mqtt"].get("username"),
        lost_role.config["mqtt"].get("password"),
        "thief-" + story.tag,
        timeout=3,
    )
    if thief.connected:
        thief.close()
    story.say(
        "the finder tries the handheld's broker password: %s"
        % ("[red]refused[/red]" if not thief.connected else "[yellow]connected[/yellow]")
    )
    story.command("device", "list")
    story.tally.revocation = {
        "device": lost_role.device_id,
        "via": "veilpost device revoke",
        "audit": None if row is None else "%s: %s" % (row[0], row[1]),
        "wiped": hh.app.state == appmod.WIPED and key_gone and route_gone,
        "wipe_ms": None if not wiped_at else round((wiped_at[0] - started) * 1000),
        "thief_reconnect_refused": not thief.connected,
    }
    if story.it is not None:  # an empty retained message takes the wipe off the broker
        story.it.publish(topics.cmd(lost_role.device_id), b"", retain=True)
    story.advance()
