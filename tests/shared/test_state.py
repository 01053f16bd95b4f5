"""State shared across instances: what one instance of a deployment records, every other one
honours at once. Two instances on one database (SQLite, and PostgreSQL when configured), real HTTP
on loopback: replay, idempotency, verification counts, consents, console sessions, pseudonyms and
the policy bundle served to OPA sidecars."""

from __future__ import annotations

import threading
import uuid
from typing import Any, TypedDict

import httpx

from broker.console.accounts import Accounts
from broker.console.deps import SESSION_COOKIE
from demo.sources import subjects
from tests.console.helpers import csrf_of, sign_in
from tests.exchange.helpers import DAWN, admissions, entry, log_size, post, safeguarding, verified
from tests.support import LiveBroker, demo_key

Pair = tuple[LiveBroker, LiveBroker]
HOSPITAL_ED = "r9z-ed-safeguarding"
COUNCIL = "calderbridge-city-council"


class _Sent(TypedDict):
    status: int
    body: dict[str, Any]


def _send(broker: LiveBroker, client_id: str, body: dict[str, Any], key: str) -> httpx.Response:
    """``body`` exactly as given (the same bytes to every instance), under ``key``."""
    return post(broker, client_id, body, asserted=True, **{"Idempotency-Key": key})


# ----------------------------------------------------------------------------- replay


def test_a_client_assertion_used_on_one_instance_is_refused_on_the_other(pair: Pair) -> None:
    a, b = pair
    form = a.token_form(HOSPITAL_ED, demo_key(HOSPITAL_ED))
    assert a.http.post("/oauth2/token", data=form).status_code == 200
    replay = b.http.post("/oauth2/token", data=form)
    assert replay.status_code == 401, replay.text
    assert replay.json()["error"] == "invalid_client"
    # And the other way round, with a fresh assertion.
    form = b.token_form(HOSPITAL_ED, demo_key(HOSPITAL_ED))
    assert b.http.post("/oauth2/token", data=form).status_code == 200
    assert a.http.post("/oauth2/token", data=form).status_code == 401


def test_a_token_from_one_instance_is_honoured_by_the_other(pair: Pair) -> None:
    a, b = pair
    token = a.token(HOSPITAL_ED, demo_key(HOSPITAL_ED))
    response = b.get("/v1/whoami", token)
    assert response.status_code == 200, response.text
    assert response.json()["client_id"] == HOSPITAL_ED


# ----------------------------------------------------------------------------- idempotency


def test_a_retry_on_the_other_instance_gets_the_same_answer_and_one_entry(pair: Pair) -> None:
    a, b = pair
    body = verified(a, HOSPITAL_ED, safeguarding())
    key = f"retry-{uuid.uuid4()}"
    before = log_size(a)
    first = _send(a, HOSPITAL_ED, body, key)
    assert first.status_code == 200, first.text
    again = _send(b, HOSPITAL_ED, body, key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert log_size(a) == before + 1

    # The same key with another body, on the other instance: refused, nothing logged.
    other = _send(b, HOSPITAL_ED, {**body, "case_reference": "ED-2026-11-0043"}, key)
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.text
    assert log_size(a) == before + 1


def test_another_client_with_a_stolen_key_gets_nothing_of_the_first_answer(pair: Pair) -> None:
    """Keys are the client's own: a police system sending the hospital's key and body to the
    other instance has its own request judged (and refused: the ID token is not for it)."""
    a, b = pair
    body = verified(a, HOSPITAL_ED, safeguarding())
    key = f"stolen-{uuid.uuid4()}"
    first = _send(a, HOSPITAL_ED, body, key)
    assert first.status_code == 200, first.text
    thief = _send(b, "wcp-mash", body, key)
    assert 400 <= thief.status_code < 500, thief.text
    assert thief.json() != first.json()
    assert first.json()["exchange_id"] not in thief.text
    assert "record" not in thief.json()


def _race(pair: Pair, body: dict[str, Any], key: str) -> dict[str, _Sent]:
    """``body`` under ``key`` sent to both instances at the same moment."""
    answers: dict[str, _Sent] = {}
    start = threading.Barrier(2)

    def send(broker: LiveBroker, name: str) -> None:
        start.wait()
        response = _send(broker, HOSPITAL_ED, body, key)
        answers[name] = {"status": response.status_code, "body": response.json()}

    threads = [threading.Thread(target=send, args=(x, n)) for x, n in zip(pair, "ab", strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_concurrent_first_use_on_both_instances_makes_one_entry(pair: Pair) -> None:
    a, _ = pair
    body = verified(a, HOSPITAL_ED, safeguarding())
    for _ in range(3):
        before = log_size(a)
        answers = _race(pair, body, f"race-{uuid.uuid4()}")
        statuses = sorted(answer["status"] for answer in answers.values())
        # One answered; the other got the same answer, or 409 while the first was running.
        assert statuses in ([200, 200], [200, 409]), answers
        ids = {x["body"]["exchange_id"] for x in answers.values() if x["status"] == 200}
        assert len(ids) == 1, answers
        assert log_size(a) == before + 1


# ----------------------------------------------------------------------------- verification counts


def test_verification_answers_are_counted_across_instances(pair: Pair) -> None:
    """Five answers about one property in all (the per-record limit), whichever instance."""
    a, b = pair
    claims = {"address.postcode": subjects.HOUSEHOLD.postcode, "address.line1": "3 Linden Close"}
    by_uprn = {"type": "uprn", "value": subjects.HOUSEHOLD.uprn}
    statuses = []
    for broker in (a, b, a, b, a, b, a):
        response = post(broker, "ccc-school-admissions", admissions(subject=by_uprn, claims=claims))
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["limit"] in ("per_record", "per_party_flow_record")
    assert statuses == [200] * 5 + [429] * 2, statuses


# ----------------------------------------------------------------------------- consents


def _council(broker: LiveBroker, method: str, path: str, body: Any = None) -> httpx.Response:
    client = "ccc-revenues-benefits"
    token = broker.token(client, demo_key(client))
    return broker.http.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )


ATTEST = {
    "agreement_id": "ISA-PROOF-REUSE",
    "purpose": "homelessness-assessment",
    "dataset": "ccc.proof-documents",
    "subject": DAWN,
    "mode": "attest",
    "requested_by": {"user_id": "housing-officer-12", "role": "housing-options-officer"},
}


def test_a_consent_recorded_or_withdrawn_on_one_instance_holds_on_the_other_at_once(
    pair: Pair,
) -> None:
    a, b = pair
    before = post(b, "ccc-housing-options", ATTEST)
    assert before.status_code == 403, before.text
    recorded = _council(
        a,
        "POST",
        "/v1/consents",
        {
            "agreement_id": "ISA-PROOF-REUSE",
            "subject": DAWN,
            "from_party": COUNCIL,
            "to_party": COUNCIL,
            "purpose": "homelessness-assessment",
            "datasets": ["ccc.proof-documents"],
            "collection_method": "written",
            "recorded_by": {"name": "Priya Marsh", "role": "Benefits officer"},
        },
    )
    assert recorded.status_code == 201, recorded.text
    answered = post(b, "ccc-housing-options", ATTEST)
    assert answered.status_code == 200, answered.text

    withdrawn = _council(a, "POST", f"/v1/consents/{recorded.json()['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    refused = post(b, "ccc-housing-options", ATTEST)
    assert refused.status_code == 403, refused.text
    assert any("withdrawn" in reason for reason in refused.json()["reasons"]), refused.json()
    assert entry(b, refused.json()["exchange_id"])["decision"] == "deny"


# ----------------------------------------------------------------------------- console sessions


def _signed_in_on(broker: LiveBroker, session: httpx.Client) -> bool:
    with httpx.Client(base_url=broker.url, cookies=session.cookies, timeout=10) as other:
        page = other.get("/console/")
    return page.status_code == 200 and "/console/logout" in page.text


def test_a_console_session_made_on_one_instance_works_and_ends_on_the_other(pair: Pair) -> None:
    a, b = pair
    session = sign_in(a.url, "council-dpo")
    try:
        assert _signed_in_on(b, session)
        # Signed out on A: B no longer knows the session either (the cookie is kept here).
        kept = httpx.Cookies(session.cookies)
        page = session.get("/console/")
        out = session.post("/console/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303, out.text
        with httpx.Client(base_url=b.url, cookies=kept, timeout=10) as replayed:
            refused = replayed.get("/console/")
        assert "/console/logout" not in refused.text
        assert refused.status_code != 200 or "/console/login" in str(refused.url)
        assert not _signed_in_on(a, replayed)
    finally:
        session.close()


def test_a_session_ended_on_one_instance_is_refused_on_the_other(pair: Pair) -> None:
    """The officer ends a session (say its cookie was stolen) from another of their sessions on
    B: the stolen cookie is refused on A at once. Another officer cannot end it from either."""
    a, b = pair
    victim = sign_in(a.url, "r9z-caldicott")
    stolen = httpx.Cookies(victim.cookies)
    handle = Accounts.handle_of(stolen.get(SESSION_COOKIE) or "")
    officer = sign_in(b.url, "r9z-caldicott")
    intruder = sign_in(b.url, "council-dpo")
    try:
        page = intruder.get("/console/sessions")
        tried = intruder.post(
            "/console/sessions/end", data={"handle": handle, "csrf": csrf_of(page.text)}
        )
        assert tried.status_code == 404, tried.text
        assert _signed_in_on(a, victim)

        page = officer.get("/console/sessions")
        assert handle in page.text
        ended = officer.post(
            "/console/sessions/end", data={"handle": handle, "csrf": csrf_of(page.text)}
        )
        assert ended.status_code == 303, ended.text
        with httpx.Client(base_url=a.url, cookies=stolen, timeout=10) as thief:
            refused = thief.get("/console/")
        assert refused.status_code != 200 or "/console/logout" not in refused.text
        assert not _signed_in_on(a, victim)
        assert _signed_in_on(a, officer)  # the officer's own session is untouched
    finally:
        for client in (victim, officer, intruder):
            client.close()


# ----------------------------------------------------------------------------- pseudonyms, bundle


def test_the_same_person_gets_the_same_pseudonym_on_both(pair: Pair) -> None:
    a, b = pair
    ids = []
    for broker in (a, b):
        response = post(broker, HOSPITAL_ED, safeguarding())
        assert response.status_code == 200, response.text
        ids.append(response.json()["exchange_id"])
    first, second = (entry(a, exchange_id) for exchange_id in ids)
    assert first["subject_pseudonym"], first
    assert first["subject_pseudonym"] == second["subject_pseudonym"]
    assert first["subject_key_version"] == second["subject_key_version"]


def bundle(broker: LiveBroker, etag: str | None = None) -> httpx.Response:
    token = broker.token("opa-sidecar", demo_key("opa-sidecar"))
    headers = {"If-None-Match": etag} if etag else None
    return broker.get("/v1/policy/bundle", token, headers=headers)


def test_both_serve_the_same_bundle_etag_and_bytes(pair: Pair) -> None:
    a, b = pair
    on_a, on_b = bundle(a), bundle(b)
    assert on_a.status_code == on_b.status_code == 200, (on_a.text, on_b.text)
    assert on_a.headers["ETag"] == on_b.headers["ETag"]
    assert on_a.content == on_b.content
    # A sidecar moved from one instance to the other is told nothing changed.
    assert bundle(b, on_a.headers["ETag"]).status_code == 304


def test_a_client_without_the_bundle_scope_gets_no_bundle_from_either(pair: Pair) -> None:
    for broker in pair:
        token = broker.token(HOSPITAL_ED, demo_key(HOSPITAL_ED))
        assert broker.get("/v1/policy/bundle", token).status_code == 403
