"""The console's impact page over HTTP: who sees what in detail, and forged posts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing

import pytest

from broker.pseudonym_keys import load_pseudonym_keys
from tests.console.helpers import REPO, console_broker, csrf_of, safeguarding_entry, sign_in
from tests.support import LiveBroker

DRAFT = (REPO / "agreements" / "examples" / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml").read_text()
DRAFT = DRAFT.replace("version: 1", "version: 2", 1).replace(
    "requester_roles: [safeguarding-nurse, ed-doctor, gp, mash-officer]",
    "requester_roles: [safeguarding-nurse, ed-doctor, school-nurse, mash-officer]",
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    with console_broker(tmp_path_factory.mktemp("impact-http")) as (live, _):
        keyring = load_pseudonym_keys(live.settings.pseudonym_key_file)
        for i in range(2):  # the GP practice's checks: another party for the hospital
            live.services.audit.append(
                safeguarding_entry(
                    keyring,
                    client_id="y99901-gp",
                    party_id="Y99901",
                    user_role="gp",
                    user_id=f"gp-user-{i}",
                    details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
                )
            )
        yield live


def run(broker: LiveBroker, username: str, draft: str = DRAFT) -> str:
    with closing(sign_in(broker.url, username)) as client:
        page = client.get("/console/agreements/impact")
        assert page.status_code == 200, page.text
        response = client.post(
            "/console/agreements/impact",
            data={"csrf": csrf_of(page.text), "draft": draft, "days": "30"},
            follow_redirects=True,
        )
    assert response.status_code == 200, response.text
    return response.text


def _rows(html: str) -> list[str]:
    table = html.split('id="impact-groups"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", table, re.S)


def test_the_hospital_sees_the_gp_practice_as_counts_only(broker: LiveBroker) -> None:
    html = run(broker, "r9z-caldicott")
    rows = _rows(html)
    gp = [r for r in rows if "Y99901" in r]
    assert gp
    assert all("counts only" in r for r in gp)
    assert not [r for r in rows if "R9Z" in r and "counts only" in r]
    examples = html.split('id="impact-examples"', 1)[1].split("</table>", 1)[0]
    assert "Y99901" not in examples
    assert "gp-user-" not in html


def test_oversight_sees_every_party_in_detail(broker: LiveBroker) -> None:
    html = run(broker, "council-dpo")
    assert not [r for r in _rows(html) if "counts only" in r]


def test_a_post_without_the_sessions_csrf_token_is_refused(broker: LiveBroker) -> None:
    with closing(sign_in(broker.url, "r9z-caldicott")) as client:
        response = client.post(
            "/console/agreements/impact", data={"csrf": "forged", "draft": DRAFT, "days": "30"}
        )
    assert response.status_code == 403


def test_a_draft_of_an_agreement_the_hospital_is_not_in_is_refused(broker: LiveBroker) -> None:
    fraud = (REPO / "agreements" / "examples" / "isa" / "ISA-SPD-FRAUD.yaml").read_text()
    with closing(sign_in(broker.url, "r9z-caldicott")) as client:
        page = client.get("/console/agreements/impact")
        response = client.post(
            "/console/agreements/impact",
            data={"csrf": csrf_of(page.text), "draft": fraud, "days": "30"},
        )
    assert response.status_code == 403


def test_another_partys_run_is_not_found(broker: LiveBroker) -> None:
    with closing(sign_in(broker.url, "council-dpo")) as client:
        page = client.get("/console/agreements/impact")
        response = client.post(
            "/console/agreements/impact",
            data={"csrf": csrf_of(page.text), "draft": DRAFT, "days": "30"},
        )
    job = response.headers["location"].split("job=", 1)[1]
    with closing(sign_in(broker.url, "r9z-caldicott")) as hospital:
        assert hospital.get(f"/console/agreements/impact?job={job}").status_code == 404
