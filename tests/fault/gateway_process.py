"""Gateways as real processes (`veilpost gateway run`) for the fault suite:
killed with SIGKILL, or started under a file size limit that makes their
writes fail like a full disk."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fixtures.brokers import MqttProbe

REPO = Path(__file__).resolve().parents[2]


def configure(folder: Path, broker: Any, gateway_id: str, store: str = "", shared: bool = True) -> None:
    """Point a home's config at `broker`, with budgets out of the way: the
    faults, not the sentinel, are under test here."""
    user, password = broker.gateway_credentials
    path = folder / "veilpost.toml"
    text = path.read_text(encoding="utf-8")
    values = {
        "gateway_id": '"%s"' % gateway_id, "store": '"%s"' % store, "broker": '"%s"' % broker.host,
        "port": str(broker.port), "username": '"%s"' % user, "password": '"%s"' % password,
        "client_id": '"fault-%s"' % gateway_id, "shared": "true" if shared else "false",
        "per_minute": "1000000", "distinct_per_minute": "1000000", "per_shift": "1000000",
        "route_share": "100000.0", "sequential_run": "0", "durability": '"normal"',
        "ratio_slack": "1000000", "undelivered_limit": "1000000", "depot_floor": "1000000",
    }
    for key, value in values.items():
        text, n = re.subn(r"(?m)^%s = .*$" % key, "%s = %s" % (key, value), text, count=1)
        assert n == 1, "no %s in the default config" % key
    path.write_text(text, encoding="utf-8")


def twin(folder: Path, name: str, broker: Any, store: str) -> Path:
    """A second gateway's home: the same keys, its own id."""
    other = folder.parent / name
    shutil.copytree(folder, other, ignore=shutil.ignore_patterns("*.db*", "*.log"))
    configure(other, broker, name, store)
    return other


class GatewayProcess:
    def __init__(self, folder: Path, broker: Any, gateway_id: str, file_limit: int | None = None) -> None:
        self.folder, self.broker, self.gateway_id, self.file_limit = folder, broker, gateway_id, file_limit
        self.process: subprocess.Popen[bytes] | None = None

    def _limits(self) -> None:
        if self.file_limit is not None:
            # A write past the limit fails with EFBIG instead of killing the process:
            # what the gateway sees is the same as ENOSPC, a write that cannot happen.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_limit, resource.RLIM_INFINITY))

    def start(self, timeout: float = 20.0) -> None:
        probe = MqttProbe(self.broker, *self.broker.admin_credentials)
        probe.subscribe("vp/v1/gw/%s/status" % self.gateway_id)
        log = open(self.folder / "gateway.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools", "--home", str(self.folder), "gateway", "run"],
            cwd=REPO, stdout=log, stderr=log, preexec_fn=self._limits)  # noqa: PLW1509
        log.close()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                m = probe.next_message(timeout=0.2)
                if m is not None and m.payload == b"online":
                    return
                if self.process.poll() is not None:
                    break
            raise RuntimeError("gateway %s did not come online:\n%s" % (self.gateway_id, self.log_tail()))
        finally:
            probe.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def lift_file_limit(self) -> None:
        """The operator frees disk space."""
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        try:
            return "\n".join((self.folder / "gateway.log").read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"
