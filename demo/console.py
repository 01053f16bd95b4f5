"""Demo officer accounts for ``broker serve --demo``, with published passwords.

Refused outside demo mode: these passwords are in the documentation, so they must never guard
real data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from broker.console.accounts import Accounts, Role
from broker.core.errors import ConfigurationError
from broker.settings import Settings
from demo.parties import COUNCIL, HOSPITAL


@dataclass(frozen=True)
class DemoOfficer:
    username: str
    party_id: str
    role: Role
    display_name: str
    password: str


DEMO_OFFICERS: tuple[DemoOfficer, ...] = (
    DemoOfficer(
        "council-dpo", COUNCIL, Role.OVERSIGHT, "Priya Natarajan (DPO)", "demo-oversight-lantern"
    ),
    DemoOfficer(
        "r9z-caldicott",
        HOSPITAL,
        Role.GOVERNANCE,
        "Dr Owen Hale (Caldicott Guardian)",
        "demo-guardian-harbour",
    ),
    DemoOfficer(
        "council-isa-admin",
        COUNCIL,
        Role.AGREEMENT_ADMIN,
        "Sam Okafor (ISA admin)",
        "demo-agreements-maple",
    ),
    DemoOfficer(
        "internal-auditor",
        COUNCIL,
        Role.AUDITOR,
        "Jo Whitfield (internal audit)",
        "demo-audit-compass",
    ),
)


def create_demo_officers(settings: Settings, engine: Engine) -> list[DemoOfficer]:
    """Create the demo officer accounts that do not exist yet. Raises ConfigurationError
    outside demo mode."""
    if not settings.demo:
        raise ConfigurationError("demo console accounts are refused outside --demo")
    accounts = Accounts(engine)
    for officer in DEMO_OFFICERS:
        if accounts.find(officer.username) is None:
            accounts.add_user(
                officer.username,
                officer.party_id,
                officer.role,
                officer.password,
                display_name=officer.display_name,
            )
    return list(DEMO_OFFICERS)
