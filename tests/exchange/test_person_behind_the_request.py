"""The person behind the request: verified from the party's own identity provider where it has
one (the CIS2-like national sign-in for the hospital in the demo); break-glass needs it (the
policy refuses an asserted one)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from demo.identity import demo_id_token, register_demo_identity_provider
from tests.exchange.helpers import entry, post, safeguarding

BREAK_GLASS = {
    "fields": ["child_protection_plan.status", "social_worker.name"],
    "break_glass": True,
    "justification": "child unresponsive, parent absent, plan status needed now",
}


@pytest.fixture
def hospital_idp(broker: Any) -> Iterator[None]:
    register_demo_identity_provider(broker.services.identity.store)
    yield
    broker.services.identity.store.remove("R9Z", actor="test")


def test_break_glass_needs_a_verified_person_where_the_party_has_a_provider(
    broker: Any, hospital_idp: None
) -> None:
    # No ID token: the request goes on as asserted, and the policy refuses the break-glass.
    response = post(broker, "r9z-ed-safeguarding", safeguarding(**BREAK_GLASS), asserted=True)
    assert response.status_code == 403, response.text
    assert "break-glass needs a verified user" in response.json()["reasons"]


def test_the_verified_person_is_logged_instead_of_the_asserted_one(
    broker: Any, hospital_idp: None
) -> None:
    token = demo_id_token("nurse.okoro@r9z.example", "safeguarding-nurse", now=time.time())
    body = safeguarding(
        **BREAK_GLASS,
        requested_by={
            "user_id": "claimed-someone-else",
            "role": "safeguarding-nurse",
            "id_token": token,
        },
    )
    response = post(broker, "r9z-ed-safeguarding", body)
    assert response.status_code == 200, response.text
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["user_id"] == "nurse.okoro@r9z.example"
    assert logged["details"]["user_verified"] is True


def test_a_forged_id_token_is_refused(broker: Any, hospital_idp: None) -> None:
    token = demo_id_token("nurse.okoro@r9z.example", "safeguarding-nurse", now=time.time())
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    body = safeguarding(
        requested_by={"user_id": "x", "role": "safeguarding-nurse", "id_token": forged}
    )
    assert post(broker, "r9z-ed-safeguarding", body).status_code == 422


def test_a_preview_binds_the_person_with_their_provider() -> None:
    """A held request is released only to the same person: the same subject asserted by the
    system, or verified by another provider, is someone else."""
    from broker.exchange.entries import Person

    verified = Person(user_id="nurse-17", role="r", assurance="verified", issuer="https://a")
    other_provider = Person(user_id="nurse-17", role="r", assurance="verified", issuer="https://b")
    asserted = Person(user_id="nurse-17", role="r", assurance="asserted")
    assert len({verified.key, other_provider.key, asserted.key}) == 3
    assert (
        verified.key
        == Person(user_id="nurse-17", role="other", assurance="verified", issuer="https://a").key
    )
