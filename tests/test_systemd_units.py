"""The systemd units run what is installed: the `veilpost` pip put beside
this Python (not a guessed /usr/local/bin), after the depot's own Mosquitto
unit (not the distribution's mosquitto.service), as an account that owns the
admin secret it reads. `systemd-analyze verify` checks the rendered files."""

from __future__ import annotations

import configparser
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.deploy import depot, units
from tests.conftest import require


def _unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def _verify(*paths: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (Debian package systemd)")
    assert analyze is not None
    return subprocess.run([analyze, "verify", *map(str, paths)], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def veilpost_program(tmp_path: Path) -> Path:
    """The installed `veilpost`, or (when this checkout is not pip-installed)
    a stand-in executable where pip would put it."""
    try:
        return units.find_veilpost()
    except depot.DepotSetupError:
        stand_in = tmp_path / "bin" / "veilpost"
        stand_in.parent.mkdir()
        stand_in.write_text("#!%s\nfrom tools.cli import main\nmain()\n" % sys.executable)
        stand_in.chmod(0o755)
        return stand_in


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path, veilpost_program: Path) -> None:
    require(shutil.which("mosquitto") is not None, "the mosquitto binary is not installed")
    written = units.write_units(tmp_path / "units", veilpost=veilpost_program,
                                depot_config=tmp_path / "depot" / "mosquitto.conf")
    done = _verify(*written)
    assert done.returncode == 0, done.stderr
    gateway = _unit(written[0].read_text())
    assert gateway["Service"]["ExecStart"] == "%s gateway run" % veilpost_program
    assert os.access(gateway["Service"]["ExecStart"].split()[0], os.X_OK)


def test_verify_catches_a_unit_whose_program_is_not_installed(tmp_path: Path) -> None:
    rendered = units.render(Path("/usr/local/bin/veilpost-not-installed"), Path("/usr/sbin/mosquitto"))
    path = tmp_path / units.GATEWAY_UNIT
    path.write_text(rendered[units.GATEWAY_UNIT])
    done = _verify(path)
    assert done.returncode != 0
    assert "veilpost-not-installed" in done.stderr and "not executable" in done.stderr


def test_the_veilpost_found_is_the_one_pip_installed_for_this_python() -> None:
    try:
        found = units.find_veilpost()
    except depot.DepotSetupError as e:
        assert "pip install veilpost" in str(e)
        return
    assert found.is_absolute() and os.access(found, os.X_OK)
    assert found != Path("/usr/local/bin/veilpost") or Path(sys.executable).parent == found.parent


def test_the_gateway_orders_itself_after_the_depots_mosquitto_not_the_distributions() -> None:
    rendered = units.render(Path("/opt/veilpost/bin/veilpost"), Path("/usr/sbin/mosquitto"),
                            Path("/etc/mosquitto/veilpost/mosquitto.conf"))
    gateway = _unit(rendered[units.GATEWAY_UNIT])["Unit"]
    assert "veilpost-mosquitto.service" in gateway["After"].split()
    assert "veilpost-mosquitto.service" in gateway["Wants"].split()
    assert "mosquitto.service" not in gateway["After"].split()
    broker = _unit(rendered[units.MOSQUITTO_UNIT])
    assert broker["Service"]["ExecStart"] == "/usr/sbin/mosquitto -c /etc/mosquitto/veilpost/mosquitto.conf"
    assert broker["Service"]["Type"] == "notify"  # ready means listening: the gateway starts after that


@pytest.mark.parametrize("bad", [Path("veilpost"), Path("/opt/my tools/veilpost")])
def test_a_path_a_unit_cannot_run_is_refused(bad: Path) -> None:
    with pytest.raises(depot.DepotSetupError):
        units.render(bad, Path("/usr/sbin/mosquitto"))


def test_the_admin_secret_in_the_home_belongs_to_the_account_the_gateway_runs_as(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "giving files to another account needs root")
    service_account = pwd.getpwnam("nobody")
    source = tmp_path / "depot"
    source.mkdir()
    (source / "ca.crt").write_text("not a real certificate\n")
    (source / "admin.secret").write_text("veilpost-admin\nnot-a-real-password\n")
    home = tmp_path / "var-lib-veilpost"
    home.mkdir()
    os.chown(home, service_account.pw_uid, service_account.pw_gid)  # what StateDirectory= does
    target = depot.copy_to_home(source, home)
    for path in (target, target / "admin.secret", target / "ca.crt"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (service_account.pw_uid, service_account.pw_gid), path
    assert oct(os.stat(target / "admin.secret").st_mode & 0o777) == "0o600"
