"""`veilpost parcel list`: parcels as the label shows them, masked fields
only (never the vault)."""

from __future__ import annotations

import click

from tools.cli.common import emit, json_option, local_time, open_gateway_home


@click.group("parcel")
def parcel_group() -> None:
    """Parcels, masked."""


@parcel_group.command("list")
@click.option("--route", "route_id", default=None, help="Only the parcels of this route.")
@click.option("--state", default=None,
              type=click.Choice(["out_for_delivery", "delivered", "shredded"]),
              help="Only parcels in this state.")
@json_option
@click.pass_context
def parcel_list(ctx: click.Context, route_id: str | None, state: str | None) -> None:
    """Parcels with their masked receiver, delivery window, state and label
    number. Plaintext never leaves the vault here."""
    where, args = [], []
    if route_id:
        where.append("route_id = ?")
        args.append(route_id)
    if state:
        where.append("state = ?")
        args.append(state)
    home = open_gateway_home(ctx)
    try:
        rows = home.store.all(
            "SELECT tracking_no, route_id, sort_code, state, window_start, window_end, label_no,"
            " masked_receiver_name, masked_receiver_phone, masked_receiver_address"
            " FROM parcels" + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY route_id, tracking_no",
            *args)
    finally:
        home.close()
    found = [{"tracking_no": r[0], "route": r[1], "sort_code": r[2], "state": r[3], "window_start": r[4],
              "window_end": r[5], "label_no": r[6],
              "receiver": {"name": r[7], "phone": r[8], "address": r[9]}} for r in rows]
    emit(ctx, found, lambda p: "%s  %-8s %-16s %s %s %s  window %s to %s  label %s" % (
        p["tracking_no"], p["route"], p["state"], p["receiver"]["name"], p["receiver"]["phone"],
        p["receiver"]["address"], local_time(p["window_start"]), local_time(p["window_end"]),
        "#%d" % p["label_no"] if p["label_no"] else "not printed"),
        "no parcels" + (" on route %s" % route_id if route_id else ""))


COMMANDS = (parcel_group,)
