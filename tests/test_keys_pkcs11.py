"""The gateway's keys in a PKCS#11 token (gateway/keys_pkcs11.py), each test
with a SoftHSM2 token of its own: `init` makes the objects once, they cannot
leave the token, every operation happens in it, and `config check` says what
is wrong with the module, token, PIN or mechanisms in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from gateway import audit as audit_mod
from gateway import config as config_mod
from gateway.config_check import FAIL, OK, WARN, check
from gateway.home import Home, init, open_home
from gateway.keys import KeyUnavailable
from gateway.keys_pkcs11 import LABELS, PEOPLE, SIGNING, TokenError
from tools.testbed.softhsm import SoftToken, configure


def _keys_finding(folder: Path) -> tuple[str, str]:
    found = {f.topic: f for f in check(config_mod.load(folder), reach=False)}
    return found["keys"].level, found["keys"].text


def test_init_makes_the_objects_in_the_token_once(pkcs11_home: Home, soft_token: SoftToken) -> None:
    folder = pkcs11_home.config.home
    kek, public = pkcs11_home.keys.kek.ids(), pkcs11_home.keys.public_key()
    pseudonym = pkcs11_home.audit.person("courier", "C-112")
    pkcs11_home.close()
    again = init(folder)
    try:
        assert again.keys.kek.ids() == kek
        assert again.keys.public_key().public_bytes_raw() == public.public_bytes_raw()
        assert again.audit.person("courier", "C-112") == pseudonym
        assert not (folder / "keys").exists()  # nothing of the keys on the gateway's disk
    finally:
        again.close()
        pkcs11_home.close = lambda: None  # type: ignore[method-assign]


def test_no_object_can_leave_the_token(pkcs11_home: Home) -> None:
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import PKCS11Error

    token = pkcs11_home.keys.token  # type: ignore[attr-defined]
    objects = [token.find(SIGNING, ObjectClass.PRIVATE_KEY), token.find(PEOPLE, ObjectClass.SECRET_KEY),
               token.find(LABELS, ObjectClass.SECRET_KEY),
               token.find("veilpost:" + pkcs11_home.keys.kek.current_id(), ObjectClass.SECRET_KEY)]
    assert all(o is not None for o in objects)
    for obj in objects:
        assert obj[Attribute.SENSITIVE] and not obj[Attribute.EXTRACTABLE]
        with pytest.raises(PKCS11Error):
            obj[Attribute.VALUE]
    assert pkcs11_home.keys.exportable() == []  # type: ignore[attr-defined]


def test_signatures_from_the_token_verify_as_ed25519_and_the_audit_log_checks(pkcs11_home: Home) -> None:
    sig = pkcs11_home.keys.sign(b"checkpoint 1")
    pkcs11_home.keys.public_key().verify(sig, b"checkpoint 1")
    with pytest.raises(InvalidSignature):
        pkcs11_home.keys.public_key().verify(sig, b"checkpoint 2")
    with pkcs11_home.store.transaction() as tx:
        for i in range(3):
            actor = pkcs11_home.audit.person("courier", "C-112")
            pkcs11_home.audit.append(tx, 1.0 + i, actor, "HH-1", "test")
        assert pkcs11_home.audit.checkpoint(tx, 4.0)
    verdict = audit_mod.verify(pkcs11_home.store, pkcs11_home.keys.public_key())
    assert verdict.ok, verdict


def test_wrapping_happens_in_the_token_and_refuses_a_wrong_context(pkcs11_home: Home) -> None:
    kek = pkcs11_home.keys.kek
    key_id, wrapped = kek.wrap(b"\x01" * 32, b"VP0000000001")
    assert key_id == kek.current_id() and len(wrapped) == 12 + 32 + 16
    assert kek.unwrap(key_id, wrapped, b"VP0000000001") == b"\x01" * 32
    with pytest.raises(KeyUnavailable, match="does not open"):
        kek.unwrap(key_id, wrapped, b"VP0000000002")
    with pytest.raises(KeyUnavailable, match="does not open"):
        kek.unwrap(key_id, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), b"VP0000000001")
    with pytest.raises(KeyUnavailable, match="does not open"):
        kek.unwrap(key_id, b"short", b"VP0000000001")
    with pytest.raises(KeyUnavailable, match="not in token"):
        kek.unwrap("kek-00000000000000000001", wrapped, b"VP0000000001")


def test_a_destroyed_period_key_is_gone_from_the_token(pkcs11_home: Home) -> None:
    kek = pkcs11_home.keys.kek
    key_id, wrapped = kek.period_wrap(20_000, b"\x02" * 32, b"VP1")
    assert kek.period_wrap(20_000, b"\x03" * 32, b"VP2")[0] == key_id  # one key per day
    kek.destroy(key_id)
    assert key_id not in kek.period_ids()
    with pytest.raises(KeyUnavailable, match="destroyed or never made"):
        kek.unwrap(key_id, wrapped, b"VP1")


def test_a_key_of_its_own_opens_one_secret_until_it_is_destroyed(pkcs11_home: Home, tmp_path: Path) -> None:
    local = init(tmp_path / "local")
    for kek in (pkcs11_home.keys.kek, local.keys.kek):
        first, wrapped = kek.own_wrap("INC-1", b"\x04" * 32, b"INC-1")
        second, _ = kek.own_wrap("INC-1", b"\x05" * 32, b"INC-1")
        assert first != second and first.startswith("o-INC-1-")  # one key per secret
        assert kek.unwrap(first, wrapped, b"INC-1") == b"\x04" * 32
        assert first not in kek.period_ids()  # retention's day keys do not list it
        kek.destroy(first)
        with pytest.raises(KeyUnavailable, match="destroyed or never made"):
            kek.unwrap(first, wrapped, b"INC-1")
    local.close()


def test_key_encryption_key_rotation_in_the_token(pkcs11_home: Home) -> None:
    from gateway import registry

    kek = pkcs11_home.keys.kek
    registry.add_device(pkcs11_home.store, kek, "HH-1", "test")
    old = kek.current_id()
    new = kek.create()
    assert kek.current_id() == new and kek.ids() == [old, new]
    assert pkcs11_home.vault.rewrap(pkcs11_home.store) == 1
    kek.retire(old)
    assert kek.ids() == [new]
    assert len(registry.device_secret(pkcs11_home.store, kek, "HH-1")) == 32
    with pytest.raises(KeyUnavailable, match="current"):
        kek.retire(new)


def test_config_check_passes_a_ready_token(pkcs11_home: Home) -> None:
    level, text = _keys_finding(pkcs11_home.config.home)
    assert level == OK and "PKCS#11 token" in text and "in the token" in text


def test_config_check_says_the_local_key_file_is_not_for_production(tmp_path: Path) -> None:
    init(tmp_path / "vp").close()
    level, text = _keys_finding(tmp_path / "vp")
    assert level == WARN and "NOT for production" in text and "pkcs11" in text


def test_config_check_names_a_wrong_pin_module_or_token(pkcs11_home: Home, soft_token: SoftToken) -> None:
    folder = pkcs11_home.config.home
    pkcs11_home.close()
    pkcs11_home.close = lambda: None  # type: ignore[method-assign]
    (folder / "token.pin").write_text("000000\n")
    assert _keys_finding(folder) == (FAIL, "PKCS#11: the PIN for token \"veilpost-test\" is wrong")
    with pytest.raises(TokenError, match="PIN .* is wrong"):
        open_home(folder)
    (folder / "token.pin").write_text(soft_token.pin + "\n")
    config_mod.set_values(folder, {"keys.token_label": "no-such-token"})
    level, text = _keys_finding(folder)
    assert level == FAIL and "no token labelled \"no-such-token\"" in text
    config_mod.set_values(folder, {"keys.token_label": soft_token.label,
                                   "keys.module": str(folder / "missing.so")})
    level, text = _keys_finding(folder)
    assert level == FAIL and "no such file" in text
    config_mod.set_values(folder, {"keys.module": soft_token.module})
    os.chmod(folder / "token.pin", 0o644)
    level, text = _keys_finding(folder)
    assert level == FAIL and "readable by others" in text


def test_config_check_finds_a_token_without_the_gateways_objects(tmp_path: Path,
                                                                 soft_token: SoftToken) -> None:
    configure(tmp_path / "vp", soft_token)  # configured, `init` not run
    level, text = _keys_finding(tmp_path / "vp")
    assert level == FAIL and "run `veilpost init`" in text and "audit signing key" in text
    with pytest.raises(KeyUnavailable, match="veilpost init"):
        open_home(tmp_path / "vp")


def test_local_key_files_left_beside_a_token_are_pointed_out(pkcs11_home: Home) -> None:
    folder = pkcs11_home.config.home
    (folder / "keys").mkdir(mode=0o700)
    (folder / "keys" / "audit.hmac").write_bytes(b"\0" * 32)
    os.chmod(folder / "keys" / "audit.hmac", 0o600)
    level, text = _keys_finding(folder)
    assert level == WARN and "local key files are still in" in text


def test_pin_from_the_environment(pkcs11_home: Home, soft_token: SoftToken,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = pkcs11_home.config.home
    config_mod.set_values(folder, {"keys.pin_file": "", "keys.pin_env": "VP_TEST_TOKEN_PIN"})
    with pytest.raises(TokenError, match="VP_TEST_TOKEN_PIN.*not set"):
        open_home(folder).close()
    monkeypatch.setenv("VP_TEST_TOKEN_PIN", soft_token.pin)
    again = open_home(folder)
    try:
        assert again.keys.person_mac(b"courier:C-112") == pkcs11_home.keys.person_mac(b"courier:C-112")
    finally:
        again.close()


@pytest.mark.parametrize("keys, problem", [
    ({"provider": "pkcs11"}, "[keys] module: needed"),
    ({"provider": "pkcs11", "module": "/x.so", "token_label": "t"}, "pin_file or pin_env"),
    ({"provider": "pkcs11", "module": "/x.so", "token_label": "t", "pin_file": "a", "pin_env": "B"},
     "exactly one"),
    ({"provider": "hsm"}, "must be one of \"local\", \"pkcs11\""),
    ({"pin": "1234"}, "unknown key [keys] pin"),
    ({"pin_env": "not a name"}, "name of an environment variable"),
])
def test_config_refuses_a_keys_section_that_cannot_work(keys: dict[str, str], problem: str) -> None:
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.parse({"keys": keys}, Path("/nonexistent"))
    assert problem in str(e.value)


def test_a_loose_pin_file_is_a_loose_secret_the_gateway_tightens(pkcs11_home: Home) -> None:
    from gateway.config_check import secret_files, tighten_home

    folder = pkcs11_home.config.home
    os.chmod(folder / "token.pin", 0o644)
    assert folder / "token.pin" in secret_files(pkcs11_home.config)
    tightened, stuck = tighten_home(pkcs11_home.config)
    assert folder / "token.pin" in tightened and not stuck
    assert os.stat(folder / "token.pin").st_mode & 0o077 == 0


def test_two_homes_on_one_token_share_its_login_and_one_closing_leaves_the_other(pkcs11_home: Home) -> None:
    second = open_home(pkcs11_home.config.home)  # as `config check` beside a running gateway
    second.keys.person_mac(b"courier:C-112")
    second.close()
    # Closing a logged-in session logs every session of the process out: the first must still work.
    assert pkcs11_home.keys.sign(b"still here")
    key_id, wrapped = pkcs11_home.keys.kek.wrap(b"\x04" * 32, b"a")
    assert pkcs11_home.keys.kek.unwrap(key_id, wrapped, b"a") == b"\x04" * 32
