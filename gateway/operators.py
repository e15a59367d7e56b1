"""The people who act on the gateway by name: IT staff (enrol, revoke,
import), depot staff (print, open complaint cases), complaint agents (see
what an approved case names) and security officers (lift suspensions,
approve cases, handle incidents). Every audited action of theirs names the
person (`--as NAME` on the CLI), checked against this list, never a bare
"operator". Officers are the `officers` table (they also hold a PIN);
the others are `operators` rows."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.store import Handle, Store
from protocol.errors import PolicyDenied

ROLES = ("it", "staff", "agent", "officer")
ROLE_NAMES = {"it": "IT", "staff": "depot staff", "agent": "complaint agent", "officer": "security officer"}


class NotAnOperator(PolicyDenied):
    """The name given with --as is not on the list for what it tried to do."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: str

    @property
    def kind(self) -> str:
        """The kind of person, as the audit log's pseudonym prefix names it."""
        return "officer" if self.role == "officer" else self.role


def _check_name(name: str) -> str:
    name = name.strip()
    if not (1 <= len(name) <= 64) or not name.isprintable():
        raise NotAnOperator("an operator's name must be 1-64 printable characters")
    return name


def add(store: Store, name: str, role: str, now: float | None = None) -> Operator:
    """Put a person on the list (officers: `veilpost officer add`, with a PIN)."""
    name = _check_name(name)
    if role not in ROLES or role == "officer":
        raise NotAnOperator("role must be one of it, staff, agent (officers: `veilpost officer add`)")
    with store.transaction() as tx:
        found = tx.one("SELECT role FROM operators WHERE name = ?", name)
        if found is not None:
            if found[0] != role:
                raise NotAnOperator("%s is already on the list as %s" % (name, ROLE_NAMES[str(found[0])]))
            return Operator(name, role)
        tx.run("INSERT INTO operators (name, role, added, active) VALUES (?, ?, ?, 1)",
               name, role, time.time() if now is None else now)
    return Operator(name, role)


def remove(store: Store, name: str) -> bool:
    """Take a person off the list (their past entries keep their pseudonym)."""
    with store.transaction() as tx:
        found = tx.one("SELECT 1 FROM operators WHERE name = ? AND active = 1", name)
        tx.run("UPDATE operators SET active = 0 WHERE name = ?", name)
    return found is not None


def listing(store: Store | Handle) -> list[Operator]:
    rows = store.all("SELECT name, role FROM operators WHERE active = 1 ORDER BY role, name")
    people = [Operator(str(r[0]), str(r[1])) for r in rows]
    people += [Operator(str(r[0]), "officer") for r in store.all("SELECT name FROM officers ORDER BY name")]
    return people


def require(store: Store | Handle, name: str | None, roles: tuple[str, ...]) -> Operator:
    """The person named, if they hold one of `roles`; NotAnOperator says
    who may do it otherwise. An officer may do what IT or staff may."""
    wanted = ", ".join(ROLE_NAMES[r] for r in roles)
    if not name:
        raise NotAnOperator("say who you are with --as NAME (%s)" % wanted)
    name = _check_name(name)
    row = store.one("SELECT role FROM operators WHERE name = ? AND active = 1", name)
    if row is not None and str(row[0]) in roles:
        return Operator(name, str(row[0]))
    if store.one("SELECT 1 FROM officers WHERE name = ?", name) is not None and (
            "officer" in roles or "it" in roles or "staff" in roles):
        return Operator(name, "officer")
    raise NotAnOperator("%s is not on the list as %s: `veilpost operator add %s --role ...` (or"
                        " `veilpost officer add`)" % (name, wanted, name))
