"""`veilpost alarms watch|list|events`: the sentinel's alarms live (a
subscription to vp/v1/alarm under the read-only account vp-alarms, see
gateway/alarm_watch.py), the alarms it recorded, and the security events
(lockouts, damaged-label reveals) for the security officer."""

from __future__ import annotations

import time

import click

from gateway import config as config_mod
from gateway.alarm_watch import AlarmWatch, describe
from tools.cli.common import (
    SINCE_HELP,
    emit,
    home_of,
    json_option,
    local_time,
    open_gateway_home,
    parse_since,
    print_json,
    wants_json,
)


@click.group("alarms")
def alarms_group() -> None:
    """Alarms the sentinel raised, and security events."""


@alarms_group.command("watch")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many alarms.")
@click.option("--for", "seconds", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop after this many seconds.")
@json_option
@click.pass_context
def alarms_watch(ctx: click.Context, count: int | None, seconds: float | None) -> None:
    """Print each alarm as it is raised, one line each (--json: one JSON
    object a line), until Ctrl-C. Connects as the read-only broker account
    vp-alarms, made on first use with the home's broker admin."""
    cfg = config_mod.load(home_of(ctx))
    watch = AlarmWatch(cfg)
    as_json = wants_json(ctx)
    click.echo("watching vp/v1/alarm on %s as vp-alarms (Ctrl-C stops)" % watch.where, err=True)
    deadline = None if seconds is None else time.monotonic() + seconds
    seen = 0
    try:
        while count is None or seen < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            while not watch.events.empty():
                click.echo(watch.events.get(), err=True)
            alarm = watch.next(0.5 if left is None else min(0.5, left))
            if alarm is None:
                continue
            seen += 1
            if as_json:
                print_json(alarm)
            else:
                click.echo(describe(alarm))
    except KeyboardInterrupt:
        pass
    finally:
        watch.close()


@alarms_group.command("list")
@click.option("--since", default="24h", show_default=True, help=SINCE_HELP)
@json_option
@click.pass_context
def alarms_list(ctx: click.Context, since: str) -> None:
    """The alarms recorded since a time: kind, courier, device, incident."""
    start = parse_since(since)
    home = open_gateway_home(ctx)
    try:
        rows = home.store.all("SELECT alarm_id, at, kind, courier_id, device_id, detail FROM alarms"
                              " WHERE at >= ? ORDER BY at", start)
    finally:
        home.close()
    found = [{"alarm": r[0], "at": r[1], "kind": r[2], "courier": r[3], "device": r[4],
              "incident": r[5] if str(r[5]).startswith("INC-") else "",
              "detail": "" if str(r[5]).startswith("INC-") else r[5]} for r in rows]
    emit(ctx, found, lambda a: "%s  %s  %s  courier %s  device %s  %s" % (
        local_time(a["at"]), a["alarm"], a["kind"], a["courier"] or "-", a["device"] or "-",
        "incident " + a["incident"] if a["incident"] else a["detail"]),
        "no alarms since %s" % local_time(start))


@alarms_group.command("events")
@click.option("--since", default="24h", show_default=True, help=SINCE_HELP)
@click.option("--kind", default=None, help="Only events of this kind (e.g. pin-lockout, damaged-label).")
@json_option
@click.pass_context
def alarms_events(ctx: click.Context, since: str, kind: str | None) -> None:
    """Security events since a time (lockouts, reveals of damaged labels):
    what the officer should look at even when nobody was suspended."""
    start = parse_since(since)
    home = open_gateway_home(ctx)
    try:
        rows = home.store.all("SELECT event_id, at, kind, courier_id, device_id, tracking_no, detail, state"
                              " FROM security_events WHERE at >= ?" + (" AND kind = ?" if kind else "")
                              + " ORDER BY at", start, *([kind] if kind else []))
    finally:
        home.close()
    found = [{"event": r[0], "at": r[1], "kind": r[2], "courier": r[3], "device": r[4], "tracking_no": r[5],
              "detail": r[6], "state": r[7]} for r in rows]
    emit(ctx, found, lambda e: "%s  %s  %s  courier %s  device %s  %s%s" % (
        local_time(e["at"]), e["event"], e["kind"], e["courier"] or "-", e["device"] or "-",
        "parcel %s  " % e["tracking_no"] if e["tracking_no"] else "", e["detail"]),
        "no security events since %s" % local_time(start))


COMMANDS = (alarms_group,)
