"""Requests as the demo partner systems make them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import LiveBroker, demo_key

CHILD = "9990000018"  # Amelia Hartley, on a child protection plan
NO_PLAN = "9990000034"


def safeguarding(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        "subject": {"type": "nhs_number", "value": CHILD},
        "fields": [
            "name.family",
            "child_protection_plan.status",
            "child_protection_plan.category",
        ],
        "requested_by": {"user_id": "hospital-ed-nurse-17", "role": "safeguarding-nurse"},
        "case_reference": "ED-2026-11-0042",
        "justification": "child attended ED with injuries",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def admissions(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agreement_id": "ISA-SCHOOL-ADMISSIONS",
        "purpose": "school-admission-address-check",
        "dataset": "ccc.council-tax",
        "subject": {"type": "uprn", "value": "100000000002"},
        "mode": "verify",
        "claims": {"address.postcode": "CX2 7PQ", "address.line1": "3 Linden Close"},
        "requested_by": {"user_id": "admissions-officer-4", "role": "admissions-officer"},
    }
    body.update(changes)
    return body


_tokens: dict[tuple[str, str], str] = {}


def post(
    broker: LiveBroker, client_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    cache_key = (broker.url, client_id)
    if cache_key not in _tokens:
        _tokens[cache_key] = broker.token(client_id, demo_key(client_id))
    return broker.http.post(
        "/v1/exchanges",
        json=body,
        headers={"Authorization": f"Bearer {_tokens[cache_key]}", **headers},
    )


def log_size(broker: LiveBroker) -> int:
    return broker.services.audit.size()


def entry(broker: LiveBroker, exchange_id: str) -> dict[str, Any]:
    from broker.audit.search import get_exchange

    return dict(get_exchange(broker.services.audit.engine, exchange_id))


DAWN = {"type": "person_id", "value": "P0000008"}  # benefits claimant with three documents


def record_consent(
    broker: LiveBroker, dataset: str, subject: dict[str, str] = DAWN
) -> httpx.Response:
    """Revenues and Benefits records the citizen's written consent under ISA-PROOF-REUSE."""
    token = broker.token("ccc-revenues-benefits", demo_key("ccc-revenues-benefits"))
    return broker.http.post(
        "/v1/consents",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "agreement_id": "ISA-PROOF-REUSE",
            "subject": subject,
            "from_party": "calderbridge-city-council",
            "to_party": "calderbridge-city-council",
            "purpose": "homelessness-assessment",
            "datasets": [dataset],
            "collection_method": "written",
            "recorded_by": {"name": "Priya Marsh", "role": "Benefits officer"},
        },
    )
