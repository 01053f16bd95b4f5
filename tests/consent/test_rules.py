"""Who may record consent: the party the agreement's flow names, never a self-granting recipient."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.agreements.loader import VerifiedAgreement
from broker.agreements.model import Agreement, Consent
from broker.agreements.parsing import parse_document_with_lines
from broker.agreements.register import DatasetEntry
from broker.agreements.status import AgreementStatus
from broker.consent.rules import RecorderForbidden, consent_scope
from broker.core.errors import InvalidInput
from tests.consent.factories import COUNCIL

EXAMPLES = Path(__file__).parents[2] / "agreements" / "examples"


def _load(path: Path) -> object:
    doc, _ = parse_document_with_lines(path.read_text(encoding="utf-8"), str(path))
    return doc


def verified(agreement: Agreement) -> VerifiedAgreement:
    register = _load(EXAMPLES / "register" / "ccc.proof-documents.yaml")
    assert isinstance(register, DatasetEntry)
    status = AgreementStatus("x", agreement.id, agreement.version, None, "active", (), False, ())
    return VerifiedAgreement(agreement, status, {register.id: register})


def proof_reuse(recorded_by: str = COUNCIL, recipient: str = COUNCIL) -> VerifiedAgreement:
    agreement = _load(EXAMPLES / "isa" / "ISA-PROOF-REUSE.yaml")
    assert isinstance(agreement, Agreement)
    flows = tuple(
        f.model_copy(
            update={
                "recipients": (recipient,),
                "conditions": f.conditions.model_copy(
                    update={"consent": Consent(recorded_by=recorded_by)}
                ),
            }
        )
        for f in agreement.flows
    )
    return verified(agreement.model_copy(update={"flows": flows}))


def scope(agreements: list[VerifiedAgreement], **changes: object) -> object:
    ask: dict[str, object] = {
        "agreement_id": "ISA-PROOF-REUSE",
        "from_party": COUNCIL,
        "to_party": COUNCIL,
        "purpose": "homelessness-assessment",
        "datasets": ["ccc.proof-documents"],
        "document_types": [],
        "caller_party": COUNCIL,
    }
    ask.update(changes)
    return consent_scope(agreements, **ask)  # type: ignore[arg-type]


def test_the_named_recorder_may_record() -> None:
    result = scope([proof_reuse()], document_types=["income"])
    assert result.recorded_by == COUNCIL  # type: ignore[attr-defined]


def test_a_recipient_cannot_grant_itself_consent() -> None:
    agreements = [proof_reuse(recorded_by="Y99901", recipient="R9Z")]
    with pytest.raises(RecorderForbidden, match="a recipient cannot grant itself consent"):
        scope(agreements, to_party="R9Z", caller_party="R9Z")


def test_a_recipient_named_as_recorder_may_record() -> None:
    agreements = [proof_reuse(recorded_by="R9Z", recipient="R9Z")]
    assert scope(agreements, to_party="R9Z", caller_party="R9Z")


def test_another_party_may_not_record() -> None:
    with pytest.raises(RecorderForbidden, match=f"only {COUNCIL} may record"):
        scope([proof_reuse()], caller_party="west-calder-police")


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        pytest.param({"agreement_id": "ISA-NOPE"}, "agreement_id", id="unknown-agreement"),
        pytest.param({"purpose": "marketing"}, "purpose", id="unknown-purpose"),
        pytest.param({"datasets": ["ccc.council-tax"]}, "datasets.0", id="no-such-flow"),
        pytest.param({"to_party": "R9Z"}, "datasets.0", id="not-a-recipient"),
        pytest.param({"document_types": ["passport"]}, "document_types.0", id="bad-type"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], location: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        scope([proof_reuse()], **changes)
    assert location in [p.location for p in caught.value.problems]
