"""The dynamic-security admin client against a real Mosquitto."""

from __future__ import annotations

import json

import pytest

from gateway.broker_access import Grant
from gateway.dynsec import CONTROL_TOPIC, DynsecAdmin, DynsecError, role_acls
from tests.fixtures.brokers import MqttProbe

pytestmark = pytest.mark.mosquitto


def test_creating_an_existing_client_names_the_command_and_the_reason(mosquitto_broker):
    mosquitto_broker.add_device("hh-001")
    with pytest.raises(DynsecError, match="createRole.*already exists|createClient.*already exists"):
        mosquitto_broker.admin.add_device("hh-001", "another-password")


def test_unknown_client_is_a_clear_error(mosquitto_broker):
    with pytest.raises(DynsecError, match="getClient") as caught:
        mosquitto_broker.admin.get_client("hh-404")
    assert caught.value.command == "getClient"
    with pytest.raises(DynsecError, match="disableClient"):
        mosquitto_broker.admin.disable("hh-404")


def test_wrong_admin_password_is_refused_at_connect(mosquitto_broker):
    username, _ = mosquitto_broker.admin_credentials
    with pytest.raises(DynsecError, match="refused admin"):
        DynsecAdmin(mosquitto_broker.host, mosquitto_broker.port, username, "not-the-password")


def test_unreachable_broker_is_a_clear_error():
    with pytest.raises(DynsecError, match="cannot reach"):
        DynsecAdmin("127.0.0.1", 1, "admin", "password", timeout=1)


def test_a_device_may_not_send_dynsec_commands(mosquitto_broker):
    device = MqttProbe(mosquitto_broker, *mosquitto_broker.add_device("hh-001"))
    command = {"commands": [{"command": "createClient", "username": "hh-evil", "password": "evil-password"}]}
    device.publish(CONTROL_TOPIC, json.dumps(command).encode())
    device.close()
    assert "hh-evil" not in mosquitto_broker.admin.usernames()


def test_device_client_carries_only_its_own_role(mosquitto_broker):
    mosquitto_broker.add_device("hh-001")
    client = mosquitto_broker.admin.get_client("hh-001")
    assert [r["rolename"] for r in client["roles"]] == ["vp-device-hh-001"]
    assert not client.get("disabled")


def test_disable_and_enable_show_in_the_client_record(mosquitto_broker):
    mosquitto_broker.add_device("hh-001")
    mosquitto_broker.admin.disable("hh-001")
    assert mosquitto_broker.admin.get_client("hh-001")["disabled"] is True
    mosquitto_broker.admin.enable("hh-001")
    assert not mosquitto_broker.admin.get_client("hh-001").get("disabled")


def test_a_batch_reports_each_answer_in_order(mosquitto_broker):
    mosquitto_broker.add_device("hh-001")
    answers = mosquitto_broker.admin.execute(
        [{"command": "getClient", "username": "hh-001"}, {"command": "getClient", "username": "hh-404"}],
        check=False,
    )
    assert [a["command"] for a in answers] == ["getClient", "getClient"]
    assert "error" not in answers[0] and answers[1]["error"]


def test_removing_a_device_removes_its_role(mosquitto_broker):
    mosquitto_broker.add_device("hh-001")
    mosquitto_broker.admin.remove("hh-001")
    get_role = {"command": "getRole", "rolename": "vp-device-hh-001"}
    answer = mosquitto_broker.admin.execute([get_role], check=False)
    assert answer[0]["error"]
    mosquitto_broker.add_device("hh-001")  # the id can be provisioned again


def test_role_acls_use_patterns_only_for_wildcards():
    acls = role_acls((Grant("subscribe", "vp/v1/d/+/up"), Grant("subscribe", "vp/v1/d/a/down"),
                      Grant("publish", "vp/v1/gw/#")))
    assert [a["acltype"] for a in acls] == ["subscribePattern", "subscribeLiteral", "publishClientSend"]
