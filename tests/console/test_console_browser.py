"""The console in real headless Chromium (Debian's ``chromium``, driven by Playwright).

Skipped when /usr/bin/chromium is absent, except under CI=true where that is a failure.
Screenshots of the main pages go to docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.helpers import CHILD_NHS, REPO, Seeded, console_broker
from tests.support import LiveBroker

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "docs" / "screenshots"

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail("CI: /usr/bin/chromium is missing (apt-get install chromium)", pytrace=False)
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium", allow_module_level=True
    )

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, Seeded]]:
    with console_broker(tmp_path_factory.mktemp("browser")) as pair:
        yield pair


@pytest.fixture(scope="module")
def page(env: tuple[LiveBroker, Seeded]) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(
            base_url=env[0].url, accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        yield tab
        context.close()
        browser.close()


#: Pages whose screenshots the README shows (refreshed only on request, to keep the tree clean).
README_SHOTS = {"exchange", "agreement", "subject-access"}


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if name in README_SHOTS and os.environ.get("BROKER_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, SHOTS / f"readme-{name}.png")


def test_sign_in(page: Any) -> None:
    page.goto("/console/exchanges")
    assert "/console/login" in page.url
    page.get_by_label("Username").fill("r9z-caldicott")
    page.get_by_label("Password").fill("demo-guardian-harbour")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/exchanges")
    assert page.get_by_role("heading", name="Exchanges").is_visible()


def test_skip_link_is_first_on_the_keyboard(page: Any) -> None:
    page.goto("/console/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to main content"


def test_search_exchanges_by_nhs_number(page: Any, env: tuple[LiveBroker, Seeded]) -> None:
    _, seeded = env
    page.goto("/console/exchanges")
    page.get_by_label("Subject NHS number").fill(CHILD_NHS)
    page.get_by_label("Break-glass only").check()
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/console/exchanges?*subject=*")
    assert CHILD_NHS not in page.url
    links = page.locator("table tbody tr")
    assert links.count() == 1
    assert seeded.hospital_bg in page.content()
    assert seeded.council_only not in page.content()
    page.goto("/console/exchanges")
    shot(page, "exchanges")


def test_open_an_exchange_and_see_its_proof_verified(
    page: Any, env: tuple[LiveBroker, Seeded]
) -> None:
    _, seeded = env
    page.goto("/console/exchanges")
    page.locator(f'a[href="/console/exchanges/{seeded.hospital_allow}"]').click()
    assert page.locator("#proof-server").inner_text().startswith("Verified")
    browser_check = page.locator('#proof-browser[data-result="ok"]')
    browser_check.wait_for()
    assert "Verified in your browser" in browser_check.inner_text()
    shot(page, "exchange")


def test_review_a_break_glass_exchange(page: Any, env: tuple[LiveBroker, Seeded]) -> None:
    _, seeded = env
    page.goto("/console/break-glass")
    item = page.locator("article.queue-item").filter(has_text="unconscious child")
    shot(page, "break-glass")
    item.get_by_label("Referred for investigation").check()
    item.get_by_label("Note").fill("no safeguarding flag on record; ask the ED lead")
    item.get_by_role("button", name="Record review").click()
    page.wait_for_url("**/console/break-glass?reviewed=*")
    assert page.get_by_role("status").filter(has_text="Review recorded").is_visible()
    page.goto(f"/console/exchanges/{seeded.hospital_bg}")
    assert "Marked referred by r9z-caldicott" in page.locator("main").inner_text()


def test_open_an_agreements_usage(page: Any) -> None:
    page.goto("/console/agreements")
    shot(page, "agreements")
    page.get_by_role("link", name="ISA-SAFEGUARDING-CHILDREN").first.click()
    page.wait_for_url("**/console/agreements/ISA-SAFEGUARDING-CHILDREN")
    assert page.get_by_role("heading", name="Usage", exact=True).is_visible()
    assert page.locator("svg.chart title").first.text_content().startswith("Exchanges under")
    assert "name.family" in page.locator("ol").first.inner_text()
    shot(page, "agreement")


def test_download_a_report(page: Any) -> None:
    page.goto("/console/reports?agreement=ISA-SAFEGUARDING-CHILDREN")
    shot(page, "report")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    path = download.path()
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("agreement,month,exchanges,allowed,denied,other,break_glass")
    assert "ISA-SAFEGUARDING-CHILDREN" in text


def test_subject_access_with_a_hold_marker_and_its_export(
    page: Any, env: tuple[LiveBroker, Seeded]
) -> None:
    _, seeded = env
    page.goto("/console/access-report")
    page.get_by_label("Identifier", exact=True).select_option("nhs_number")
    page.get_by_label("Identifier value").fill(CHILD_NHS)
    page.get_by_role("button", name="Open request and find exchanges").click()
    page.wait_for_selector("#sar-exchanges")
    assert page.get_by_role("heading", name="Subject access request").is_visible()
    markers = page.locator("#sar-exchanges .hold-marker")
    assert markers.count() == 3  # the hospital's safeguarding checks, held for 365 days
    held_row = page.locator("#sar-exchanges tr.held").first.inner_text()
    assert "subject access hold of 365 days" in held_row
    assert "until" in held_row
    assert "Reply due" in page.content()
    shot(page, "subject-access")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download JSON").click()
    document = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    withheld = {h["exchange_id"] for h in document["withheld"]["held_exchanges"]}
    assert seeded.hospital_bg in withheld
    assert all(d["purpose"] != "child-protection-check" for d in document["disclosed"])
    assert CHILD_NHS not in json.dumps(document)
    page.get_by_role("link", name="Printable page").click()
    page.wait_for_selector("#withheld")
    assert "not for disclosure" in page.locator("#withheld h2").inner_text()
    assert "safeguarding hold" in page.locator("#notes").inner_text()


def test_integrity_verification_with_progress(page: Any) -> None:
    page.context.clear_cookies()
    page.goto("/console/login")
    page.get_by_label("Username").fill("council-dpo")
    page.get_by_label("Password").fill("demo-oversight-lantern")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/")
    shot(page, "home")
    page.goto("/console/integrity")
    page.get_by_role("button", name="Verify the whole log now").click()
    page.locator('#verify-progress[data-result="ok"]').wait_for()
    assert "intact" in page.locator("#verify-progress").inner_text()
    shot(page, "integrity")
