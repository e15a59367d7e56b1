"""The shipped deployment files: mosquitto.conf, make-depot.sh, the unit."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.deploy import depot
from tests.conftest import require
from tests.fixtures.brokers import MosquittoBroker, MqttProbe

DEPLOY = Path(depot.__file__).parent


def options(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            pairs.append((name, value.strip()))
    return pairs


def test_shipped_config_is_secure_by_default():
    pairs = options(depot.SHIPPED_CONFIG.read_text())
    conf = dict(pairs)
    assert conf["allow_anonymous"] == "false"
    assert conf["set_tcp_nodelay"] == "true"
    assert conf["per_listener_settings"] == "false"
    assert conf["plugin"].endswith("mosquitto_dynamic_security.so")
    assert conf["plugin_opt_config_file"].endswith("dynamic-security.json")
    assert conf["persistence"] == "true"
    assert int(conf["max_queued_messages"]) > 0 and int(conf["max_inflight_messages"]) > 0
    assert 0 < int(conf["max_packet_size"]) <= 1 << 20
    assert "use_identity_as_username" not in conf  # revocation relies on dynsec passwords
    listeners = [value for name, value in pairs if name == "listener"]
    assert listeners == ["1883 127.0.0.1", "8883"]  # the plain one is loopback only
    assert conf["tls_version"] == "tlsv1.2"


def test_shipped_config_documents_every_option():
    lines = depot.SHIPPED_CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            previous = lines[i - 1]
            repeated = previous.split(" ")[0] == line.split(" ")[0]  # e.g. several log_type lines
            assert previous.startswith("#") or repeated, f"undocumented option: {line}"


def test_render_config_replaces_values_and_drops_a_listener():
    text = "# c\nallow_anonymous false\nlistener 1883 127.0.0.1\nlistener 8883\ncafile /x\nkeyfile /y\n"
    out = depot.render_config(text, {"allow_anonymous": "true"}, {"1883 127.0.0.1": "1999 127.0.0.1",
                                                                   "8883": None})
    assert out == "# c\nallow_anonymous true\nlistener 1999 127.0.0.1\n"


def test_make_depot_writes_a_ca_a_server_cert_and_a_dynsec_admin(tmp_path):
    require(shutil.which("mosquitto_ctrl") is not None, "mosquitto_ctrl is not installed")
    require(depot.find_dynsec_plugin() is not None, "the mosquitto dynamic-security plugin is missing")
    folder, state = tmp_path / "etc", tmp_path / "state"
    done = subprocess.run(
        [str(DEPLOY / "make-depot.sh"), str(folder), "--state", str(state), "--depot", "depot-test",
         "--host", "broker.depot-test.invalid", "--host", "127.0.0.1", "--owner", "nobody-here",
         "--veilpost-home", str(tmp_path / "vp")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((folder / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "broker.depot-test.invalid" in sans.get_values_for_type(x509.DNSName)
    for secret in ("ca.key", "server.key", "admin.secret"):
        assert stat.S_IMODE(os.stat(folder / secret).st_mode) == 0o600, secret
    assert (state / "dynamic-security.json").exists()
    conf = dict(options((folder / "mosquitto.conf").read_text()))
    assert conf["plugin_opt_config_file"] == str(state.resolve() / "dynamic-security.json")
    assert conf["certfile"] == str(folder.resolve() / "server.crt")
    assert depot.read_admin_secret(folder / "admin.secret")[0] == depot.ADMIN_USERNAME
    assert (tmp_path / "vp" / "broker" / "ca.crt").read_bytes() == (folder / "ca.crt").read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "vp" / "broker" / "admin.secret").st_mode) == 0o600


def test_make_depot_refuses_to_overwrite_an_existing_dynsec_file(tmp_path):
    require(shutil.which("mosquitto_ctrl") is not None, "mosquitto_ctrl is not installed")
    (tmp_path / "dynamic-security.json").write_text("{}")
    with pytest.raises(depot.DepotSetupError, match="exists already"):
        depot.init_dynsec(tmp_path / "dynamic-security.json")


@pytest.mark.mosquitto
def test_a_depot_made_by_the_script_serves_tls_with_its_admin(tmp_path):
    require(shutil.which("mosquitto") is not None, "the mosquitto binary is not installed")
    require(depot.find_dynsec_plugin() is not None, "the mosquitto dynamic-security plugin is missing")
    folder = tmp_path / "depot"
    depot.make_depot(folder, "depot-test", ["127.0.0.1"], owner=None)
    broker = MosquittoBroker(folder, folder, admin=depot.read_admin_secret(folder / "admin.secret"))
    broker.start()
    try:
        admin = MqttProbe(broker, *broker.admin_credentials, tls=True)
        assert admin.connected
        admin.close()
    finally:
        broker.stop()


def test_gateway_unit_runs_the_gateway_unprivileged():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment]
    unit.read_string((DEPLOY / "veilpost-gateway.service").read_text())
    service = unit["Service"]
    assert service["ExecStart"] == "@VEILPOST@ gateway run"  # gateway/deploy/units.py fills it in
    assert service["User"] == "veilpost"
    assert service["NoNewPrivileges"] == "true"
    assert "veilpost-mosquitto.service" in unit["Unit"]["After"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"
