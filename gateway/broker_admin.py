"""The broker admin the gateway itself can use, if its home holds one: the
embedded broker's accounts file, or Mosquitto dynsec credentials in
HOME/broker/admin.secret (the same ones `veilpost device ...` uses). With
neither, the gateway refuses devices itself but cannot touch broker accounts."""

from __future__ import annotations

from gateway.broker_access import BrokerAdmin, BrokerAdminError
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
