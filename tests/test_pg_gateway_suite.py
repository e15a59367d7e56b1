"""The gateway's own tests, run again with the PostgreSQL store: the same
test functions, collected here with `gateway_home` swapped for a home whose
config says `store = "postgresql://..."` (a throwaway schema per test).
Tests that look inside the SQLite file itself are left to the SQLite run."""

from __future__ import annotations

import pytest

from gateway.home import Home
from tests import (
    test_audit,
    test_audit_search,
    test_audit_witness,
    test_cases,
    test_gateway_registry,
    test_gateway_retention,
    test_incidents,
    test_incidents_notify,
    test_operators,
    test_reveal_policy,
    test_sentinel,
    test_vault,
)
from tests.fixtures.postgres import pg_available
from tests.test_audit_witness import witnessed  # noqa: F401 (a fixture of those tests)
from tests.test_incidents import sms  # noqa: F401 - fixtures of the collected tests
from tests.test_incidents_notify import sinks  # noqa: F401

SQLITE_ONLY = {
    "test_migrations_run_once",  # opens a SQLite file by path
    "test_audit_failure_denies",  # breaks the audit table with a SQLite trigger
}

for _module in (test_audit, test_audit_search, test_audit_witness, test_cases, test_gateway_registry,
                test_gateway_retention, test_incidents, test_incidents_notify, test_operators,
                test_reveal_policy, test_sentinel, test_vault):
    _short = _module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    for _name in dir(_module):
        if _name.startswith("test_") and _name not in SQLITE_ONLY:
            globals()["test_pg_%s__%s" % (_short, _name[5:])] = getattr(_module, _name)


@pytest.fixture
def gateway_home(pg_home: Home) -> Home:
    return pg_home


def test_pg_store_is_what_the_suite_runs_on(gateway_home: Home) -> None:
    assert pg_available()
    assert type(gateway_home.store).__name__ == "PgStore"
    assert gateway_home.store.version >= 1



# A revoked handheld's quarantine, found through the audit log, on PostgreSQL too.
from tests import test_provision  # noqa: E402
from tests.test_provision import site  # noqa: E402,F401  (the fixture the test below takes)

_QUARANTINE = test_provision.test_an_offline_handheld_connecting_hours_later_is_wiped_and_then_refused
test_pg_provision__quarantine = _QUARANTINE
