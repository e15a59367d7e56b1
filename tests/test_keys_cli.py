"""The CLI with the keys in a PKCS#11 token: `veilpost init` makes them in the
token (once), `config check` checks the token, `keys rotate` and `retention
run` work in it, and a wrong PIN is one line, exit 3, no traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.fixtures.gateway import own_embedded_port
from tools.cli import main
from tools.testbed.softhsm import SoftToken, configure


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_init_check_rotate_and_retention_with_the_keys_in_a_token(tmp_path: Path,
                                                                  soft_token: SoftToken) -> None:
    folder = tmp_path / "vp"
    configure(folder, soft_token)
    code, out = invoke("--home", str(folder), "init")
    assert code == 0 and 'keys in PKCS#11 token "veilpost-test"' in out, out
    assert invoke("--home", str(folder), "init")[0] == 0  # again: nothing new, nothing lost
    own_embedded_port(folder)
    code, out = invoke("--home", str(folder), "config", "check")
    keys_line = next(line for line in out.splitlines() if line.split()[1] == "keys")
    assert keys_line.startswith("ok") and "1 key-encryption keys" in keys_line, out
    code, out = invoke("--home", str(folder), "operator", "add", "Test IT", "--role", "it")
    assert code == 0, out
    code, out = invoke("--home", str(folder), "keys", "rotate", "--as", "Test IT")
    assert code == 0 and out.startswith("new key-encryption key kek-") and "retired kek-" in out, out
    code, out = invoke("--home", str(folder), "retention", "run")
    assert code == 0 and out.startswith("shredded 0 parcels; destroyed 0 period keys"), out


def test_a_wrong_pin_is_one_line_and_exit_3(tmp_path: Path, soft_token: SoftToken) -> None:
    folder = tmp_path / "vp"
    configure(folder, soft_token)
    assert invoke("--home", str(folder), "init")[0] == 0
    (folder / "token.pin").write_text("999999\n")
    for args in (["route", "list"], ["keys", "rotate"], ["audit", "verify"], ["init"]):
        code, out = invoke("--home", str(folder), *args)
        assert code == 3 and out == 'veilpost: the PIN for token "veilpost-test" is wrong\n', (args, out)


def test_init_with_the_local_key_file_says_it_is_not_for_production(tmp_path: Path) -> None:
    code, out = invoke("--home", str(tmp_path / "vp"), "init")
    assert code == 0 and "NOT for production" in out
