"""Set up the Mosquitto side of one depot: a local CA, the broker's TLS
certificate, the dynamic-security admin, and mosquitto.conf rendered for the
folder that holds them. make-depot.sh calls this module; the test fixtures
call the same functions, so the shipped config is the one under test."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.deploy import certs
from gateway.deploy.certs import names
from gateway.permissions import write_private
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


def make_ca(folder: Path, depot: str, *, days: int = 3650) -> tuple[Path, Path]:
    """A self-signed P-256 CA for one depot (gateway/deploy/certs.py). Returns (ca.crt, ca.key)."""
    return certs.make_ca(folder, depot, days=days)


def make_server_cert(folder: Path, ca_crt: Path, ca_key: Path, hostnames: list[str], *,
                     days: int = 825) -> tuple[Path, Path]:
    """The broker's certificate signed by the depot CA. Returns (server.crt, server.key)."""
    try:
        return certs.make_server_cert(folder, ca_crt, ca_key, hostnames, days=days)
    except certs.CertificateError as e:
        raise DepotSetupError(str(e)) from None


def find_dynsec_plugin() -> Path | None:
    """The dynamic-security plugin shipped with the installed Mosquitto."""
    import glob

    for pattern in DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    return None


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


@dataclass(frozen=True)
class Listeners:
    """Where the broker listens: plain MQTT for the gateway on this host (port
    0: none), and TLS for the handhelds (host "": every address)."""

    plain_port: int = 1883
    plain_host: str = "127.0.0.1"
    tls_port: int = 8883
    tls_host: str = ""

    def rendered(self) -> dict[str, str | None]:
        """render_config's `listeners` for the shipped file's two listener lines."""
        if not 0 < self.tls_port < 65536:
            raise DepotSetupError("the TLS listener port must be 1-65535, not %d" % self.tls_port)
        if not 0 <= self.plain_port < 65536:
            raise DepotSetupError("the plain listener port must be 0-65535, not %d" % self.plain_port)
        plain = "%d %s" % (self.plain_port, self.plain_host) if self.plain_port else None
        return {"1883 127.0.0.1": plain, "8883": ("%d %s" % (self.tls_port, self.tls_host)).strip()}


def depot_config(folder: Path, state: Path | None = None, plugin: Path | None = None,
                 listeners: Listeners | None = None) -> str:
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
        (listeners or Listeners()).rendered(),
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


def _pair(first: Path, second: Path) -> bool:
    """Whether a file pair exists; half a pair is refused, never replaced."""
    if first.exists() != second.exists():
        have, lacks = (first, second) if first.exists() else (second, first)
        raise DepotSetupError(f"{have.name} exists without {lacks.name} in {have.parent}: restore it, or"
                              " remove both to make new ones (every handheld then needs the new CA)")
    return first.exists()


def make_depot(folder: Path, depot: str, hostnames: list[str], *, state: Path | None = None,
               owner: str | None = "mosquitto", listeners: Listeners | None = None,
               report: Callable[[str], None] | None = None) -> Path:
    """Everything Mosquitto needs for one depot. Certificates go to `folder`,
    the dynsec file and persistence to `state` (default: `folder`); the admin
    password to `folder/admin.secret` (mode 0600). Safe to run again: what
    exists is kept (`report` is told what), never replaced. Returns the config."""
    say = report or (lambda _line: None)
    state = state or folder
    rendered = depot_config(folder, state, listeners=listeners)  # bad options fail before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    if _pair(ca_crt, ca_key):
        say(f"kept depot CA {ca_crt}")
    else:
        make_ca(folder, depot)
        say(f"made depot CA {ca_crt}")
    server_crt, server_key = folder / "server.crt", folder / "server.key"
    if _pair(server_crt, server_key):
        missing = sorted(set(hostnames) - names(server_crt))
        say(f"kept server certificate {server_crt}" + (
            f" (it does not name {', '.join(missing)}: remove server.crt and server.key to issue one that"
            " does; handhelds keep trusting the same CA)" if missing else ""))
    else:
        make_server_cert(folder, ca_crt, ca_key, hostnames)
        say(f"made server certificate {server_crt} for {', '.join(hostnames)}")
    dynsec, secret = state / "dynamic-security.json", folder / "admin.secret"
    if _pair(dynsec, secret):
        say(f"kept dynamic security {dynsec}")
        say(f"kept admin secret {secret}")
    else:
        password = init_dynsec(dynsec)
        write_private(secret, ADMIN_USERNAME + "\n" + password + "\n")
        say(f"made dynamic security {dynsec} with admin {ADMIN_USERNAME} (password in {secret})")
    conf = folder / "mosquitto.conf"
    if not conf.exists():
        conf.write_text(rendered, encoding="utf-8")
        say(f"made {conf}")
    elif conf.read_text(encoding="utf-8") == rendered:
        say(f"kept mosquitto.conf {conf}")
    else:
        say(f"kept mosquitto.conf {conf}; mosquitto.conf differs from what these options give: remove it to"
            " render it again")
    _hand_over([server_key, state, dynsec], owner)
    return conf


def copy_to_home(folder: Path, veilpost_home: Path, report: Callable[[str], None] | None = None,
                 owner: str | None = None) -> Path:
    """Give a veilpost home the depot CA and the dynsec admin secret (for
    `veilpost device ...` and the gateway's own broker admin); what the home
    has already is kept. Run as root, the copies belong to `owner` (default:
    whoever owns the home, e.g. the gateway's service account), 0600 in 0700,
    so that the gateway can read them and nobody else. Returns the broker folder."""
    from gateway.permissions import private_dir, write_private

    say = report or (lambda _line: None)
    home = Path(veilpost_home)
    existed = home.exists()
    private_dir(home)
    target = private_dir(home / "broker")
    for name in ("ca.crt", "admin.secret"):
        data, there = (folder / name).read_bytes(), target / name
        if not there.exists():
            write_private(there, data)
            say(f"veilpost home: copied {name} to {there}")
        elif there.read_bytes() == data:
            say(f"veilpost home: kept {there}")
        else:
            say(f"veilpost home: kept {there}, which differs from the depot's {name}: remove it to copy"
                " again")
    if os.geteuid() == 0:
        _give(home if existed or owner else None, owner, [target, target / "ca.crt", target / "admin.secret"])
    return target


def _give(home: Path | None, owner: str | None, paths: list[Path]) -> None:
    """chown `paths` to `owner`, or to the owner of `home` (root only)."""
    import pwd

    if owner is not None:
        try:
            account = pwd.getpwnam(owner)
        except KeyError:
            raise DepotSetupError(f"no account {owner!r} to give the home's broker files to") from None
        uid, gid = account.pw_uid, account.pw_gid
    elif home is not None:
        st = home.stat()
        uid, gid = st.st_uid, st.st_gid
    else:
        return
    for path in paths:
        os.chown(path, uid, gid)


def read_admin_secret(path: Path) -> tuple[str, str]:
    """(username, password) from the admin.secret file make_depot writes."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not lines[0] or not lines[1]:
        raise DepotSetupError(f"{path} should hold the admin username and password on two lines")
    return lines[0], lines[1]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make-depot", description=__doc__)
    parser.add_argument("folder", type=Path, help="where the CA, certificates and rendered config go")
    parser.add_argument("--state", type=Path, default=None,
                        help="where the dynsec file and persistence go (default: FOLDER)")
    parser.add_argument("--veilpost-home", type=Path, default=None,
                        help="copy ca.crt and admin.secret to VEILPOST_HOME/broker for `veilpost device`")
    parser.add_argument("--veilpost-owner", default=None,
                        help="account the gateway runs as, given the copies (default: the home's owner)")
    parser.add_argument("--owner", default="mosquitto",
                        help="account the broker runs as, given its key and state when run as root")
    parser.add_argument("--depot", default="depot-1", help="depot name in the CA certificate")
    parser.add_argument(
        "--host", action="append", dest="hosts", default=[],
        help="broker hostname or IP the handhelds use (repeatable; default: localhost and 127.0.0.1)",
    )
    parser.add_argument("--plain-port", type=_port, default=1883,
                        help="plain MQTT listener for the gateway on this host (default 1883; 0: none)")
    parser.add_argument("--plain-host", default="127.0.0.1", help="its address (default 127.0.0.1)")
    parser.add_argument("--tls-port", type=_port, default=8883,
                        help="TLS listener for handhelds (default 8883)")
    parser.add_argument("--tls-host", default="", help="its address (default: every address)")
    args = parser.parse_args(argv)
    listeners = Listeners(args.plain_port, args.plain_host, args.tls_port, args.tls_host)
    try:
        conf = make_depot(args.folder, args.depot, args.hosts or ["localhost", "127.0.0.1"],
                          state=args.state, owner=args.owner, listeners=listeners, report=print)
        if args.veilpost_home is not None:
            copy_to_home(args.folder, args.veilpost_home, report=print, owner=args.veilpost_owner)
    except DepotSetupError as exc:
        print("make-depot: " + str(exc), file=sys.stderr)
        return 1
    print(f"depot {args.depot}: config {conf}  (admin credentials in {args.folder / 'admin.secret'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
