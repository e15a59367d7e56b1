"""The gateway's own tests, run again with the keys in a PKCS#11 token (a
SoftHSM2 token per test): the same test functions, collected here with
`gateway_home` swapped for a home whose [keys] provider is "pkcs11". Tests
that look at the local key files themselves are left to the local run."""

from __future__ import annotations

import pytest

from gateway.home import Home
from tests import test_audit, test_gateway_retention, test_reveal_policy, test_sentinel, test_vault

LOCAL_ONLY = {
    "test_key_files_are_owner_only",  # the local key files' modes
}

for _module in (test_audit, test_gateway_retention, test_reveal_policy, test_sentinel, test_vault):
    _short = _module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    for _name in dir(_module):
        if _name.startswith("test_") and _name not in LOCAL_ONLY:
            globals()["test_pkcs11_%s__%s" % (_short, _name[5:])] = getattr(_module, _name)


@pytest.fixture
def gateway_home(pkcs11_home: Home) -> Home:
    return pkcs11_home


def test_pkcs11_is_what_the_suite_runs_on(gateway_home: Home) -> None:
    assert type(gateway_home.keys).__name__ == "TokenKeys"
    assert not (gateway_home.config.home / "keys").exists()
