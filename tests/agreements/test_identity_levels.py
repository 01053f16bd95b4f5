"""Each flow says what it needs of the person behind a request (``identity``): validation refuses
``system`` or ``asserted`` where the data or break-glass needs a verified user, and an agreement
signed before flows had the key fails closed (its signatures no longer cover its meaning)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from broker.agreements.model import Flow
from broker.agreements.parsing import parse_document
from tests.agreements.conftest import EXAMPLES, REPO, Loader, status_of

BEFORE = REPO / "tests" / "fixtures" / "agreements-before-identity"


def _set_identity(root: Path, name: str, flow_id: str, level: str) -> None:
    path = root / "isa" / f"{name}.yaml"
    text = path.read_text()
    marker = "    identity: verified"
    start = text.index(f"  - id: {flow_id}\n")
    at = text.index(marker, start)
    path.write_text(text[:at] + f"    identity: {level}" + text[at + len(marker) :])


@pytest.mark.parametrize("level", ["system", "asserted"])
def test_an_article_9_flow_needs_a_verified_user(load: Loader, root: Path, level: str) -> None:
    _set_identity(root, "ISA-HOSPITAL-DISCHARGE", "discharge-summary-to-adult-social-care", level)
    status, reasons = status_of(load(), "ISA-HOSPITAL-DISCHARGE")
    assert status == "invalid"
    flow = "'discharge-summary-to-adult-social-care'"
    assert f"identity {level!r} is not allowed on flow {flow}" in reasons
    assert "flows[0].identity" in reasons
    assert "special category data (an Article 9 basis)" in reasons


def test_a_break_glass_flow_needs_a_verified_user(load: Loader, root: Path) -> None:
    _set_identity(root, "ISA-SAFEGUARDING-CHILDREN", "cp-status-to-health-and-police", "system")
    status, reasons = status_of(load(), "ISA-SAFEGUARDING-CHILDREN")
    assert status == "invalid"
    assert "break-glass" in reasons
    assert "needs a verified user (identity: verified)" in reasons


def test_a_machine_check_may_be_a_system_flow(load: Loader) -> None:
    assert status_of(load(), "ISA-SCHOOL-ADMISSIONS")[0] == "active"


def test_a_flow_that_says_nothing_needs_a_verified_user() -> None:
    text = (EXAMPLES / "isa" / "ISA-SPD-FRAUD.yaml").read_text()
    agreement = parse_document(text.replace("    identity: verified\n", ""), "spd.yaml")
    flow = agreement.flows[0]  # type: ignore[union-attr]
    assert isinstance(flow, Flow)
    assert flow.identity == "verified"
    assert flow.content()["identity"] == "verified"  # part of the signed content


def test_an_agreement_signed_before_flows_said_their_identity_fails_closed(
    load: Loader, root: Path
) -> None:
    """Signed under the old schema: the filled-in default changes the digest, so every
    signature fails and the agreement is invalid (needs new signatures), never in force."""
    for name in ("ISA-HOSPITAL-DISCHARGE.yaml", "ISA-HOSPITAL-DISCHARGE.sig.json"):
        shutil.copy(BEFORE / name, root / "isa" / name)
    status, reasons = status_of(load(), "ISA-HOSPITAL-DISCHARGE")
    assert status == "invalid"
    assert "signature of 'R9Z'" in reasons
    assert "signature of 'calderbridge-city-council'" in reasons
