"""Who may read a gateway's home: its owner only. Every file under it that
holds a secret (veilpost.toml with a broker password, keys, the broker
accounts file, the broker admin secret, bundles, the database) is created
0600 in folders 0700, whatever the umask: modes are given at creation, never
left to the process's umask, and `secure_tree` tightens what older versions
or other tools left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# What holds a secret, by name under the home (the rest is logs and receipts;
# veilpost.toml holds one when it holds the broker password).
SECRET_NAMES = frozenset({"broker-accounts.json", "provision.json", "spool.sqlite3"})
SECRET_FOLDERS = frozenset({"keys", "broker"})
SECRET_SUFFIXES = (".db", ".db-wal", ".db-shm", ".sqlite3-wal", ".sqlite3-shm",
                   ".secret", ".key", ".password")


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) owner-only; tighten it if it exists."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes | str) -> Path:
    """Replace `path` atomically with `data`, readable by its owner only."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # O_CREAT's mode passes through the umask; this does not
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT) -> int:
    """os.open for a private file: created 0600 (an existing file keeps its owner)."""
    fd = os.open(path, flags, PRIVATE_FILE)
    if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
        os.fchmod(fd, PRIVATE_FILE)
    return fd


def is_loose(path: Path) -> bool:
    """Whether anyone but the owner may read, write or enter `path`."""
    return bool(stat.S_IMODE(Path(path).stat().st_mode) & 0o077)


def holds_secret(relative: Path) -> bool:
    """Whether a file at this path under a home holds a secret."""
    return (relative.name in SECRET_NAMES or relative.name.endswith(SECRET_SUFFIXES)
            or (len(relative.parts) > 1 and relative.parts[0] in SECRET_FOLDERS))


def loose_secrets(home: Path, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Secret files under `home` (and `extra` ones) that others may read, and
    the folders holding them that others may enter; `home` itself first."""
    home = Path(home)
    found: list[Path] = [home] if is_loose(home) else []
    folders: set[Path] = set()
    for path in [*sorted(home.rglob("*")), *extra]:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            relative = path.relative_to(home)
        except ValueError:
            relative = Path(path.name)
        if holds_secret(relative) or path in extra:
            if is_loose(path):
                found.append(path)
            folders.update(p for p in path.parents if p != home and home in p.parents)
    found += [f for f in sorted(folders) if is_loose(f)]
    return found


def tighten(paths: list[Path]) -> list[Path]:
    """Make each path owner-only (0700 folders, 0600 files); returns what it
    could not change (another owner)."""
    stuck = []
    for path in paths:
        try:
            os.chmod(path, PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
        except PermissionError:
            stuck.append(path)
    return stuck


def secure_tree(folder: Path) -> list[Path]:
    """Make `folder` and everything under it owner-only (folders 0700, files
    0600; symbolic links are left alone and not followed). Returns what changed."""
    changed: list[Path] = []
    folder = Path(folder)

    def tighten(path: Path, mode: int) -> None:
        if stat.S_IMODE(path.lstat().st_mode) != mode:
            os.chmod(path, mode)
            changed.append(path)

    tighten(folder, PRIVATE_DIR)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(root) / name
            if not path.is_symlink():
                tighten(path, PRIVATE_DIR)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink() and path.is_file():
                tighten(path, PRIVATE_FILE)
    return changed
