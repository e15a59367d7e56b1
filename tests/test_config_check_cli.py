"""`veilpost config check` prints every finding on a line of its own and
exits 1 when one fails; the gateway refuses to start on the same checks
with one line; no configuration error, in any command, prints a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import config as config_mod
from gateway.home import init
from tests.fixtures.gateway import own_embedded_port
from tools.cli import main

REPO = Path(__file__).resolve().parents[1]

BROKEN = {
    "bad-toml": ("this is = = not toml\n", "veilpost.toml is not valid TOML"),
    "unknown-table": ("[nosuch]\nx = 1\n", "unknown table [nosuch]"),
    "bad-zone": ('timezone = "Mars/Base"\n', 'timezone = "Mars/Base": is not an IANA time zone'),
    "not-a-number": ('[sentinel]\nper_minute = "six"\n', '[sentinel] per_minute = "six": must be an integer'),
    "bad-device-tls": ('[mqtt]\ndevice_tls = "maybe"\n', '[mqtt] device_tls = "maybe": must be one of'),
}
COMMANDS = [["gateway", "run"], ["route", "list"], ["device", "list"], ["device", "provision", "HH-1"],
            ["alarms", "watch", "--for", "1"], ["courier", "list"], ["broker", "add-gateway"],
            ["parcel", "list"], ["keys", "rotate"], ["audit", "verify"]]


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output, result.exception


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    init(tmp_path / "vp").close()
    own_embedded_port(tmp_path / "vp")
    return tmp_path / "vp"


def test_config_check_prints_one_line_per_finding_and_exits_0_when_none_fails(folder: Path) -> None:
    code, out, _ = invoke("--home", str(folder), "config", "check")
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == ["config", "files", "keys", "audit", "notify", "broker",
                                                   "database"]
    assert [line.split()[0] for line in lines] == ["ok", "ok", "warn", "ok", "warn", "ok", "ok"]
    code, out, _ = invoke("--home", str(folder), "config", "check", "--json")
    assert [f["level"] for f in json.loads(out)] == ["ok", "ok", "warn", "ok", "warn", "ok", "ok"]


def test_config_check_lists_every_problem_and_exits_1(folder: Path) -> None:
    text = (folder / config_mod.CONFIG_NAME).read_text(encoding="utf-8")
    text = text.replace("per_minute = 6", 'per_minute = "six"').replace('timezone = "Asia/Shanghai"',
                                                                       'timezone = "Mars/Base"')
    (folder / config_mod.CONFIG_NAME).write_text(text + "\n[nosuch]\nx = 1\n", encoding="utf-8")
    code, out, _ = invoke("--home", str(folder), "config", "check")
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("fail")]
    assert len(fails) == 3, out
    assert any("per_minute" in f for f in fails) and any("Mars/Base" in f for f in fails)
    assert any("[nosuch]" in f for f in fails)
    assert "3 of 3 checks failed" in out


def test_config_check_fails_on_an_embedded_port_another_program_holds(folder: Path) -> None:
    port = config_mod.load(folder).mqtt.embedded_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        code, out, _ = invoke("--home", str(folder), "config", "check")
    assert code == 1
    assert "fail broker   embedded broker: 127.0.0.1:%d is in use by another program" % port in out


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_no_configuration_error_prints_a_traceback(folder: Path, broken: str) -> None:
    text, message = BROKEN[broken]
    (folder / config_mod.CONFIG_NAME).write_text(text, encoding="utf-8")
    for args in COMMANDS:
        code, out, error = invoke("--home", str(folder), *args)
        assert isinstance(error, SystemExit), (args, error)  # an exception would be a traceback
        assert code == 3, (args, out)
        assert out.count("\n") == 1 and out.startswith("veilpost: ") and message in out, (args, out)
    code, out, _ = invoke("--home", str(folder), "config", "check")
    assert code == 1 and out.startswith("fail config") and message in out


def _gateway(folder: Path, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools", "--home", str(folder), "gateway", "run", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_gateway_refuses_a_taken_embedded_port_with_one_line_and_no_traceback(folder: Path) -> None:
    port = config_mod.load(folder).mqtt.embedded_port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        done = _gateway(folder)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("veilpost: ")]
    assert "cannot listen on 127.0.0.1:%d" % port in line


def test_gateway_refuses_a_bad_config_with_one_line_and_no_traceback(folder: Path) -> None:
    (folder / config_mod.CONFIG_NAME).write_text('[sentinel]\nper_minute = "six"\n', encoding="utf-8")
    done = _gateway(folder)
    assert done.returncode == 3
    assert done.stderr.strip() == ('veilpost: veilpost.toml: [sentinel] per_minute = "six": must be an'
                                   " integer")


def _run_and_stop(folder: Path, *extra: str) -> list[str]:
    """`veilpost gateway run`, until its broker answers, then SIGTERM: its log lines."""
    import signal
    import time

    port = config_mod.load(folder).mqtt.embedded_port
    proc = subprocess.Popen([sys.executable, "-m", "tools", "--home", str(folder), "gateway", "run", *extra],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)  # connected and subscribed
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return err.splitlines()


def test_gateway_run_logs_its_own_events_and_no_library_noise_by_default(folder: Path) -> None:
    lines = _run_and_stop(folder)
    assert any(" INFO veilpost.gateway " in line and "mqtt-connected" in line for line in lines), lines
    noisy = [line for line in lines if " INFO amqtt" in line or " INFO transitions" in line
             or " DEBUG " in line]
    assert noisy == []


def test_gateway_run_log_level_after_the_subcommand(folder: Path) -> None:
    lines = _run_and_stop(folder, "--log-level", "warning")
    assert not any(" INFO " in line for line in lines), lines
    assert any(" WARNING veilpost.gateway " in line and "config-warning" in line for line in lines)
