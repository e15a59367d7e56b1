"""A gateway's home folder opened: config, keys, database, vault and audit
log, wired together once so the CLI, the service and tests share it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway import config as config_mod
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.keys import GatewayKeys, KeyUnavailable
from gateway.permissions import private_dir, secure_tree
from gateway.store import Store
from gateway.stores import open_store
from gateway.vault import Vault


@dataclass
class Home:
    config: Config
    keys: GatewayKeys
    store: Store
    vault: Vault
    audit: AuditLog

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def close(self) -> None:
        self.store.close()


def init(path: Path) -> Home:
    """Create config, keys and database where missing (safe to run twice)."""
    path = Path(path)
    private_dir(path)
    config_mod.write_default(path)
    secure_tree(path)  # also what an older version or another tool left readable
    cfg = config_mod.load(path)
    GatewayKeys(cfg.keys_path).create()
    return open_home(path)


def open_home(path: Path) -> Home:
    cfg = config_mod.load(Path(path))
    keys = GatewayKeys(cfg.keys_path)
    if not keys.kek.exists():
        raise KeyUnavailable("no keys in %s: run `veilpost init` first" % cfg.keys_path)
    store = open_store(cfg.store or cfg.database_path, cfg.durability)
    return Home(cfg, keys, store, Vault(keys.kek), AuditLog(keys))
