"""Deploying the handheld without its bytecode in RAM: a MicroPython
manifest and an ESP32 board definition that freeze firmware/ and protocol/
into the firmware image (`veilpost firmware build --frozen`), and a ROMFS
image built by mpremote's own builder for boards that have a ROMFS
partition (`veilpost firmware deploy --romfs`). Frozen or ROMFS bytecode
runs in place from flash; the .mpy files on the filesystem stay for
development. docs/handheld.md has the ESP-IDF build step by step."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

BOARD = "VEILPOST_ESP32"
ROMFS_IMAGE = "veilpost.romfs"

# The board: the generic ESP32 (no PSRAM) with our manifest frozen in.
MPCONFIGBOARD_CMAKE = """# Written by `veilpost firmware build --frozen`.
set(IDF_TARGET esp32)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
"""
MPCONFIGBOARD_H = """// Written by `veilpost firmware build --frozen`.
#define MICROPY_HW_BOARD_NAME "veilpost handheld"
#define MICROPY_HW_MCU_NAME "ESP32"
"""
BOARD_JSON = """{
    "deploy": [],
    "docs": "",
    "features": ["WiFi"],
    "images": [],
    "mcu": "esp32",
    "product": "veilpost handheld (ESP32, no PSRAM)",
    "url": "",
    "vendor": "veilpost"
}
"""


def manifest_text(sources: list[Path], repo: Path) -> str:
    """A MicroPython manifest: the port's own modules, then every device
    source frozen under its package path, compiled at -O3. main.py stays on
    the filesystem (the port runs it from there); it only imports."""
    lines = ["# Written by `veilpost firmware build --frozen`: the handheld frozen into the image.",
             'include("$(PORT_DIR)/boards/manifest.py")']
    for package in ("firmware", "protocol"):
        files = [rel.relative_to(package).as_posix() for rel in sources if rel.parts[0] == package]
        lines.append(f"package({package!r}, files={files!r}, base_path={str(repo)!r}, opt=3)")
    return "\n".join(lines) + "\n"


def write_board(out: Path, sources: list[Path], repo: Path, boot_main: str) -> Path:
    """out/boards/VEILPOST_ESP32 with the board files and its manifest."""
    board = out / "boards" / BOARD
    board.mkdir(parents=True, exist_ok=True)
    (board / "manifest.py").write_text(manifest_text(sources, repo), encoding="utf-8")
    (board / "main.py").write_text(boot_main, encoding="utf-8")
    (board / "mpconfigboard.cmake").write_text(MPCONFIGBOARD_CMAKE, encoding="utf-8")
    (board / "mpconfigboard.h").write_text(MPCONFIGBOARD_H, encoding="utf-8")
    (board / "board.json").write_text(BOARD_JSON, encoding="utf-8")
    return board


def romfs_image(build_dir: Path, out: Path) -> tuple[Path, int]:
    """A ROMFS image of the built .mpy tree (firmware/, protocol/), made by
    mpremote's builder; (path, size). The board mounts it at /rom, which is
    on sys.path."""
    from mpremote.romfs import make_romfs

    stage = out.parent / (out.name + ".stage")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        for package in ("firmware", "protocol"):
            shutil.copytree(build_dir / package, stage / package)
        with contextlib.redirect_stdout(io.StringIO()):    # its tree listing: not ours to print
            image = make_romfs(str(stage), mpy_cross=False)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    out.write_bytes(image)
    return out, len(image)


def romfs_deploy_commands(mpremote: str, port: str, image: Path | None, build_dir: Path,
                          bundle: Path | None, data_dir: str) -> list[list[str]]:
    """The mpremote invocations for a ROMFS deploy: the image into the ROMFS
    partition, main.py and the bundle onto the filesystem, then a reset.
    With no image (a frozen firmware is flashed already), all but the first."""
    base = [mpremote, "connect", port]
    cmds = [] if image is None else [[*base, "romfs", "deploy", str(image)]]
    cmds += [
        [*base, "exec", "import os\ntry:\n    os.mkdir('" + data_dir + "')\nexcept OSError:\n    pass\n"],
        [*base, "fs", "cp", str(build_dir / "main.py"), ":main.py"],
    ]
    if bundle is not None:
        files = [str(p) for p in sorted(bundle.iterdir()) if p.is_file()]
        cmds.append([*base, "fs", "cp", *files, ":" + data_dir + "/"])
    cmds.append([*base, "reset"])
    return cmds
