"""The console's impact page in real headless Chromium: paste a draft, see what it would change.

The figures shown are recounted here from the log's rows with the draft's rule written out by
hand (a request under the safeguarding agreement is allowed when its role is one the draft
lists, it carries a case reference and its user was verified).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broker.audit.entry import AgreementRef, parse_leaf
from broker.audit.tables import audit_entries
from broker.pseudonym_keys import load_pseudonym_keys
from tests.console.helpers import REPO, Seeded, console_broker, safeguarding_entry
from tests.support import LiveBroker

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "docs" / "screenshots"
AGREEMENT = "ISA-SAFEGUARDING-CHILDREN"
DRAFT_ROLES = {"safeguarding-nurse", "ed-doctor", "school-nurse", "mash-officer"}

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail("CI: /usr/bin/chromium is missing (apt-get install chromium)", pytrace=False)
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium", allow_module_level=True
    )

sync_api = pytest.importorskip("playwright.sync_api")


def draft_text() -> str:
    text = (REPO / "agreements" / "examples" / "isa" / f"{AGREEMENT}.yaml").read_text()
    text = text.replace("version: 1", "version: 2", 1)
    return text.replace(
        "requester_roles: [safeguarding-nurse, ed-doctor, gp, mash-officer]",
        "requester_roles: [safeguarding-nurse, ed-doctor, school-nurse, mash-officer]",
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, Seeded]]:
    with console_broker(tmp_path_factory.mktemp("impact")) as (broker, seeded):
        keyring = load_pseudonym_keys(broker.settings.pseudonym_key_file)
        ref = AgreementRef(AGREEMENT, "1", "sha256:" + "ab" * 32)
        for i in range(3):  # school nurses, refused today
            broker.services.audit.append(
                safeguarding_entry(
                    keyring,
                    user_role="school-nurse",
                    decision="deny",
                    released_fields=(),
                    released=None,
                    agreement=ref,
                    user_id=f"school-nurse-{i}",
                    details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
                )
            )
        for i in range(2):  # GPs, allowed today
            broker.services.audit.append(
                safeguarding_entry(
                    keyring,
                    client_id="y99901-gp",
                    party_id="Y99901",
                    user_role="gp",
                    user_id=f"gp-{i}",
                    details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
                )
            )
        yield broker, seeded


def recount(broker: LiveBroker) -> dict[str, int]:
    counts = {"newly_allowed": 0, "newly_denied": 0, "undetermined": 0}
    c = audit_entries.c
    with broker.services.audit.engine.connect() as conn:
        rows = conn.execute(select(c.leaf).where(c.kind == "exchange")).scalars().all()
    for leaf in rows:
        _, body = parse_leaf(bytes(leaf))
        if (body["agreement"] or {}).get("id") != AGREEMENT:
            continue
        assurance = (body["details"] or {}).get("user_assurance")
        allowed_now = (
            body["user_role"] in DRAFT_ROLES
            and body["commitments"]["case_reference"] is not None
            and assurance == "verified"
        )
        if (
            assurance is None
            and allowed_now is False
            and (
                body["user_role"] in DRAFT_ROLES
                and body["commitments"]["case_reference"] is not None
            )
        ):
            counts["undetermined"] += 1  # the log does not say how the user was known
            continue
        if body["decision"] == "deny" and allowed_now:
            counts["newly_allowed"] += 1
        if body["decision"] in ("allow", "not_found") and not allowed_now:
            counts["newly_denied"] += 1
    return counts


@pytest.fixture(scope="module")
def page(env: tuple[LiveBroker, Seeded]) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-sync"],
        )
        context = browser.new_context(base_url=env[0].url, viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
        context.close()
        browser.close()


def test_the_impact_page_shows_what_the_log_says(page: Any, env: tuple[LiveBroker, Seeded]) -> None:
    broker, _ = env
    page.goto("/console/agreements/impact")
    page.get_by_label("Username").fill("council-dpo")
    page.get_by_label("Password").fill("demo-oversight-lantern")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/agreements/impact")
    page.get_by_label("Draft agreement (YAML)").fill(draft_text())
    page.get_by_label("Days of the log to replay (1-90)").fill("30")
    page.get_by_role("button", name="Show the impact").click()
    page.wait_for_url("**/console/agreements/impact?job=*")
    expected = recount(broker)
    assert expected["newly_allowed"] >= 3
    assert expected["newly_denied"] >= 2
    assert expected["undetermined"] >= 1
    shown = {name: int(page.locator(f'[data-total="{name}"]').inner_text()) for name in expected}
    assert shown == expected
    matrix = page.locator("#impact-matrix")
    assert matrix.locator("tr.change-gained").count() > 0
    assert matrix.locator("tr.change-lost").count() > 0
    html = page.content()
    for personal in ("hospital-ed-nurse-17", "ED-2026-11-0042", "school-nurse-0", "gp-1"):
        assert personal not in html
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "impact.png"), full_page=True)


def test_a_bad_draft_is_named_by_place(page: Any) -> None:
    page.goto("/console/agreements/impact")
    page.get_by_label("Draft agreement (YAML)").fill("kind: agreement\nid: X\nversion: 0\n")
    page.get_by_role("button", name="Show the impact").click()
    problems = page.locator("#draft-problems")
    assert "version" in problems.inner_text()
    assert "title" in problems.inner_text()
