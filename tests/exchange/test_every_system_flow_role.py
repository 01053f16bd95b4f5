"""Every demo system against every example flow with every role, over HTTP on the demo broker.

Each combination is asked three ways: by a verified user (the party's demo identity provider's
ID token for that user and role, exchanged for a user-restricted token, RFC 8693), by a user the
system only names (an application token and ``requested_by``), and, once per system and flow, by
the system for itself (no person). The answer must be what the three rules give, computed here
from the agreements and the demo bindings, independently of the broker:

- the agreement grants it: the system's party is a recipient of the flow and the role is among
  the flow's ``requester_roles`` (no person: only where the flow says ``identity: system``);
- a verified user carries the role where the flow needs one (``identity: verified``, the default);
- the system is bound to the role (for that agreement and flow).

Allowed means answered (200, or 202 where the flow holds the request for the citizen's preview);
refused means 403 with the reason of the first rule broken, and a denied entry in the log. Every
other condition of the flows (case reference, consent, fields) is met by the requests, so that
nothing else decides.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from broker.auth.assertion import TOKEN_EXCHANGE_GRANT
from broker.identity.token_exchange import ID_TOKEN_TYPE
from demo.identity import demo_id_token
from demo.parties import DEMO_CLIENTS, DemoClient
from demo.sources import subjects
from tests.exchange.helpers import entry, record_consent
from tests.support import LiveBroker, demo_key

EXAMPLES = Path(__file__).resolve().parents[2] / "agreements" / "examples" / "isa"
UNKNOWN_ROLE = "porter"  # no agreement names it
NEEDS_VERIFIED = "this flow needs a verified user"


@dataclass(frozen=True)
class FlowCase:
    agreement_id: str
    flow_id: str
    dataset: str
    purpose: str
    recipients: frozenset[str]
    roles: frozenset[str]
    identity: str


def _flows() -> list[FlowCase]:
    out = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        agreement = yaml.safe_load(path.read_text())
        for flow in agreement["flows"]:
            conditions = flow.get("conditions") or {}
            out.append(
                FlowCase(
                    agreement_id=agreement["id"],
                    flow_id=flow["id"],
                    dataset=flow["dataset"],
                    purpose=flow["purposes"][0],
                    recipients=frozenset(flow["recipients"]),
                    roles=frozenset(conditions.get("requester_roles") or ()),
                    identity=flow.get("identity", "verified"),
                )
            )
    return out


FLOWS = _flows()
SYSTEMS = [c for c in DEMO_CLIENTS if "exchange" in c.scopes]
ROLES = sorted({r for f in FLOWS for r in f.roles} | {UNKNOWN_ROLE})

#: What each flow's request asks, meeting its conditions (case reference, consent, fields).
BODIES: dict[str, dict[str, Any]] = {
    "cp-status-to-health-and-police": {
        "subject": {"type": "nhs_number", "value": subjects.CHILD_ON_PLAN.nhs_number},
        "fields": ["child_protection_plan.status"],
        "case_reference": "ED-2026-11-0042",
    },
    "council-tax-address-match": {
        "subject": {"type": "uprn", "value": subjects.HOUSEHOLD.uprn},
        "mode": "verify",
        "claims": {"address.postcode": subjects.HOUSEHOLD.postcode},
    },
    "elector-counts-to-revenues": {
        "subject": {"type": "uprn", "value": subjects.SPD_REVIEW_HOUSEHOLD.uprn},
        "fields": ["electors.count"],
    },
    "discharge-summary-to-adult-social-care": {
        "subject": {"type": "nhs_number", "value": subjects.DISCHARGE_PATIENT.nhs_number},
    },
    "proof-documents-to-housing-options": {
        "subject": {"type": "person_id", "value": subjects.BENEFITS_CLAIMANT.person_id},
        "mode": "attest",
    },
    "benefit-claims-to-housing-options": {
        "subject": {"type": "person_id", "value": subjects.BENEFITS_CLAIMANT.person_id},
        "fields": ["claim.type"],
    },
}


def body_for(flow: FlowCase, requested_by: dict[str, str] | None) -> dict[str, Any]:
    body = {
        "agreement_id": flow.agreement_id,
        "purpose": flow.purpose,
        "dataset": flow.dataset,
        **BODIES[flow.flow_id],
    }
    if requested_by is not None:
        body["requested_by"] = requested_by
    return body


def bound(system: DemoClient, role: str, flow: FlowCase) -> bool:
    return any(
        (role == "" or b.role == role)
        and b.agreement_id in (None, flow.agreement_id)
        and b.flow_id in (None, flow.flow_id)
        for b in system.roles
    )


def expected(system: DemoClient, flow: FlowCase, role: str, assurance: str) -> str | None:
    """None where the request must be answered, else the words its refusal must include."""
    granted = system.party_id in flow.recipients and (
        (role == "" and flow.identity == "system") or (role != "" and role in flow.roles)
    )
    if not granted:
        return ""  # the policy's own reason (the party, the role or the person)
    if flow.identity == "verified" and assurance != "verified":
        return NEEDS_VERIFIED
    if not bound(system, role, flow):
        return "bound to"
    return None


@pytest.fixture(scope="module")
def office_hours(broker: LiveBroker) -> Iterator[None]:
    """The broker's clock at 11:00 UK time on the next weekday (a flow asks for office hours)."""
    london = ZoneInfo("Europe/London")
    day = dt.datetime.now(london).date() + dt.timedelta(days=1)
    while day.isoweekday() > 5:
        day += dt.timedelta(days=1)
    at = dt.datetime.combine(day, dt.time(11, 0), london).timestamp()
    offset = at - time.time()
    broker.clock.offset += offset
    try:
        yield
    finally:
        broker.clock.offset -= offset


@pytest.fixture(scope="module")
def consented(broker: LiveBroker) -> None:
    """The claimant's recorded consent for both proof reuse datasets."""
    person = {"type": "person_id", "value": subjects.BENEFITS_CLAIMANT.person_id}
    for dataset in ("ccc.proof-documents", "ccc.benefit-claims"):
        assert record_consent(broker, dataset, person).status_code == 201


class Tokens:
    """Application tokens per system, user-restricted tokens per system and role."""

    def __init__(self, broker: LiveBroker) -> None:
        self.broker = broker
        self._app: dict[str, str] = {}
        self._user: dict[tuple[str, str], str | None] = {}

    def app(self, client_id: str) -> str:
        if client_id not in self._app:
            self._app[client_id] = self.broker.token(client_id, demo_key(client_id))
        return self._app[client_id]

    def user(self, client_id: str, role: str) -> str | None:
        """The token of a user holding ``role`` at the system's party, or None where the
        party's identity provider gives no such role."""
        if (client_id, role) not in self._user:
            try:
                id_token = demo_id_token(
                    f"{client_id}-{role}-user", role, client_id, now=self.broker.clock()
                )
            except ValueError:
                self._user[client_id, role] = None
            else:
                form = self.broker.token_form(client_id, demo_key(client_id))
                form.update(
                    grant_type=TOKEN_EXCHANGE_GRANT,
                    subject_token=id_token,
                    subject_token_type=ID_TOKEN_TYPE,
                )
                response = self.broker.http.post("/oauth2/token", data=form)
                assert response.status_code == 200, response.text
                self._user[client_id, role] = str(response.json()["access_token"])
        return self._user[client_id, role]


def ask(broker: LiveBroker, token: str, body: dict[str, Any]) -> httpx.Response:
    return broker.http.post(
        "/v1/exchanges", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def check(
    broker: LiveBroker, response: httpx.Response, want: str | None, what: str
) -> tuple[str, ...]:
    if want is None:
        assert response.status_code in (200, 202), f"{what}: {response.text}"
        return ()
    assert response.status_code == 403, f"{what}: {response.text}"
    answer = response.json()
    reasons = tuple(answer["reasons"])
    assert any(want in r for r in reasons), f"{what}: {reasons}"
    logged = entry(broker, answer["exchange_id"])
    assert logged["decision"] == "deny", what
    assert logged["released_fields"] == [], what
    return reasons


def test_the_flows_and_systems_under_test() -> None:
    assert len(FLOWS) == len(BODIES) == 6
    assert {f.flow_id for f in FLOWS} == set(BODIES)
    assert {f.identity for f in FLOWS} == {"verified", "system"}
    assert len(SYSTEMS) >= 9


def test_every_system_flow_and_role(
    broker: LiveBroker, office_hours: None, consented: None
) -> None:
    tokens = Tokens(broker)
    answered = {"verified": 0, "asserted": 0, "system": 0}
    refused = {"verified": 0, "asserted": 0, "system": 0}
    unbound_refusals = 0
    for system in SYSTEMS:
        for flow in FLOWS:
            # The system for itself, no person.
            want = expected(system, flow, "", "system")
            response = ask(broker, tokens.app(system.id), body_for(flow, None))
            check(broker, response, want, f"{system.id} {flow.flow_id} (no person)")
            (answered if want is None else refused)["system"] += 1
            for role in ROLES:
                user = f"{system.id}-{role}-user"
                # A user the system only names.
                want = expected(system, flow, role, "asserted")
                named = body_for(flow, {"user_id": user, "role": role})
                response = ask(broker, tokens.app(system.id), named)
                check(broker, response, want, f"{system.id} {flow.flow_id} {role} (asserted)")
                (answered if want is None else refused)["asserted"] += 1
                # A verified user, where the party's identity provider gives the role.
                want = expected(system, flow, role, "verified")
                token = tokens.user(system.id, role)
                if token is None:
                    # Nobody at the party can be verified in this role: it must not be a role
                    # the system is bound to and the agreement grants it.
                    assert want is not None or flow.identity != "verified", (
                        f"{system.id} is bound to {role} for {flow.flow_id}, "
                        "but its party's identity provider gives no such role"
                    )
                    continue
                response = ask(broker, token, body_for(flow, None))
                reasons = check(
                    broker, response, want, f"{system.id} {flow.flow_id} {role} (verified)"
                )
                unbound_refusals += any("bound to" in r for r in reasons)
                (answered if want is None else refused)["verified"] += 1
    # Each way of asking is both answered and refused somewhere, and the bindings decided some.
    assert all(answered.values()), answered
    assert all(refused.values()), refused
    assert unbound_refusals > 0
