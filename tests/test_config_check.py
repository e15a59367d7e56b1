"""`config_check.check(cfg)`, what `veilpost config check` prints: the broker
reached and logged into (or the embedded broker's port free), the database
reachable, secrets owner-only, and the key provider named plainly. The
gateway runs the same checks at start and refuses with one line."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_mod
from gateway.config_check import FAIL, OK, WARN, Finding, check, failures
from gateway.home import init, open_home
from gateway.service import GatewayService, GatewayStartError
from tests.fixtures.gateway import own_embedded_port
from tools.testbed.brokers import HOST, free_port


def _by_topic(findings: list[Finding]) -> dict[str, Finding]:
    return {f.topic: f for f in findings}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "vp"
    init(folder).close()
    own_embedded_port(folder)
    return folder


def test_a_fresh_home_checks_out_and_says_the_local_key_file_is_not_for_production(folder: Path) -> None:
    found = _by_topic(check(config_mod.load(folder)))
    assert failures(list(found.values())) == []
    assert found["config"].level == OK and "time zone Asia/Shanghai" in found["config"].text
    assert found["broker"].level == OK and "is free" in found["broker"].text
    assert found["database"].level == OK and "schema" in found["database"].text
    assert found["keys"].level == WARN and "local key file" in found["keys"].text
    assert "NOT for production" in found["keys"].text
    assert found["files"].level == OK


def test_the_embedded_port_taken_by_another_program_fails(folder: Path) -> None:
    cfg = config_mod.load(folder)
    with socket.socket() as squatter:
        squatter.bind((HOST, cfg.mqtt.embedded_port))
        squatter.listen()
        broker = _by_topic(check(cfg))["broker"]
    assert broker.level == FAIL and "in use by another program" in broker.text


@pytest.mark.mosquitto
def test_an_external_broker_is_logged_into_with_the_gateways_credentials(folder: Path,
                                                                         mosquitto_broker: object) -> None:
    cfg = config_mod.load(folder)
    broker: Any = mosquitto_broker
    cfg.mqtt.broker, cfg.mqtt.port = broker.host, broker.port
    cfg.mqtt.username, cfg.mqtt.password = broker.gateway_credentials
    assert _by_topic(check(cfg))["broker"].level == OK
    cfg.mqtt.password = "not-the-password"
    broker = _by_topic(check(cfg))["broker"]
    assert broker.level == FAIL and "refused" in broker.text


def test_a_broker_nobody_listens_on_fails_with_its_address(folder: Path) -> None:
    cfg = config_mod.load(folder)
    port = free_port()
    cfg.mqtt.broker, cfg.mqtt.port = HOST, port
    broker = _by_topic(check(cfg))["broker"]
    assert broker.level == FAIL and "%s:%d not reachable" % (HOST, port) in broker.text


def test_an_unreachable_postgres_store_fails(folder: Path) -> None:
    cfg = config_mod.load(folder)
    cfg.store = "postgresql://nobody@127.0.0.1:%d/none" % free_port()
    database = _by_topic(check(cfg))["database"]
    assert database.level == FAIL and database.text.startswith("PostgreSQL 127.0.0.1")


def test_a_secret_left_readable_fails(folder: Path) -> None:
    os.chmod(folder / "keys" / "audit.hmac", 0o644)
    files = _by_topic(check(config_mod.load(folder)))["files"]
    assert files.level == FAIL and "keys/audit.hmac" in files.text


def test_the_gateway_makes_loose_secrets_owner_only_at_start_and_says_so(
        folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    os.chmod(folder / "keys" / "audit.hmac", 0o644)
    os.chmod(folder / "keys", 0o755)
    home = open_home(folder)
    try:
        service = GatewayService(home)
        service.start()
        service.stop()
    finally:
        home.close()
    assert _by_topic(check(config_mod.load(folder)))["files"].level == OK
    said = [r.getMessage() for r in caplog.records if "secrets-tightened" in r.getMessage()]
    assert said and "audit.hmac" in said[0]


def test_the_gateway_refuses_a_config_built_in_code_with_a_bad_value(folder: Path) -> None:
    home = open_home(folder)
    try:
        home.config.sentinel.per_minute = "six"  # type: ignore[assignment]
        with pytest.raises(GatewayStartError, match=r'\[sentinel\] per_minute = "six": must be an integer'):
            GatewayService(home).start()
    finally:
        home.close()


def test_the_audit_finding_says_where_checkpoints_go(tmp_path):
    from gateway import config as config_mod
    from gateway.home import init

    init(tmp_path / "vp").close()
    cfg = config_mod.load(tmp_path / "vp")
    found = {f.topic: f for f in check(cfg, reach=False)}
    assert found["audit"].level == OK and "every 30 s" in found["audit"].text
    assert "no witness_urls" in found["audit"].text
    cfg.audit.witness_urls = ["http://127.0.0.1:8470/checkpoint"]
    assert "1 witness URL" in {f.topic: f for f in check(cfg, reach=False)}["audit"].text
    cfg.audit.witness_urls = ["ftp://witness"]
    assert any("[audit] witness_urls" in f.text for f in failures(check(cfg, reach=False)))


def test_the_notifiers_are_checked_their_secret_too(folder: Path) -> None:
    from tools.testbed.notify import SmsSink, SmtpSink

    cfg = config_mod.load(folder)
    found = _by_topic(check(cfg, reach=False))
    assert found["notify"].level == WARN and "cannot notify" in found["notify"].text
    sms, smtp = SmsSink(token="t-1"), SmtpSink()
    try:
        token = cfg.home / "sms.secret"
        token.write_text("t-1\n", encoding="utf-8")
        token.chmod(0o644)
        cfg.notify.sms_url, cfg.notify.sms_token_file = sms.url, "sms.secret"
        cfg.notify.smtp_host, cfg.notify.smtp_port = smtp.host, smtp.port
        found = _by_topic(check(cfg, reach=False))
        assert found["notify"].level == FAIL and "readable by others: chmod 600" in found["notify"].text
        assert found["files"].level == FAIL and "sms.secret" in found["files"].text
        token.chmod(0o600)
        found = _by_topic(check(cfg))
        assert found["notify"].level == OK, found["notify"].text
        text = found["notify"].text
        assert "e-mail via 127.0.0.1:%d" % smtp.port in text and "SMS via" in text
    finally:
        sms.close()
        smtp.close()
    found = _by_topic(check(cfg))  # both servers gone: a warning, the gateway still runs
    assert found["notify"].level == WARN and "not reachable" in found["notify"].text
    assert failures([found["notify"]]) == []
