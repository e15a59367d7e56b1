"""Shared test setup. Area fixtures live in tests/fixtures/ and are listed in
pytest_plugins below, one line per area."""

from __future__ import annotations

import os

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.micropython",
    "tests.fixtures.brokers",
    "tests.fixtures.printers",
    "tests.fixtures.gateway",
    "tests.fixtures.postgres",
    "tests.fixtures.handheld",
    "tests.fixtures.softhsm",
]

ON_CI = bool(os.environ.get("VEILPOST_CI") or os.environ.get("CI"))


def require(condition: bool, reason: str) -> None:
    """Skip when a real part (Mosquitto, PostgreSQL, the MicroPython VM) is
    missing on a developer machine; on CI the same absence is a failure."""
    if condition:
        return
    if ON_CI:
        pytest.fail("required on CI: " + reason)
    pytest.skip(reason)
