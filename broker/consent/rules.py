"""Who may record a consent, and for which flows: read from the verified agreements. Pure.

A consent names an agreement, the party that shares (``from_party``), the party that receives
(``to_party``), a purpose and datasets. Each dataset must be shared by a flow of that agreement
from ``from_party`` to ``to_party`` for that purpose, and the flow must take consent
(``conditions.consent``). Only a system of the party the flow names in
``conditions.consent.recorded_by`` may record or withdraw it: in particular a recipient cannot
grant itself consent unless the agreement names the recipient as the recorder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from broker.agreements.loader import VerifiedAgreement
from broker.agreements.model import Agreement, Flow
from broker.core.errors import FieldProblem, Forbidden, InvalidInput

DOCUMENT_TYPE_FIELD = "document.type"


class RecorderForbidden(Forbidden):
    title = "Not the recorder of consent"


@dataclass(frozen=True)
class ConsentScope:
    """What a consent would cover: the agreement (version) and the flows it relies on."""

    agreement: Agreement
    flows: tuple[Flow, ...]
    recorded_by: str


def find_agreement(agreements: Sequence[VerifiedAgreement], agreement_id: str) -> Agreement:
    """The active agreement ``agreement_id``. Raises :class:`InvalidInput` (field
    ``agreement_id``) when no active agreement has that id."""
    for verified in agreements:
        if verified.agreement is not None and verified.agreement.id == agreement_id:
            return verified.agreement
    raise InvalidInput(
        "no active agreement has this id",
        [FieldProblem("agreement_id", f"no active agreement {agreement_id!r}")],
    )


def consent_scope(
    agreements: Sequence[VerifiedAgreement],
    *,
    agreement_id: str,
    from_party: str,
    to_party: str,
    purpose: str,
    datasets: Sequence[str],
    document_types: Sequence[str],
    caller_party: str,
) -> ConsentScope:
    """Check that ``caller_party`` may record this consent; return what it covers.

    Raises :class:`InvalidInput` naming each field that matches no consent-taking flow, and
    :class:`RecorderForbidden` when the caller's party is not the flow's recorder.
    """
    agreement = find_agreement(agreements, agreement_id)
    problems: list[FieldProblem] = []
    flows: list[Flow] = []
    if purpose not in {p.id for p in agreement.purposes}:
        problems.append(FieldProblem("purpose", f"not a purpose of {agreement_id}"))
    for i, dataset in enumerate(datasets):
        flow = next(
            (
                f
                for f in agreement.flows
                if f.dataset == dataset
                and f.provider == from_party
                and to_party in f.recipients
                and purpose in f.purposes
            ),
            None,
        )
        if flow is None:
            problems.append(
                FieldProblem(
                    f"datasets.{i}",
                    f"no flow of {agreement_id} shares {dataset} from {from_party}"
                    f" to {to_party} for {purpose}",
                )
            )
        elif flow.conditions.consent is None:
            problems.append(FieldProblem(f"datasets.{i}", f"flow {flow.id} does not take consent"))
        else:
            flows.append(flow)
    if document_types:
        allowed = _document_types(agreements, agreement, datasets)
        for i, kind in enumerate(document_types):
            if kind not in allowed:
                choices = ", ".join(sorted(allowed)) or "none (no dataset holds documents)"
                problems.append(FieldProblem(f"document_types.{i}", f"must be one of {choices}"))
    if problems:
        raise InvalidInput("the consent matches no consent-taking flow", problems)
    recorders = {f.conditions.consent.recorded_by for f in flows if f.conditions.consent}
    if len(recorders) != 1:
        raise InvalidInput(
            "the datasets' flows name different recorders: record one consent per recorder",
            [FieldProblem("datasets", "flows with different recorders")],
        )
    recorded_by = recorders.pop()
    if caller_party != recorded_by:
        if caller_party == to_party:
            raise RecorderForbidden(
                f"a recipient cannot grant itself consent: {agreement_id} names"
                f" {recorded_by} as the recorder"
            )
        raise RecorderForbidden(f"only {recorded_by} may record consent under {agreement_id}")
    return ConsentScope(agreement, tuple(flows), recorded_by)


def recorder_of(
    agreements: Sequence[VerifiedAgreement], agreement_id: str, dataset: str
) -> str | None:
    """The recorder the active agreement names for ``dataset``'s consent-taking flow, if any."""
    for verified in agreements:
        agreement = verified.agreement
        if agreement is None or agreement.id != agreement_id:
            continue
        for flow in agreement.flows:
            if flow.dataset == dataset and flow.conditions.consent is not None:
                return flow.conditions.consent.recorded_by
    return None


def _document_types(
    agreements: Sequence[VerifiedAgreement], agreement: Agreement, datasets: Sequence[str]
) -> set[str]:
    allowed: set[str] = set()
    for verified in agreements:
        if verified.agreement is not agreement:
            continue
        for dataset in datasets:
            entry = verified.datasets.get(dataset)
            if entry is None:
                continue
            for field in entry.fields:
                if field.name == DOCUMENT_TYPE_FIELD:
                    allowed.update(field.values)
    return allowed
