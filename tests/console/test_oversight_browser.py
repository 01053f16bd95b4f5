"""Oversight pages in real headless Chromium: a break-glass review becomes overdue when the
clock moves, and the register pages. Screenshots go to docs/screenshots/.

Skipped when /usr/bin/chromium is absent, except under CI=true where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.helpers import PASSWORDS, REPO, Seeded, console_broker
from tests.support import LiveBroker

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "docs" / "screenshots"
DAY = 86_400.0

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI") == "true":
        pytest.fail("CI: /usr/bin/chromium is missing (apt-get install chromium)", pytrace=False)
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium", allow_module_level=True
    )

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, Seeded]]:
    with console_broker(tmp_path_factory.mktemp("oversight")) as pair:
        yield pair


@pytest.fixture(scope="module")
def page(env: tuple[LiveBroker, Seeded]) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-sync"],
        )
        context = browser.new_context(base_url=env[0].url, viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.goto("/console/login")
        tab.get_by_label("Username").fill("r9z-caldicott")
        tab.get_by_label("Password").fill(PASSWORDS["r9z-caldicott"])
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url("**/console/")
        yield tab
        context.close()
        browser.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_break_glass_review_becomes_overdue_when_the_clock_moves(
    page: Any, env: tuple[LiveBroker, Seeded]
) -> None:
    broker, seeded = env
    page.goto("/console/break-glass")
    item = page.locator("article.queue-item").filter(has_text="unconscious child")
    assert item.locator('[data-state="due"]').is_visible()
    assert item.locator('[data-state="overdue"]').count() == 0
    broker.clock.offset = 3 * DAY  # the safeguarding agreement gives 2 days
    try:
        page.reload()
        item = page.locator("article.queue-item").filter(has_text="unconscious child")
        assert item.locator('[data-state="overdue"]').inner_text() == "Overdue"
        assert "Review due" in item.locator(".review-due").inner_text()
        first = page.locator("article.queue-item").first
        assert first.get_attribute("aria-labelledby") == f"q-{seeded.hospital_bg}"
        shot(page, "break-glass-overdue")
    finally:
        broker.clock.offset = 0.0


def test_the_register_and_one_dataset(page: Any) -> None:
    page.goto("/console/")
    page.get_by_role("link", name="Register").click()
    page.wait_for_url("**/console/register")
    table = page.locator("#register")
    row = table.locator("tr").filter(has_text="ccc.child-protection")
    assert "Director of Children's Services" in row.inner_text()
    assert "OFFICIAL-SENSITIVE" in row.inner_text()
    shot(page, "register")
    row.get_by_role("link", name="ccc.child-protection").click()
    page.wait_for_url("**/console/register/ccc.child-protection")
    facts = page.locator("#entry-facts").inner_text()
    assert "UK GDPR 9(2)(g)" in facts
    assert "2027-03-31" in page.locator("#next-review").inner_text()
    agreements = page.locator("#entry-agreements").inner_text()
    assert "ISA-SAFEGUARDING-CHILDREN" in agreements
    assert "cp-status-to-health-and-police" in agreements
    shot(page, "register-entry")


def test_a_register_entry_past_its_review_is_flagged(
    page: Any, env: tuple[LiveBroker, Seeded]
) -> None:
    broker, _ = env
    page.goto("/console/register/ccc.child-protection")
    assert page.locator('#next-review [data-state="overdue"]').count() == 0
    broker.clock.offset = 600 * DAY  # past the agreements' review date of 2027-03-31
    try:
        page.reload()
        assert page.locator('#next-review [data-state="overdue"]').inner_text() == "Overdue"
    finally:
        broker.clock.offset = 0.0
