"""Set up the Mosquitto side of one depot: a local CA, the broker's TLS
certificate, the dynamic-security admin, and mosquitto.conf rendered for the
folder that holds them. make-depot.sh calls this module; the test fixtures
call the same functions, so the shipped config is the one under test."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protocol.errors import ConfigurationError

SHIPPED_CONFIG = Path(__file__).with_name("mosquitto.conf")
DYNSEC_PLUGIN_NAME = "mosquitto_dynamic_security.so"
# Where Debian, Fedora, Alpine and a source build put the plugin.
DYNSEC_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib*/mosquitto_dynamic_security.so",
    "/usr/local/lib*/mosquitto_dynamic_security.so",
)
ADMIN_USERNAME = "veilpost-admin"


class DepotSetupError(ConfigurationError):
    """A depot could not be set up; the message says what to fix."""


def find_dynsec_plugin() -> Path | None:
    """The dynamic-security plugin shipped with the installed Mosquitto."""
    import glob

    for pattern in DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(folder: Path, depot: str, *, days: int = 3650) -> tuple[Path, Path]:
    """A self-signed P-256 CA for one depot. Returns (ca.crt, ca.key)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "veilpost"),
        x509.NameAttribute(NameOID.COMMON_NAME, "veilpost depot CA " + depot),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    ca_crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(ca_key, _key_pem(key))
    return ca_crt, ca_key


def make_server_cert(
    folder: Path, ca_crt: Path, ca_key: Path, hostnames: list[str], *, days: int = 825
) -> tuple[Path, Path]:
    """The broker's certificate, signed by the depot CA, valid for each of
    `hostnames` (DNS names or IP addresses). Returns (server.crt, server.key)."""
    if not hostnames:
        raise DepotSetupError("the server certificate needs at least one hostname or IP address")
    ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    loaded = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise DepotSetupError(f"{ca_key} is not the EC key make_ca writes")
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(loaded.public_key()), critical=False
        )
        .sign(loaded, hashes.SHA256())
    )
    crt, keyfile = folder / "server.crt", folder / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(keyfile, _key_pem(key))
    return crt, keyfile


def init_dynsec(config_file: Path, username: str = ADMIN_USERNAME, password: str | None = None) -> str:
    """Create the plugin's JSON file with one admin client (mosquitto_ctrl
    dynsec init). Returns the admin password (generated when not given)."""
    ctrl = shutil.which("mosquitto_ctrl")
    if ctrl is None:
        raise DepotSetupError("mosquitto_ctrl not found: install the mosquitto-clients package")
    if config_file.exists():
        raise DepotSetupError(f"{config_file} exists already; remove it to start the depot afresh")
    password = password or secrets.token_urlsafe(24)
    config_file.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [ctrl, "dynsec", "init", str(config_file), username, password],
        capture_output=True, text=True, timeout=30, check=False,
    )
    if done.returncode != 0 or not config_file.exists():
        raise DepotSetupError("mosquitto_ctrl dynsec init failed: " + (done.stderr or done.stdout).strip())
    os.chmod(config_file, 0o600)
    return password


_OPTION = re.compile(r"^(\s*)([a-z_]+)(\s+)(.*?)\s*$")


def render_config(
    text: str,
    options: Mapping[str, str | None] | None = None,
    listeners: Mapping[str, str | None] | None = None,
) -> str:
    """Rewrite mosquitto.conf text. `options` maps an option name to its new
    value (None drops the line); `listeners` maps the value of a shipped
    `listener` line (e.g. "8883") to a new value ("18883 127.0.0.1"), or to
    None to drop that listener and its TLS lines. Comments stay."""
    options = options or {}
    listeners = listeners or {}
    out: list[str] = []
    dropping = False
    for line in text.splitlines():
        m = _OPTION.match(line)
        if not m:
            out.append(line)
            continue
        indent, name, gap, value = m.groups()
        if name == "listener":
            dropping = False
            if value in listeners:
                new = listeners[value]
                if new is None:
                    dropping = True
                    continue
                value = new
            out.append(indent + name + gap + value)
            continue
        if dropping:
            continue
        if name in options:
            new_value = options[name]
            if new_value is None:
                continue
            value = new_value
        out.append(indent + name + gap + value)
    return "\n".join(out) + "\n"


def depot_config(folder: Path, state: Path | None = None, plugin: Path | None = None) -> str:
    """The shipped mosquitto.conf with its certificates in `folder` and the
    dynsec file and persistence in `state` (default: `folder`)."""
    plugin = plugin or find_dynsec_plugin()
    if plugin is None:
        raise DepotSetupError(
            "the Mosquitto dynamic-security plugin (" + DYNSEC_PLUGIN_NAME + ") was not found"
        )
    folder = folder.resolve()
    state = (state or folder).resolve()
    return render_config(
        SHIPPED_CONFIG.read_text(encoding="utf-8"),
        {
            "plugin": str(plugin),
            "plugin_opt_config_file": str(state / "dynamic-security.json"),
            "persistence_location": str(state) + "/",
            "cafile": str(folder / "ca.crt"),
            "certfile": str(folder / "server.crt"),
            "keyfile": str(folder / "server.key"),
        },
    )


def _hand_over(paths: list[Path], owner: str | None) -> None:
    """Let the broker's account read its key and write its state (root only)."""
    if owner is None or os.geteuid() != 0:
        return
    import pwd

    try:
        account = pwd.getpwnam(owner)
    except KeyError:
        return
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def make_depot(folder: Path, depot: str, hostnames: list[str], *, state: Path | None = None,
               owner: str | None = "mosquitto") -> Path:
    """Everything Mosquitto needs for one depot. Certificates go to `folder`,
    the dynsec file and persistence to `state` (default: `folder`); the admin
    password to `folder/admin.secret` (mode 0600). Returns the rendered config."""
    state = state or folder
    folder.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = make_ca(folder, depot)
    server_crt, server_key = make_server_cert(folder, ca_crt, ca_key, hostnames)
    password = init_dynsec(state / "dynamic-security.json")
    _write_private(folder / "admin.secret", (ADMIN_USERNAME + "\n" + password + "\n").encode())
    conf = folder / "mosquitto.conf"
    conf.write_text(depot_config(folder, state), encoding="utf-8")
    _hand_over([server_key, state, state / "dynamic-security.json"], owner)
    return conf


def read_admin_secret(path: Path) -> tuple[str, str]:
    """(username, password) from the admin.secret file make_depot writes."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not lines[0] or not lines[1]:
        raise DepotSetupError(f"{path} should hold the admin username and password on two lines")
    return lines[0], lines[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make-depot", description=__doc__)
    parser.add_argument("folder", type=Path, help="where the CA, certificates and rendered config go")
    parser.add_argument("--state", type=Path, default=None,
                        help="where the dynsec file and persistence go (default: FOLDER)")
    parser.add_argument("--veilpost-home", type=Path, default=None,
                        help="copy ca.crt and admin.secret to VEILPOST_HOME/broker for `veilpost device`")
    parser.add_argument("--owner", default="mosquitto",
                        help="account the broker runs as, given its key and state when run as root")
    parser.add_argument("--depot", default="depot-1", help="depot name in the CA certificate")
    parser.add_argument(
        "--host", action="append", dest="hosts", default=[],
        help="broker hostname or IP the handhelds use (repeatable; default: localhost and 127.0.0.1)",
    )
    args = parser.parse_args(argv)
    try:
        conf = make_depot(args.folder, args.depot, args.hosts or ["localhost", "127.0.0.1"],
                          state=args.state, owner=args.owner)
    except DepotSetupError as exc:
        print("make-depot: " + str(exc), file=sys.stderr)
        return 1
    if args.veilpost_home is not None:
        target = args.veilpost_home / "broker"
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy(args.folder / "ca.crt", target / "ca.crt")
        _write_private(target / "admin.secret", (args.folder / "admin.secret").read_bytes())
        print(f"veilpost home {args.veilpost_home}: broker CA and admin credentials in {target}")
    print(f"depot {args.depot}: CA, server certificate and dynsec admin in {args.folder}")
    print(f"config: {conf}  (admin credentials in {args.folder / 'admin.secret'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
