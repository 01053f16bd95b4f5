"""Requests as the demo partner systems make them.

Most example flows need a verified user (``identity: verified``): :func:`post` sends, with a
``requested_by`` that names a user and role, an ID token of that user from an identity provider
registered for the client's party (the party's demo provider, or, for a role that provider does not
give, a test provider with a key made at test time). ``asserted=True`` sends ``requested_by`` as
the system asserts it.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from demo.identity import demo_id_token, register_demo_identity_provider
from demo.parties import DEMO_CLIENTS, HOSPITAL
from tests.support import LiveBroker, demo_key

PARTY_OF = {c.id: c.party_id for c in DEMO_CLIENTS}


@functools.cache
def _test_idp_key() -> ECKey:
    return ECKey.generate_key("P-256")  # made at test time: never committed


def throwaway_issuer(party_id: str) -> str:
    return f"https://idp.{party_id.lower()}.test.example"


def ensure_idp(broker: LiveBroker, party_id: str) -> None:
    """A test identity provider for ``party_id`` beside its demo one, once."""
    store = broker.services.identity.store
    if party_id == HOSPITAL:
        register_demo_identity_provider(store)
    if store.get(party_id, throwaway_issuer(party_id)) is not None:
        return
    jwk = dict(_test_idp_key().as_dict(private=False))
    jwk.update(kid="test-1", use="sig", alg="ES256")
    store.add(party_id, throwaway_issuer(party_id), actor="test", jwks={"keys": [jwk]})


def id_token_of(broker: LiveBroker, client_id: str, user_id: str, role: str) -> str:
    """An ID token of ``user_id`` with ``role`` for ``client_id``, from its party's provider."""
    party_id = PARTY_OF[client_id]
    try:
        return demo_id_token(user_id, role, client_id)
    except ValueError:  # a role the party's demo provider does not give
        ensure_idp(broker, party_id)
    now = int(time.time())
    claims = {
        "iss": throwaway_issuer(party_id),
        "aud": client_id,
        "sub": user_id,
        "role": role,
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode({"alg": "ES256", "kid": "test-1"}, claims, _test_idp_key())


_id_tokens: dict[tuple[str, str, str, str], tuple[float, str]] = {}


def verified(broker: LiveBroker, client_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with an ID token of the user its ``requested_by`` names (unchanged otherwise)."""
    asserted = body.get("requested_by")
    if not isinstance(asserted, dict) or "id_token" in asserted:
        return body
    if not isinstance(asserted.get("user_id"), str) or not isinstance(asserted.get("role"), str):
        return body
    # One token per user and role for a minute: an idempotent retry sends the same body.
    key = (broker.url, client_id, asserted["user_id"], asserted["role"])
    made, token = _id_tokens.get(key, (0.0, ""))
    if time.monotonic() - made > 60:
        token = id_token_of(broker, client_id, asserted["user_id"], asserted["role"])
        _id_tokens[key] = (time.monotonic(), token)
    return {**body, "requested_by": {**asserted, "id_token": token}}


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
    broker: LiveBroker,
    client_id: str,
    body: dict[str, Any],
    *,
    asserted: bool = False,
    **headers: str,
) -> httpx.Response:
    """``body`` sent by ``client_id``; its ``requested_by`` verified by an ID token unless
    ``asserted``."""
    cache_key = (broker.url, client_id)
    if cache_key not in _tokens:
        _tokens[cache_key] = broker.token(client_id, demo_key(client_id))
    return broker.http.post(
        "/v1/exchanges",
        json=body if asserted else verified(broker, client_id, body),
        headers={"Authorization": f"Bearer {_tokens[cache_key]}", **headers},
    )


def log_size(broker: LiveBroker) -> int:
    """The log's entries other than administrative acts (suspending a client, say, is an entry
    of kind ``admin``): exchanges, dry runs, audit reads."""
    from sqlalchemy import func, select

    from broker.audit.tables import audit_entries

    query = select(func.count()).select_from(audit_entries)
    with broker.services.audit.engine.connect() as conn:
        return int(conn.execute(query.where(audit_entries.c.kind != "admin")).scalar_one())


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
