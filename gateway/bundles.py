"""Enrolment bundles: provision.json (a handheld's master secret and broker
password) and the depot CA, written by `veilpost device provision` under
HOME/bundles/DEVICE_ID for `veilpost firmware deploy` to copy onto the
handheld. A bundle is a live secret, so it is not kept: deploying it shreds
it, and so does the gateway when the handheld first speaks under its key
(activation; the public depot CA may stay): from then on the secret is only in the handheld and, wrapped
under the key provider, in the database."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER = "bundles"


def bundle_of(home: Path, device_id: str) -> Path:
    return Path(home) / FOLDER / device_id


def shred(path: Path) -> None:
    """Overwrite a bundle file before removing it: it held a master secret."""
    if path.exists():
        with open(path, "r+b") as f:
            f.write(bytes(path.stat().st_size))
            f.flush()
            os.fsync(f.fileno())
        path.unlink()


def shred_secrets(bundle: Path) -> bool:
    """The bundle's secrets overwritten and gone (the depot CA, public, may
    stay). True if there were any."""
    had = (bundle / "provision.json").exists()
    shred(bundle / "provision.json")
    shred(bundle / "provision.json.tmp")
    with contextlib.suppress(OSError):
        bundle.rmdir()
    return had


def shred_bundle(bundle: Path) -> bool:
    """A bundle folder gone: its secret overwritten first. True if there was one."""
    had = shred_secrets(bundle)
    (bundle / "ca.crt").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        bundle.rmdir()
    return had
