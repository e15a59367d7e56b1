"""A SoftHSM2 token of its own in a folder, for tests and benchmarks: its own
softhsm2.conf and token directory (SOFTHSM2_CONF points at it while it is
in use), initialised with `softhsm2-util`, and a gateway home whose [keys]
section names it (the PIN in a 0600 file beside the config)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gateway import config as config_mod
from gateway.home import Home, init
from gateway.permissions import private_dir, write_private

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")


def softhsm_module() -> str | None:
    """The SoftHSM2 PKCS#11 module, if it and softhsm2-util are installed."""
    if shutil.which("softhsm2-util") is None:
        return None
    return next((m for m in MODULES if os.path.isfile(m)), None)


@dataclass
class SoftToken:
    folder: Path
    module: str
    label: str
    pin: str
    so_pin: str

    @property
    def conf(self) -> Path:
        return self.folder / "softhsm2.conf"

    def use(self) -> None:
        """Point this process's SoftHSM2 at this token's folder (read when the module initialises)."""
        os.environ["SOFTHSM2_CONF"] = str(self.conf)


def make_token(folder: Path, label: str = "veilpost-test") -> SoftToken:
    """A fresh token in `folder` (its own token directory), selected for this process."""
    module = softhsm_module()
    if module is None:
        raise RuntimeError("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    private_dir(folder)
    tokens = folder / "tokens"
    private_dir(tokens)
    write_private(folder / "softhsm2.conf", ("directories.tokendir = %s\nobjectstore.backend = file\n"
                                            "log.level = ERROR\nslots.removable = false\n" % tokens).encode())
    token = SoftToken(folder, module, label, "%06d" % secrets.randbelow(10**6), secrets.token_hex(8))
    env = dict(os.environ, SOFTHSM2_CONF=str(token.conf))
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", token.so_pin,
                    "--pin", token.pin], env=env, check=True, capture_output=True, timeout=30)
    token.use()
    return token


def configure(folder: Path, token: SoftToken) -> None:
    """Write a home's config naming the token, the PIN in pin_file (0600)."""
    private_dir(folder)
    config_mod.write_default(folder)
    write_private(folder / "token.pin", (token.pin + "\n").encode())
    config_mod.set_values(folder, {"keys.provider": "pkcs11", "keys.module": token.module,
                                   "keys.token_label": token.label, "keys.pin_file": "token.pin"})


def token_home(folder: Path, token: SoftToken) -> Home:
    """`veilpost init` of a home whose keys are in the token."""
    configure(folder, token)
    return init(folder)
