"""`veilpost init`, `veilpost gateway run` and `veilpost gateway units`:
make a home folder, run the gateway service in it until interrupted, and
write the systemd units that run it (gateway/deploy/units.py)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.deploy import units
from gateway.home import init
from gateway.logs import configure_logging
from tools.cli.common import LOG_LEVEL_HELP, LOG_LEVELS, home_of, open_gateway_home, root_obj


@click.command("init")
@click.pass_context
def init_cmd(ctx: click.Context) -> None:
    """Create config, keys and database (keeps what already exists). With
    [keys] provider = "pkcs11", the keys are made in the token."""
    home = init(home_of(ctx))
    if home.config.keys.provider == "local":
        where = "%s (local key file, NOT for production: docs/keys.md)" % home.config.keys_dir
    else:
        where = "in " + home.keys.describe()
    click.echo("veilpost home ready: %s (config veilpost.toml, keys %s, database %s)"
               % (home.config.home, where, home.config.database))
    home.close()


@click.group("gateway")
def gateway_group() -> None:
    """The gateway service and its systemd units."""


@gateway_group.command("run")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              help=LOG_LEVEL_HELP + " Default: info.")
@click.pass_context
def gateway_run(ctx: click.Context, log_level: str | None) -> None:
    """Run the gateway until interrupted (SIGINT or SIGTERM stop it cleanly).

    It first runs the checks of `veilpost config check` that need no network
    and refuses to start, with one line, on any failure."""
    from gateway.supervisor import supervised

    configure_logging(log_level or root_obj(ctx).get("log_level") or "info")
    home = open_gateway_home(ctx)
    service = supervised(home)
    click.echo("gateway %s starting" % home.config.gateway_id, err=True)
    service.run_forever()


@gateway_group.command("units")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("/etc/systemd/system"),
              show_default=True, help="Folder the two unit files are written to.")
@click.option("--depot-config", type=click.Path(dir_okay=False, path_type=Path), default=units.DEFAULT_CONF,
              show_default=True, help="The mosquitto.conf that make-depot.sh rendered.")
@click.option("--veilpost", "veilpost_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The veilpost program the gateway unit runs (default: the one pip installed here).")
@click.option("--mosquitto", "mosquitto_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The mosquitto program (default: the installed one).")
def gateway_units(out: Path, depot_config: Path, veilpost_path: Path | None,
                  mosquitto_path: Path | None) -> None:
    """Write veilpost-gateway.service and veilpost-mosquitto.service with this
    machine's real paths (check them with `systemd-analyze verify`)."""
    for path in units.write_units(out, veilpost_path, mosquitto_path, depot_config):
        click.echo("wrote %s" % path)
    click.echo("then: systemctl daemon-reload && systemctl enable --now %s %s"
               % (units.MOSQUITTO_UNIT, units.GATEWAY_UNIT))


COMMANDS = (init_cmd, gateway_group)
