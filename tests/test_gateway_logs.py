"""The gateway's log says what the gateway did: third-party libraries
(amqtt, transitions, paho) speak at WARNING and above unless asked for
debug output."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.logs import THIRD_PARTY, configure_logging, parse_level

REPO = Path(__file__).resolve().parents[1]

GATEWAY_ON_EMBEDDED = """
import sys, time
from pathlib import Path
from gateway.logs import configure_logging
configure_logging(sys.argv[2])
from gateway.home import init, open_home
from gateway.service import GatewayService
from tests.fixtures.gateway import own_embedded_port
folder = Path(sys.argv[1])
init(folder).close()
own_embedded_port(folder)
home = open_home(folder)
service = GatewayService(home)
service.start()
time.sleep(0.5)
service.stop()
home.close()
"""


def _gateway_log(tmp_path: Path, level: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", GATEWAY_ON_EMBEDDED, str(tmp_path / "vp"), level],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_embedded_gateway_log_at_info_has_no_amqtt_or_transitions_noise(tmp_path: Path) -> None:
    lines = _gateway_log(tmp_path, "info")
    noisy = [line for line in lines if " INFO amqtt" in line or " INFO transitions" in line]
    assert noisy == []
    ours = [json.loads(line.split(" veilpost.gateway ", 1)[1])
            for line in lines if " veilpost.gateway " in line]
    events = [e["event"] for e in ours if e["event"] != "config-warning"]
    assert events[:2] == ["embedded-broker", "mqtt-connected"]
    assert len(ours) == len(lines), lines  # nothing but the gateway's own events


def test_debug_level_lets_the_libraries_speak_again(tmp_path: Path) -> None:
    lines = _gateway_log(tmp_path, "debug")
    assert any(" transitions" in line for line in lines)


def test_configure_logging_sets_third_party_loggers_to_warning() -> None:
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        configure_logging("info")
        assert root.level == logging.INFO
        for name in THIRD_PARTY:
            assert logging.getLogger(name).level == logging.WARNING, name
        configure_logging("error")
        assert logging.getLogger("amqtt").level == logging.ERROR  # never louder than asked
        configure_logging("info")
        assert len([h for h in root.handlers if getattr(h, "veilpost", False)]) == 1  # not stacked
    finally:
        for h in [h for h in root.handlers if getattr(h, "veilpost", False)]:
            root.removeHandler(h)
        root.setLevel(saved[0])
        for name in THIRD_PARTY:
            logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.parametrize("text", ["loud", "", "7"])
def test_an_unknown_log_level_is_one_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="log level .* is not one of debug, info, warning, error"):
        parse_level(text)
