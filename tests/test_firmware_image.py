"""`veilpost firmware build --frozen` (a MicroPython manifest and an ESP32
board definition that freeze the firmware) and `deploy --romfs` (a ROMFS
image made by mpremote's builder, deployed with mpremote): what can be
checked without a board, the manifest, the image read back record by
record, and the commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tools.cli import main
from tools.cli.firmware import device_sources


def _uint(data: bytes, i: int) -> tuple[int, int]:
    n = 0
    while True:
        b = data[i]
        i += 1
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            return n, i


def read_romfs(image: bytes) -> dict[str, bytes]:
    """path -> content of every file in a ROMFS image (MicroPython's vfs.VfsRom format)."""
    assert image[:3] == b"\xd2\xcd\x31", "not a ROMFS image"
    size, i = _uint(image, 3)
    assert i + size == len(image)
    out: dict[str, bytes] = {}

    def records(data: bytes, prefix: str) -> None:
        j = 0
        while j < len(data):
            kind, j = _uint(data, j)
            length, j = _uint(data, j)
            payload, j = data[j:j + length], j + length
            name_len, k = _uint(payload, 0)
            name = payload[k:k + name_len].decode()
            rest = payload[k + name_len:]
            if kind == 4:                      # a directory
                records(rest, prefix + name + "/")
            elif kind == 5:                    # a file: one verbatim data record
                dkind, m = _uint(rest, 0)
                dlen, m = _uint(rest, m)
                assert dkind == 2
                out[prefix + name] = rest[m:m + dlen]

    records(image[i:], "")
    return out


@pytest.fixture(scope="module")
def frozen_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("fw") / "build"
    result = CliRunner().invoke(main, ["firmware", "build", "--frozen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_the_frozen_manifest_freezes_every_device_source_and_nothing_else(
        frozen_build: tuple[Path, str]) -> None:
    out, output = frozen_build
    board = out / "boards" / "VEILPOST_ESP32"
    manifest = (board / "manifest.py").read_text()
    assert manifest.splitlines()[1] == 'include("$(PORT_DIR)/boards/manifest.py")'
    namespace: dict[str, list[tuple[str, list[str]]]] = {"packages": []}
    code = manifest.replace("include(", "_include(")
    exec(code, {"_include": lambda path: None,
                "package": lambda name, files, base_path, opt: namespace["packages"].append((name, files))})
    frozen = {f"{name}/{f}" for name, files in namespace["packages"] for f in files}
    assert frozen == {rel.as_posix() for rel in device_sources()}
    assert not any("hal/host" in f for f in frozen)
    assert "set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)" in \
        (board / "mpconfigboard.cmake").read_text()
    assert "MICROPY_HW_BOARD_NAME" in (board / "mpconfigboard.h").read_text()
    assert "firmware.hal.esp32.start" in (board / "main.py").read_text()
    listed = [line.split()[1] for line in output.splitlines() if line.strip().startswith("frozen ")]
    assert "firmware/device" in listed and "protocol/session" in listed and len(listed) == len(frozen)


def test_the_romfs_image_holds_the_built_bytecode_file_for_file(frozen_build: tuple[Path, str]) -> None:
    out, _ = frozen_build
    result = CliRunner().invoke(main, ["firmware", "deploy", "--port", "/dev/ttyUSB0", "--romfs", "--dry-run",
                                       "--build-dir", str(out)])
    assert result.exit_code == 0, result.output
    files = read_romfs((out / "veilpost.romfs").read_bytes())
    built = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.mpy")}
    assert files == built
    lines = [line for line in result.output.splitlines() if "mpremote" in line]
    assert lines[0].endswith("connect /dev/ttyUSB0 romfs deploy " + str(out / "veilpost.romfs"))
    assert lines[-1].endswith("connect /dev/ttyUSB0 reset")
    assert not any(" cp -r " in line for line in lines)        # no .mpy files on the filesystem


def test_a_frozen_deploy_copies_only_main_and_the_bundle(frozen_build: tuple[Path, str]) -> None:
    out, _ = frozen_build
    result = CliRunner().invoke(main, ["firmware", "deploy", "--port", "/dev/ttyUSB0", "--frozen",
                                       "--dry-run", "--build-dir", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "mpremote" in line]
    assert not any(" cp -r " in line or "romfs" in line for line in lines)
    assert any(line.endswith("fs cp " + str(out / "main.py") + " :main.py") for line in lines)
    both = CliRunner().invoke(main, ["firmware", "deploy", "--port", "/dev/ttyUSB0", "--frozen", "--romfs",
                                     "--dry-run", "--build-dir", str(out)])
    assert both.exit_code != 0 and "pick one" in both.output
