"""The replay window: every sequence number once, nothing older than 32 back."""

from __future__ import annotations

import random

import pytest

from protocol.errors import MALFORMED, REPLAYED, ProtocolError
from protocol.replay import ReplayWindow


def test_first_number_is_accepted_and_a_repeat_is_refused() -> None:
    w = ReplayWindow()
    w.accept(0)
    with pytest.raises(ProtocolError) as e:
        w.accept(0)
    assert e.value.code == REPLAYED and "already used" in e.value.message


def test_out_of_order_numbers_inside_the_window_are_accepted_once() -> None:
    w = ReplayWindow()
    for seq in (10, 7, 9, 8, 3):
        w.accept(seq)
    for seq in (10, 7, 9, 8, 3):
        with pytest.raises(ProtocolError):
            w.check(seq)
    w.accept(5)


def test_number_older_than_the_window_is_refused() -> None:
    w = ReplayWindow(size=32)
    w.accept(100)
    w.accept(69)  # 31 back: the oldest slot
    with pytest.raises(ProtocolError) as e:
        w.accept(68)  # 32 back: outside
    assert e.value.code == REPLAYED and "older than the replay window" in e.value.message


def test_a_large_jump_forgets_the_old_bitmap() -> None:
    w = ReplayWindow()
    w.accept(1)
    w.accept(1000)
    assert w.bitmap == 1 and w.highest == 1000
    w.accept(999)
    with pytest.raises(ProtocolError):
        w.accept(1)


def test_check_does_not_change_the_window() -> None:
    w = ReplayWindow()
    w.accept(4)
    before = w.state()
    w.check(5)
    w.check(3)
    assert w.state() == before
    w.accept(5)


@pytest.mark.parametrize("bad", [-1, "5", 1.0, None, True])
def test_non_integer_or_negative_sequence_is_malformed(bad: object) -> None:
    with pytest.raises(ProtocolError) as e:
        ReplayWindow().accept(bad)
    assert e.value.code == MALFORMED


def test_state_survives_export_and_import() -> None:
    w = ReplayWindow()
    for seq in (1, 2, 5, 40, 38):
        w.accept(seq)
    again = ReplayWindow.from_state(w.state())
    for seq in (40, 38, 8):  # 8 is 32 back from 40: too old
        with pytest.raises(ProtocolError):
            again.accept(seq)
    again.accept(39)
    assert again.highest == 40


def test_window_agrees_with_a_model_over_random_traffic() -> None:
    rng = random.Random(5)
    w = ReplayWindow(size=32)
    seen: set[int] = set()
    highest = -1
    for _ in range(5000):
        seq = max(0, highest + rng.randint(-40, 5))
        fresh = seq not in seen and seq > highest - 32
        try:
            w.accept(seq)
            accepted = True
        except ProtocolError:
            accepted = False
        assert accepted == fresh, seq
        if accepted:
            seen.add(seq)
            highest = max(highest, seq)


def test_bad_constructor_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        ReplayWindow(size=0)
    with pytest.raises(ValueError):
        ReplayWindow(highest=-2)
