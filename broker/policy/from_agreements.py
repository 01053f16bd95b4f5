"""From verified agreements to the compiled form the policy needs. Pure.

Agreements whose computed status is ``active``, ``pending`` (fully signed, not yet in force),
``expired`` or ``revoked`` are compiled: the policy compares dates with the request's time, so one
that starts or ends between two builds does so on time and a request under an expired agreement
is told so; a revoked one is compiled marked ``revoked`` so that its parties are told why. Draft
and invalid agreements never reach the policy, and only verified register entries become
datasets.
"""

from __future__ import annotations

import datetime as dt

from broker.agreements.loader import LoadResult
from broker.agreements.model import Agreement, Flow
from broker.policy.compiled import (
    BreakGlass,
    CompiledAgreement,
    CompiledFlow,
    Conditions,
    DatasetEntry,
    OfficeHours,
    PolicyData,
)

COMPILED_STATUSES = frozenset({"active", "pending", "expired", "revoked"})


def _time(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def _flow(
    flow: Flow, permitted: tuple[str, ...], break_glass_fields: tuple[str, ...]
) -> CompiledFlow:
    c = flow.conditions
    break_glass = None
    if c.break_glass is not None and c.break_glass.allowed:
        break_glass = BreakGlass(fields=break_glass_fields, roles=tuple(c.break_glass.roles))
    office_hours = None
    if c.office_hours is not None:
        office_hours = OfficeHours(
            weekdays=c.office_hours.iso_weekdays(),
            start=_time(c.office_hours.start),
            end=_time(c.office_hours.end),
        )
    return CompiledFlow(
        id=flow.id,
        dataset=flow.dataset,
        provider=flow.provider,
        recipients=tuple(flow.recipients),
        purposes=tuple(flow.purposes),
        lawful_basis=flow.lawful_basis.labels(),
        permitted_fields=permitted,
        conditions=Conditions(
            case_reference_required=c.case_reference_required,
            consent_required=c.consent is not None and c.consent.required,
            allowed_roles=tuple(c.requester_roles),
            break_glass=break_glass,
            verification_only=c.verification_only,
            office_hours=office_hours,
        ),
        retention_days=flow.recipient_retention_days,
        notify_provider=flow.notify_provider,
        subject_access_hold_days=flow.subject_access_hold_days,
        identity=flow.identity,
    )


def compiled_agreements(result: LoadResult) -> tuple[CompiledAgreement, ...]:
    out = []
    for verified in result.agreements:
        a = verified.agreement
        if a is None or verified.status.status not in COMPILED_STATUSES:
            continue
        out.append(
            CompiledAgreement(
                id=a.id,
                version=a.version,
                digest=verified.status.digest or "",
                parties=tuple(p.id for p in a.parties),
                effective_from=a.validity.effective_from,
                expires_on=a.validity.expires_on,
                flows=tuple(
                    _flow(f, verified.permitted_fields(f), verified.break_glass_fields(f))
                    for f in a.flows
                ),
                revoked=verified.status.status == "revoked",
            )
        )
    return tuple(out)


def compile_unverified(agreement: Agreement, digest: str = "") -> CompiledAgreement:
    """An agreement as written (wildcards unexpanded, signatures unchecked): for
    ``broker agreements diff`` before a new version is signed. Never for deciding access."""
    flows = []
    for f in agreement.flows:
        bg = f.conditions.break_glass
        extra = tuple(bg.extra_fields) if bg is not None and bg.allowed else ()
        flows.append(_flow(f, tuple(f.permitted_fields), extra))
    return CompiledAgreement(
        id=agreement.id,
        version=agreement.version,
        digest=digest,
        parties=tuple(p.id for p in agreement.parties),
        effective_from=agreement.validity.effective_from,
        expires_on=agreement.validity.expires_on,
        flows=tuple(flows),
    )


def policy_data(result: LoadResult) -> PolicyData:
    datasets = tuple(
        DatasetEntry(id=e.id, owner=e.owner, fields=e.field_names(), open=e.open)
        for e in sorted(result.register.entries.values(), key=lambda e: e.id)
    )
    return PolicyData(agreements=compiled_agreements(result), datasets=datasets)


def revoked_ids(result: LoadResult) -> frozenset[str]:
    """Revoked agreement ids with no version in force: denied before the engine is asked."""
    compiled = {a.id for a in compiled_agreements(result) if not a.revoked}
    return frozenset(
        v.status.agreement_id
        for v in result.agreements
        if v.status.status == "revoked"
        and v.status.agreement_id is not None
        and v.status.agreement_id not in compiled
    )
