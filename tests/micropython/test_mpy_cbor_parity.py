"""The MicroPython VM and CPython decode CBOR alike: one corpus
(tests/fixtures/cbor_corpus.py: surrogates, overlong and non-shortest forms,
deep nesting, huge lengths, truncated items) and its random neighbours give
the same outcome line by line: the same value, or the same error code,
offset and message."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import pytest

from tests.fixtures import cbor_corpus
from tests.fixtures.micropython import MpyResult

pytestmark = pytest.mark.micropython


def _cpython(code: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    return out.getvalue().splitlines()


def _compare(mpy_run: Callable[..., MpyResult], inputs: list[bytes]) -> list[str]:
    code = cbor_corpus.script(inputs)
    here = _cpython(code)
    there = mpy_run(code).lines()
    assert len(here) == len(inputs) == len(there)
    differ = [(c, m) for c, m in zip(here, there, strict=True) if c != m]
    assert not differ, "CPython and MicroPython disagree:\n" + "\n".join(
        "  cpython: " + c + "\n  vm:      " + m for c, m in differ)
    assert not [line for line in here if " crash " in line], "a decoder raised something else"
    return here


def test_the_corpus_is_accepted_and_refused_alike(mpy_run: Callable[..., MpyResult]) -> None:
    outcomes = _compare(mpy_run, cbor_corpus.corpus_bytes())
    lines = dict(zip([h for h, _ in cbor_corpus.CORPUS], outcomes, strict=True))
    assert lines["63eda080"].split()[1:3] == ["err", "1"]         # the surrogate, refused on both
    assert lines["1805"].split()[1] == "err"
    assert lines["64f48fbfbf"].split()[1] == "ok"


def test_random_neighbours_of_the_corpus_are_decoded_alike(mpy_run: Callable[..., MpyResult]) -> None:
    lines = _compare(mpy_run, cbor_corpus.mutations(600))
    accepted = [line for line in lines if " ok " in line or line.startswith(" ok")]
    assert 10 < len(accepted) < len(lines) - 10      # both kinds really ran
