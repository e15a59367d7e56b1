"""The handheld's resident heap after its boot imports (firmware.device and
all it imports), in the MicroPython VM: gc.collect() then gc.mem_alloc(),
module by module in import order. The issue's budget is 56 KB; the test of
that budget is expected to fail until it is met (xfail, strict), and a
ceiling at today's figure keeps it from growing meanwhile."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.micropython import MpyResult

pytestmark = pytest.mark.micropython

BUDGET = 56 * 1024       # the target
CEILING = 92 * 1024      # measured 90.0 KB (was 97.2 KB before masking left the boot path)

ORDER = ["protocol.errors", "protocol", "protocol.cbor", "protocol.topics", "protocol.replay",
         "protocol.hkdf",
         "protocol.aes", "protocol.ccm", "protocol.cose", "protocol.labels", "protocol.messages",
         "protocol.session", "firmware", "firmware.i18n", "firmware.states", "firmware.tokens",
         "firmware.offline", "firmware.wire", "firmware.batch", "firmware.commands", "firmware.screen",
         "firmware.engine", "firmware.app", "firmware.mqtt", "firmware.device"]


def _resident(mpy_run: Callable[..., MpyResult]) -> tuple[int, dict[str, int], list[str]]:
    code = "import gc, sys\ngc.collect()\nlast = gc.mem_alloc()\nstart = last\n"
    for m in ORDER:
        code += f"import {m}\ngc.collect()\nnow = gc.mem_alloc()\nprint({m!r}, now - last)\nlast = now\n"
    code += "print('total', last - start)\nprint(' '.join(sorted(sys.modules)))\n"
    out = mpy_run(code).lines()
    per = {line.split()[0]: int(line.split()[1]) for line in out[:-1]}
    return per.pop("total"), per, out[-1].split()


def test_the_boot_imports_stay_under_todays_ceiling_and_leave_masking_out(
        mpy_run: Callable[..., MpyResult]) -> None:
    total, per, modules = _resident(mpy_run)
    print("resident heap after boot imports:", total, "bytes;", per)
    assert "protocol.masking" not in modules       # imported only while a route is checked
    assert total <= CEILING


@pytest.mark.xfail(strict=True, reason="the 56 KB budget is not met yet (90 KB)")
def test_the_boot_imports_fit_the_56_kb_budget(mpy_run: Callable[..., MpyResult]) -> None:
    total, _, _ = _resident(mpy_run)
    assert total <= BUDGET
