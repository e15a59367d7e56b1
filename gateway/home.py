"""A gateway's home folder opened: config, keys, database, vault and audit
log, wired together once so the CLI, the service and tests share it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway import config as config_mod
from gateway.audit import AuditLog
from gateway.config import Config
from gateway.keys import GatewayKeys, Keyring, KeyUnavailable
from gateway.permissions import private_dir, secure_tree
from gateway.store import Store
from gateway.stores import open_store
from gateway.vault import Vault


@dataclass
class Home:
    config: Config
    keys: Keyring
    store: Store
    vault: Vault
    audit: AuditLog
    owns_keys: bool = True  # False when it shares another home's keyring (a token session)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def close(self) -> None:
        self.store.close()
        if self.owns_keys:
            self.keys.close()


def open_keys(cfg: Config) -> Keyring:
    """The keyring [keys] provider names: the local key files or a PKCS#11 token."""
    if cfg.keys.provider == "pkcs11":
        from gateway.keys_pkcs11 import TokenKeys

        k = cfg.keys
        return TokenKeys.open(cfg.home, k.module, k.token_label, k.pin_file, k.pin_env)
    return GatewayKeys(cfg.keys_path)


def init(path: Path) -> Home:
    """Create config, keys (in the token, with the pkcs11 provider) and
    database where missing (safe to run twice)."""
    path = Path(path)
    private_dir(path)
    config_mod.write_default(path)
    secure_tree(path)  # also what an older version or another tool left readable
    keys = open_keys(config_mod.load(path))
    try:
        keys.create()
    finally:
        keys.close()
    return open_home(path)


def open_home(path: Path) -> Home:
    cfg = config_mod.load(Path(path))
    keys = open_keys(cfg)
    try:
        if not keys.exists():
            raise KeyUnavailable("no keys in %s: run `veilpost init` first" % keys.describe())
        store = open_store(cfg.store or cfg.database_path, cfg.durability)
    except BaseException:
        keys.close()
        raise
    return Home(cfg, keys, store, Vault(keys.kek), AuditLog(keys))
