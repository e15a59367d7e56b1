"""The fault suite: every test here is marked `fault` (run it alone with
`python3 -m pytest -m fault`). Faults are real: processes are killed with
SIGKILL, Mosquitto is stopped and started again, a gateway runs with a file
size limit so its audit writes hit EFBIG like a full disk."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fault/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fault)
