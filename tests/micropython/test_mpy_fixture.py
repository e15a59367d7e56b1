"""The mpy_run fixture reports a guest's failure with its traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.micropython import MicroPythonFailure, MpyResult

pytestmark = pytest.mark.micropython


def test_guest_exception_is_raised_with_its_traceback(mpy_run: Callable[..., MpyResult]) -> None:
    with pytest.raises(MicroPythonFailure) as e:
        mpy_run("print('before')\nraise ValueError('boom from the guest')")
    assert "boom from the guest" in str(e.value) and "ValueError" in str(e.value)


def test_running_out_of_fuel_is_a_failure(mpy_run: Callable[..., MpyResult]) -> None:
    with pytest.raises(MicroPythonFailure):
        mpy_run("while True:\n    pass", fuel=10_000_000)


def test_repository_is_mounted_and_fuel_is_counted(mpy_run: Callable[..., MpyResult]) -> None:
    r = mpy_run("import sys\nprint(sys.implementation.name)\nimport protocol.cbor")
    assert r.lines() == ["micropython"]
    assert r.fuel_used > 0
