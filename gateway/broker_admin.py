"""The broker admin the gateway itself can use, if its home holds one: the
embedded broker's accounts file, or Mosquitto dynsec credentials in
HOME/broker/admin.secret (the same ones `veilpost device ...` uses). With
neither, the gateway refuses devices itself but cannot touch broker accounts.

`add_gateway_account` creates the gateway's own Mosquitto account (what
`veilpost broker add-gateway` runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.broker_access import BrokerAdmin, BrokerAdminError, new_password
from gateway.broker_accounts import ACCOUNTS_FILE, AccountsFileAdmin
from gateway.config import Config

TLS_PORT = 8883


def has_admin(cfg: Config) -> bool:
    """Whether the gateway of this config has broker admin credentials (without connecting)."""
    return (cfg.mqtt.broker == "embedded" or (cfg.home / ACCOUNTS_FILE).exists()
            or (cfg.home / "broker" / "admin.secret").exists())


def open_admin(cfg: Config) -> BrokerAdmin | None:
    """A BrokerAdmin for the gateway's broker, or None when it has no admin credentials."""
    accounts = cfg.home / ACCOUNTS_FILE
    if cfg.mqtt.broker == "embedded" or accounts.exists():
        return AccountsFileAdmin(accounts)
    secret_file = cfg.home / "broker" / "admin.secret"
    if not secret_file.exists():
        return None
    from gateway.deploy.depot import read_admin_secret
    from gateway.dynsec import DynsecAdmin

    user, password = read_admin_secret(secret_file)
    ca = cfg.home / "broker" / "ca.crt"
    tls_ca = str(ca) if ca.exists() and cfg.mqtt.port == TLS_PORT else None
    try:
        return DynsecAdmin(cfg.mqtt.broker, cfg.mqtt.port, user, password, ca_file=tls_ca)
    except BrokerAdminError:
        return None


GATEWAY_USERNAME = "veilpost-gateway"
PASSWORD_FILE = "mqtt.password"


@dataclass(frozen=True)
class GatewayAccount:
    username: str
    password: str
    created: bool  # False: the account and the home's password file were there already


def add_gateway_account(home: Path, host: str, port: int, username: str = GATEWAY_USERNAME,
                        ca_file: Path | None = None) -> GatewayAccount:
    """The gateway's own account on a Mosquitto with dynamic security, made
    with the home's admin secret (HOME/broker/admin.secret, from make-depot.sh
    --veilpost-home). Its password goes to HOME/mqtt.password (0600) and the
    home's config points at the broker. Safe to run again: an account whose
    password the home holds is kept; one whose password was lost gets a new one."""
    from gateway import config as config_mod
    from gateway.deploy.depot import DepotSetupError, read_admin_secret
    from gateway.dynsec import DynsecAdmin
    from gateway.permissions import write_private

    home = Path(home)
    secret_file = home / "broker" / "admin.secret"
    if not secret_file.exists():
        raise DepotSetupError("no broker admin secret in %s: run make-depot.sh with --veilpost-home %s"
                              % (secret_file, home))
    user, admin_password = read_admin_secret(secret_file)
    password_path = home / PASSWORD_FILE
    kept = password_path.read_text(encoding="utf-8").strip() if password_path.exists() else ""
    try:
        tls_ca = str(ca_file) if ca_file else None
        with DynsecAdmin(host, port, user, admin_password, ca_file=tls_ca) as admin:
            exists = username in admin.usernames()
            if exists and kept:
                password, created = kept, False
            else:
                password, created = new_password(), True
                if exists:
                    admin.set_password(username, password)
                else:
                    admin.add_gateway(username, password)
    except BrokerAdminError as e:
        raise DepotSetupError("gateway account %s on %s:%d: %s" % (username, host, port, e)) from None
    write_private(password_path, password + "\n")
    config_mod.set_values(home, {"mqtt.broker": host, "mqtt.port": port, "mqtt.username": username,
                                 "mqtt.password": "", "mqtt.password_file": PASSWORD_FILE})
    return GatewayAccount(username, password, created)
