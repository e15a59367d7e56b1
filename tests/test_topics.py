"""Topic names: built from valid ids only, parsed back, everything else refused."""

from __future__ import annotations

import pytest

from protocol import topics
from protocol.errors import MALFORMED, ProtocolError


def test_device_topics_follow_the_wire_contract() -> None:
    assert topics.up("hh-0042") == "vp/v1/d/hh-0042/up"
    assert topics.down("hh-0042") == "vp/v1/d/hh-0042/down"
    assert topics.cmd("hh-0042") == "vp/v1/d/hh-0042/cmd"
    assert topics.gateway_status("gw_1") == "vp/v1/gw/gw_1/status"
    assert topics.ALARM == "vp/v1/alarm"


def test_gateways_share_the_up_subscription() -> None:
    assert topics.SHARED_UP_FILTER == "$share/veilpost/vp/v1/d/+/up"


@pytest.mark.parametrize("kind", ["up", "down", "cmd"])
def test_device_topic_parses_back(kind: str) -> None:
    assert topics.parse(topics.device_topic(kind, "A_z-9")) == (kind, "A_z-9")


def test_status_alarm_and_bytes_topics_parse() -> None:
    assert topics.parse("vp/v1/gw/gw-2/status") == ("status", "gw-2")
    assert topics.parse(topics.ALARM) == ("alarm", None)
    assert topics.parse(b"vp/v1/d/hh-1/up") == ("up", "hh-1")


@pytest.mark.parametrize("bad", ["", "a b", "x" * 33, "hh/1", "+", "#", "測試", "hh.1", None, 7])
def test_invalid_device_id_cannot_make_a_topic(bad: object) -> None:
    with pytest.raises(ProtocolError) as e:
        topics.up(bad)
    assert e.value.code == MALFORMED
    assert not topics.valid_id(bad)


def test_longest_valid_id_is_accepted() -> None:
    assert topics.parse(topics.up("x" * 32)) == ("up", "x" * 32)


@pytest.mark.parametrize("bad", [
    "vp/v1/d/+/up", "vp/v1/d/#", "vp/v2/d/hh/up", "vp/v1/d/hh/sideways", "vp/v1/d/hh/up/extra",
    "/vp/v1/d/hh/up", "vp/v1/d//up", "vp/v1/gw/gw/online", "$share/veilpost/vp/v1/d/hh/up",
    b"\xff\xfe", 42, "vp/v1/d/" + "x" * 33 + "/up",
])
def test_foreign_or_malformed_topic_is_refused(bad: object) -> None:
    with pytest.raises(ProtocolError) as e:
        topics.parse(bad)
    assert e.value.code == MALFORMED


def test_unknown_device_topic_kind_is_refused() -> None:
    with pytest.raises(ProtocolError):
        topics.device_topic("status", "hh-1")
