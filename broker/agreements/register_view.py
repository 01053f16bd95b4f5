"""The register as officers read it: one dataset with the agreements that use it, and the Record
of Processing Activities (UK GDPR Art. 30) of one party. Pure: the caller passes the loaded
agreements, usage counts and today's date.

What the register and the agreements do not hold is said so (:data:`NOT_RECORDED`), never guessed:
the categories of data subjects, transfers to third countries, and (for the register entry itself)
a review date the owner did not record.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from broker.agreements.loader import VerifiedAgreement
from broker.agreements.model import Agreement, Flow
from broker.agreements.register import DatasetEntry, Register

NOT_RECORDED = "not recorded"


def _using(dataset_id: str, agreements: Iterable[VerifiedAgreement]) -> list[VerifiedAgreement]:
    """The agreement versions on file with a flow of ``dataset_id``, by id then newest first."""
    found = [
        a
        for a in agreements
        if a.agreement is not None and any(f.dataset == dataset_id for f in a.agreement.flows)
    ]
    return sorted(found, key=lambda a: (a.status.agreement_id or "", -(a.status.version or 0)))


def next_review(
    entry: DatasetEntry, using: Sequence[VerifiedAgreement], today: dt.date
) -> dict[str, Any]:
    """The entry's own review date when its owner recorded one, else the soonest review date of
    the agreements in force that use it (said which), else not recorded; overdue once past."""
    if entry.review_by is not None:
        day, source = entry.review_by, "register entry"
    else:
        dates = [
            a.agreement.validity.review_by
            for a in using
            if a.agreement is not None and a.status.status == "active"
        ]
        if not dates:
            return {"date": None, "source": NOT_RECORDED, "overdue": False}
        day, source = min(dates), "agreements using it"
    return {"date": day.isoformat(), "source": source, "overdue": day < today}


def entry_summary(entry: DatasetEntry, digest: str | None) -> dict[str, Any]:
    return {
        "id": entry.id,
        "title": entry.title,
        "owner": entry.owner,
        "asset_owner_role": entry.asset_owner_role,
        "classification": entry.classification,
        "special_category": entry.special_category,
        "open": entry.open,
        "retention": {
            "period": entry.source_retention.period,
            "basis": entry.source_retention.basis,
        },
        "digest": digest,
    }


def dataset_view(
    entry: DatasetEntry,
    digest: str | None,
    agreements: Iterable[VerifiedAgreement],
    usage: Mapping[str, int],
    today: dt.date,
) -> dict[str, Any]:
    """One dataset: the entry, the lawful bases its flows rely on, the agreements that use it
    (``agreements``: those the reader may see) with their exchanges (``usage`` by agreement id)."""
    using = _using(entry.id, agreements)
    bases: set[str] = set()
    rows = []
    for a in using:
        doc = a.agreement
        assert doc is not None  # _using keeps only readable agreements
        flows = [f for f in doc.flows if f.dataset == entry.id]
        for f in flows:
            bases.update(f.lawful_basis.labels())
        rows.append(
            {
                "id": doc.id,
                "version": doc.version,
                "status": a.status.status,
                "review_by": doc.validity.review_by.isoformat(),
                "review_due": a.status.review_due,
                "flows": [f.id for f in flows],
                "recipients": sorted({r for f in flows for r in f.recipients}),
                "purposes": sorted({p for f in flows for p in f.purposes}),
                "exchanges": usage.get(doc.id, 0),
            }
        )
    return {
        **entry_summary(entry, digest),
        "description": entry.description,
        "subject_id_types": list(entry.subject_id_types),
        "fields": [
            {"name": f.name, "type": f.type, "sensitivity": f.sensitivity} for f in entry.fields
        ],
        "lawful_bases": sorted(bases),
        "agreements": rows,
        "next_review": next_review(entry, using, today),
    }


def _data_categories(entry: DatasetEntry | None, fields: Sequence[str]) -> str:
    if entry is None:
        return NOT_RECORDED
    special = {"none": "", "health": "; special category: health (Art. 9)"}.get(
        entry.special_category, "; criminal offence data (Art. 10)"
    )
    sensitivities = sorted({f.sensitivity for f in entry.fields if f.name in fields})
    kinds = ", ".join(sensitivities) or NOT_RECORDED
    return f"{entry.title} ({kinds}){special}: {', '.join(fields) or NOT_RECORDED}"


def _activity(
    party_id: str,
    agreement: VerifiedAgreement,
    doc: Agreement,
    flow: Flow,
    register: Register,
    names: Mapping[str, str],
) -> dict[str, Any]:
    entry = register.get(flow.dataset)
    party = doc.party(party_id)
    purposes = {p.id: p.description for p in doc.purposes}
    role = "provider" if flow.provider == party_id else "recipient"
    contacts = [f"{c.role} <{c.email}>" for c in doc.contacts if c.party == party_id]
    retention = (
        f"source: {entry.source_retention.period}"
        if entry is not None and role == "provider"
        else f"recipient keeps it {flow.recipient_retention_days} days"
    )
    joint = [p.name for p in doc.parties if p.controller == "joint" and p.id != party_id]
    return {
        "activity": f"{doc.id} v{doc.version} / {flow.id}",
        "agreement_id": doc.id,
        "agreement_version": doc.version,
        "agreement_status": agreement.status.status,
        "flow_id": flow.id,
        "controller": names.get(party_id, party.name if party else party_id),
        "controller_role": role,
        "joint_controllers": ", ".join(joint) if joint else "none",
        "contact": "; ".join(contacts) or NOT_RECORDED,
        "purposes": "; ".join(f"{p}: {purposes.get(p, p)}" for p in flow.purposes),
        "lawful_basis": ", ".join(flow.lawful_basis.labels()),
        "categories_of_data_subjects": NOT_RECORDED,
        "categories_of_personal_data": _data_categories(
            entry, agreement.permitted_fields(flow) or tuple(flow.permitted_fields)
        ),
        "dataset": flow.dataset,
        "recipients": ", ".join(names.get(r, r) for r in flow.recipients)
        if role == "provider"
        else names.get(flow.provider, flow.provider),
        "third_country_transfers": NOT_RECORDED,
        "retention": retention,
        "security": f"{doc.security} (DPIA {doc.dpia.reference})",
    }


def ropa(
    party_id: str,
    register: Register,
    agreements: Iterable[VerifiedAgreement],
    names: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The Art. 30(1) record of ``party_id``: one processing activity per flow of an agreement
    version on file that it provides or receives under, by agreement then flow."""
    out = []
    for a in agreements:
        doc = a.agreement
        if doc is None or doc.party(party_id) is None:
            continue
        for flow in doc.flows:
            if flow.provider == party_id or party_id in flow.recipients:
                out.append(_activity(party_id, a, doc, flow, register, names))
    out.sort(key=lambda r: (r["agreement_id"], -r["agreement_version"], r["flow_id"]))
    return out


ROPA_COLUMNS = (
    "activity",
    "agreement_status",
    "controller",
    "controller_role",
    "joint_controllers",
    "contact",
    "purposes",
    "lawful_basis",
    "categories_of_data_subjects",
    "categories_of_personal_data",
    "dataset",
    "recipients",
    "third_country_transfers",
    "retention",
    "security",
)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text (no formula starts with =, +, -, @, tab or CR)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def ropa_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ROPA_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in ROPA_COLUMNS])
    return out.getvalue()
