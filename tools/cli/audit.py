"""`veilpost audit verify|export|search|key|witness|witness-account`: the
hash-chained audit log, its signed checkpoints and their witness
(docs/audit.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from gateway import audit as audit_mod
from gateway import audit_query, operators
from gateway import config as config_mod
from gateway.home import Home
from protocol.errors import ConfigurationError
from tools.cli.common import (
    EXIT_FAILED,
    SINCE_HELP,
    emit,
    home_of,
    json_option,
    open_gateway_home,
    out_file,
    parse_since,
    print_json,
    wants_json,
)


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log, its checkpoints and their witness."""


@audit_group.command("verify")
@click.option("--witness", "witnesses", multiple=True, metavar="PATH_OR_URL",
              help="Also check the checkpoints a witness holds: its folder or file, or its address"
                   " (http://HOST:PORT); repeat for several.")
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, witnesses: tuple[str, ...]) -> None:
    """Check the whole chain and the signed checkpoints; non-zero on any break.
    With --witness, also fail when the log no longer holds, or holds
    differently, an entry a witness saw signed (truncated, emptied,
    reordered or rewritten since)."""
    from gateway.witness import load_witnessed

    home = open_gateway_home(ctx)
    try:
        held: list[audit_mod.Checkpoint] = []
        for source in witnesses:
            found = load_witnessed(source)
            if not found:
                click.echo("witness %s holds no checkpoints yet: nothing to compare" % source, err=True)
            held += found
        started, cpu = time.monotonic(), time.process_time()
        verdict = audit_mod.verify(home.store, home.keys.public_key(), held if witnesses else None)
        wall, cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        home.close()
    if wants_json(ctx):
        print_json({"ok": verdict.ok, "entries": verdict.entries, "checkpoints": verdict.checkpoints,
                    "witnessed": verdict.witnessed, "first_bad_entry": verdict.first_bad,
                    "first_bad_checkpoint": verdict.bad_checkpoint, "problem": verdict.problem,
                    "versions": {str(k): n for k, n in sorted(verdict.versions.items())},
                    "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)})
        if not verdict.ok:
            sys.exit(EXIT_FAILED)
        return
    if not verdict.ok:
        click.echo("audit log BROKEN at entry %s: %s" % (verdict.first_bad, verdict.problem), err=True)
        sys.exit(EXIT_FAILED)
    tail = ", %d witnessed checkpoints matched" % verdict.witnessed if witnesses else ""
    click.echo("audit log intact: %d entries, %d signed checkpoints%s"
               % (verdict.entries, verdict.checkpoints, tail))


@audit_group.command("export")
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.pass_context
def audit_export(ctx: click.Context, output: str | None) -> None:
    """Write every entry as JSON lines: field names, ISO times (UTC), the
    structured detail, the schema version and the hashes."""
    home = open_gateway_home(ctx)
    try:
        out = out_file(output)
        n = audit_query.export(home.store, out)
    finally:
        home.close()
    if out is not sys.stdout:
        out.close()
        click.echo("exported %d entries" % n, err=True)


def _actor(home: Home, courier: str | None, person: str | None) -> str:
    """The pseudonym to search for: a courier's badge or a named person, computed
    through the gateway's key provider (the log holds only pseudonyms)."""
    if courier and person:
        raise click.UsageError("give --courier or --by, not both")
    if courier:
        return home.audit.person("courier", courier)
    if person:
        found = [p for p in operators.listing(home.store) if p.name == person]
        if not found:
            raise ConfigurationError("%s is not on `veilpost operator list`" % person)
        return home.audit.person(found[0].kind, found[0].name)
    return ""


@audit_group.command("search")
@click.option("--courier", metavar="BADGE", default=None, help="Entries of this courier (by badge).")
@click.option("--by", "person", metavar="NAME", default=None,
              help="Entries of this operator or officer (a name on `veilpost operator list`).")
@click.option("--actor", default="", help="Entries of this actor as the log names it (a pseudonym, or"
                                          " gateway, sentinel, device, retention).")
@click.option("--device", default="", help="Entries about this handheld or printer.")
@click.option("--parcel", default="", help="Entries about this tracking number.")
@click.option("--action", default="", help="Entries of this action (reveal, login, device-revoke, ...).")
@click.option("--outcome", default="", help="Entries with this outcome (ok, granted, denied, ...).")
@click.option("--since", default=None, help="From this time on. " + SINCE_HELP)
@click.option("--until", default=None, help="Before this time (same forms as --since).")
@click.option("--limit", type=click.IntRange(1, audit_query.MAX_RESULTS), default=1000, show_default=True,
              help="At most this many entries, oldest first.")
@json_option
@click.pass_context
def audit_search(ctx: click.Context, courier: str | None, person: str | None, actor: str, device: str,
                 parcel: str, action: str, outcome: str, since: str | None, until: str | None,
                 limit: int) -> None:
    """Find entries by person, device, parcel, action, outcome and time.
    People are matched by their pseudonym, computed here from the badge or
    name; the log itself never holds either."""
    now = time.time()
    home = open_gateway_home(ctx)
    try:
        who = _actor(home, courier, person) or actor
        q = audit_query.Query(actor=who, device=device, parcel=parcel, action=action, outcome=outcome,
                              since=parse_since(since, now) if since else None,
                              until=parse_since(until, now) if until else None, limit=limit)
        found = list(audit_query.search(home.store, q))
    finally:
        home.close()
    emit(ctx, found, lambda e: "%6d %s %-22s %-16s %-14s %-12s %-8s %s" % (
        e["seq"], e["at"], e["actor"], e["device"] or "-", e["action"], e["parcel"] or "-", e["outcome"],
        _detail(e["detail"])), "no entries match")


def _detail(detail: object) -> str:
    import json

    text = json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else ""
    return text if len(text) <= 80 else text[:77] + "..."


@audit_group.command("key")
@click.pass_context
def audit_key(ctx: click.Context) -> None:
    """Print the gateway's public checkpoint key (64 hex digits), to give a
    witness (`veilpost audit witness --key`)."""
    from cryptography.hazmat.primitives import serialization

    home = open_gateway_home(ctx)
    try:
        raw = home.keys.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    finally:
        home.close()
    click.echo(raw.hex())


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter("%r is not HOST:PORT" % text, param_hint=what)
    return host.strip("[]"), int(port)


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise ConfigurationError("%s %s cannot be read: %s" % (what, path, why)) from None


@audit_group.command("witness")
@click.option("--store", "folder", type=click.Path(file_okay=False), required=True,
              help="The witness's own folder (created 0700); its checkpoints.jsonl is only appended to.")
@click.option("--key", required=True,
              help="The gateway's public key: 64 hex digits from `veilpost audit key`, or @FILE"
                   " holding them.")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Take checkpoints as HTTP POSTs here (and serve GET /checkpoints); e.g. 127.0.0.1:8470.")
@click.option("--broker", default=None, metavar="HOST:PORT",
              help="Subscribe to the retained checkpoints on this MQTT broker.")
@click.option("--username", default="vp-witness", show_default=True, help="Broker account (read-only).")
@click.option("--password-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the broker account's password (`veilpost audit witness-account`).")
@click.option("--ca", type=click.Path(dir_okay=False), default=None,
              help="CA certificate for TLS to the broker.")
@click.option("--for", "seconds", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop after this many seconds (default: until Ctrl-C or SIGTERM).")
def audit_witness(folder: str, key: str, listen: str | None, broker: str | None, username: str,
                  password_file: str | None, ca: str | None, seconds: float | None) -> None:
    """Run a witness: keep every checkpoint the gateway signs, in a folder of
    its own (on another host in production). Refuses checkpoints not signed
    by --key, and any that go backwards or fork."""
    import signal
    import threading

    from gateway.witness import BrokerSource, Witness, WitnessLog, public_key_from_text

    text = _read(key[1:], "--key") if key.startswith("@") else key
    log = WitnessLog(Path(folder), public_key_from_text(text))
    source = None
    if broker:
        host, port = _host_port(broker, "--broker")
        password = _read(password_file, "--password-file").strip() if password_file else ""
        source = BrokerSource(host, port, username, password, ca or "")
    witness = Witness(log, _host_port(listen, "--listen") if listen else None, source)
    witness.start()
    where = ", ".join(w for w in (
        "http://%s:%d/checkpoint" % (listen.rpartition(":")[0], witness.port) if listen else "",
        "vp/v1/audit/checkpoint on %s" % broker if broker else "") if w)
    newest = log.newest.seq if log.newest else 0
    click.echo("witness keeping %s (%d checkpoints, newest at entry %d); hearing %s"
               % (log.path, len(log.held), newest, where), err=True)
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_a: done.set())
    try:
        done.wait(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        witness.stop()


@audit_group.command("witness-account")
@click.pass_context
def audit_witness_account(ctx: click.Context) -> None:
    """Make (once) the broker account vp-witness, which may only subscribe to
    the checkpoint topic, and print where its password file is: copy that
    file to the witness's host."""
    from gateway.alarm_watch import witness_credentials

    cfg = config_mod.load(home_of(ctx))
    username, _password, secret = witness_credentials(cfg)
    click.echo("broker account %s; password in %s" % (username, secret))


COMMANDS = (audit_group,)
