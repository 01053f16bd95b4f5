"""Consistency checks of agreements and register entries beyond the schema. Pure, no I/O.

Each check returns :class:`~broker.agreements.parsing.Problem` values (file, place, reason); an
empty list means the document is consistent. The schema itself (unknown keys, types) is checked
when the document is parsed (:mod:`broker.agreements.parsing`).

Rejections (the wording each reason starts with):

- ``unknown party``, ``unknown dataset``, ``unknown field``, ``unknown purpose``
- ``provider ... is not the owner`` of the dataset
- ``special category data ... without an Article 9(2) condition``
- ``criminal offence data ... without a DPA 2018 Schedule 1 condition``
- ``Article 6(1)(f) ... public authority``
- ``identity ... needs a verified user``: ``system`` or ``asserted`` on a flow with special
  category (Article 9) or criminal offence (Article 10) data, or with break-glass
- ``expiry before effect``
- ``duplicate ...`` ids (parties, purposes, flows, fields, datasets) and agreement versions
- ``dataset entry ...`` not signed by its owner, or its digest differs from the one signed over
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from broker.agreements.model import Agreement, Flow
from broker.agreements.parsing import Problem, format_place
from broker.agreements.register import DatasetEntry, Register
from broker.core.fields import FieldPatternError, check_pattern

# Article 9(2) conditions that DPA 2018 s.10 ties to a Schedule 1 condition.
_NEEDS_SCHEDULE_1 = frozenset({"b", "g", "h", "i", "j"})


def _duplicates(values: Iterable[Any]) -> list[Any]:
    return [v for v, n in Counter(values).items() if n > 1]


class _Sink:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: Sequence[str | int], reason: str) -> None:
        self.problems.append(Problem(self.file, format_place(path), reason))


def check_dataset(entry: DatasetEntry, file: str, known_parties: Collection[str]) -> list[Problem]:
    """Problems of one register entry: unknown owner, duplicate or ill-typed fields, open misuse."""
    out = _Sink(file)
    if entry.owner not in known_parties:
        out.add(("owner",), f"unknown party {entry.owner!r} (not in the parties registry)")
    for name in _duplicates(entry.field_names()):
        out.add(("fields",), f"duplicate field name {name!r}")
    for i, f in enumerate(entry.fields):
        if f.type == "enum" and not f.values:
            out.add(("fields", i, "values"), f"enum field {f.name!r} lists no values")
        if f.type != "enum" and f.values:
            out.add(
                ("fields", i, "values"), f"only enum fields list values ({f.name!r} is {f.type})"
            )
    if entry.open and entry.special_category != "none":
        out.add(("open",), "a special category or criminal offence dataset cannot be open")
    if entry.open and entry.classification != "OFFICIAL":
        out.add(("open",), "an open dataset must be classified OFFICIAL")
    return out.problems


def check_agreement(
    agreement: Agreement,
    file: str,
    *,
    register: Register,
    unverified_datasets: Mapping[str, str] | None = None,
    known_parties: Collection[str],
) -> list[Problem]:
    """Problems of one agreement against the verified register and the known party ids.

    ``unverified_datasets`` maps dataset ids present in the register files but without a valid
    owner signature to the reason, so that the message says why the entry counts for nothing.
    """
    out = _Sink(file)
    unverified = unverified_datasets or {}
    party_ids = [p.id for p in agreement.parties]
    for pid in _duplicates(party_ids):
        out.add(("parties",), f"duplicate party id {pid!r}")
    for i, p in enumerate(agreement.parties):
        if p.id not in known_parties:
            out.add(("parties", i, "id"), f"unknown party {p.id!r} (not in the parties registry)")
    purpose_ids = [p.id for p in agreement.purposes]
    for pid in _duplicates(purpose_ids):
        out.add(("purposes",), f"duplicate purpose id {pid!r}")
    for fid in _duplicates(f.id for f in agreement.flows):
        out.add(("flows",), f"duplicate flow id {fid!r}")

    relied_on: set[str] = set()
    for i, flow in enumerate(agreement.flows):
        relied_on.add(flow.dataset)
        _check_flow(out, agreement, ("flows", i), flow, set(purpose_ids), register, unverified)

    for dataset_id, signed_digest in agreement.dataset_digests.items():
        place = ("dataset_digests", dataset_id)
        if dataset_id not in relied_on:
            out.add(place, f"dataset {dataset_id!r} is not used by any flow")
            continue
        current = register.digests.get(dataset_id)
        if current is not None and current != signed_digest:
            out.add(
                place,
                f"dataset entry {dataset_id!r}'s digest differs from the one the agreement was "
                f"signed over (agreement: {signed_digest}, register now: {current}); the entry "
                "changed since signing, so the agreement needs new signatures",
            )
    for dataset_id in sorted(relied_on - set(agreement.dataset_digests)):
        current = register.digests.get(dataset_id, "<unknown>")
        out.add(
            ("dataset_digests",),
            f"dataset {dataset_id!r} is used by a flow but its digest is not pinned "
            f"(add {dataset_id}: {current})",
        )

    v = agreement.validity
    if v.expires_on <= v.effective_from:
        out.add(
            ("validity", "expires_on"),
            f"expiry before effect: expires_on {v.expires_on} is not after effective_from "
            f"{v.effective_from}",
        )
    elif not (v.effective_from < v.review_by <= v.expires_on):
        out.add(("validity", "review_by"), "review_by must fall after effect and not after expiry")
    for i, c in enumerate(agreement.contacts):
        if c.party not in party_ids:
            out.add(
                ("contacts", i, "party"),
                f"unknown party {c.party!r} (not a party to this agreement)",
            )
    return out.problems


def _check_flow(
    out: _Sink,
    agreement: Agreement,
    at: tuple[str | int, ...],
    flow: Flow,
    purpose_ids: set[str],
    register: Register,
    unverified: Mapping[str, str],
) -> None:
    provider = agreement.party(flow.provider)
    if provider is None:
        out.add(
            (*at, "provider"), f"unknown party {flow.provider!r} (not a party to this agreement)"
        )
    elif provider.role == "recipient":
        out.add((*at, "provider"), f"party {flow.provider!r} is not a provider in this agreement")
    for j, rid in enumerate(flow.recipients):
        recipient = agreement.party(rid)
        if recipient is None:
            out.add(
                (*at, "recipients", j), f"unknown party {rid!r} (not a party to this agreement)"
            )
        elif recipient.role == "provider":
            out.add((*at, "recipients", j), f"party {rid!r} is not a recipient in this agreement")
    for j, pid in enumerate(flow.purposes):
        if pid not in purpose_ids:
            out.add((*at, "purposes", j), f"unknown purpose {pid!r} (not declared under purposes)")

    basis = flow.lawful_basis
    if basis.article_6 == "f":
        involved = [flow.provider, *flow.recipients]
        public = [p for p in involved if (party := agreement.party(p)) and party.public_authority]
        if public:
            out.add(
                (*at, "lawful_basis", "article_6"),
                "Article 6(1)(f) legitimate interests cannot be relied on by a public authority "
                f"for its public tasks ({', '.join(public)})",
            )
    if basis.article_6 == "a" and (
        flow.conditions.consent is None or not flow.conditions.consent.required
    ):
        out.add(
            (*at, "conditions", "consent"),
            "Article 6(1)(a) consent needs a recorded consent condition",
        )
    if basis.article_9 in _NEEDS_SCHEDULE_1 and not basis.dpa_2018_schedule_1:
        out.add(
            (*at, "lawful_basis", "dpa_2018_schedule_1"),
            f"Article 9(2)({basis.article_9}) needs a DPA 2018 Schedule 1 condition (s.10)",
        )
    consent = flow.conditions.consent
    if consent is not None and agreement.party(consent.recorded_by) is None:
        out.add(
            (*at, "conditions", "consent", "recorded_by"),
            f"unknown party {consent.recorded_by!r} (not a party to this agreement)",
        )

    entry = register.get(flow.dataset)
    if entry is None:
        if flow.dataset in unverified:
            out.add(
                (*at, "dataset"),
                f"dataset entry {flow.dataset!r} counts for nothing: {unverified[flow.dataset]}",
            )
        else:
            out.add((*at, "dataset"), f"unknown dataset {flow.dataset!r} (not in the register)")
        return
    if entry.owner != flow.provider:
        out.add(
            (*at, "provider"),
            f"provider {flow.provider!r} is not the owner of dataset {entry.id!r} "
            f"(owner: {entry.owner!r})",
        )
    if entry.special_category == "health" and basis.article_9 is None:
        out.add(
            (*at, "lawful_basis", "article_9"),
            f"special category data ({entry.id!r} holds health data) without an "
            "Article 9(2) condition",
        )
    if entry.special_category == "criminal_offence" and not basis.dpa_2018_schedule_1:
        out.add(
            (*at, "lawful_basis", "dpa_2018_schedule_1"),
            f"criminal offence data ({entry.id!r}) without a DPA 2018 Schedule 1 condition "
            "(Article 10)",
        )
    _check_identity(out, at, flow, special=entry.special_category)
    catalogue = entry.field_names()
    _check_fields(out, (*at, "permitted_fields"), flow.permitted_fields, catalogue, entry.id)
    bg = flow.conditions.break_glass
    if bg is not None:
        _check_fields(
            out,
            (*at, "conditions", "break_glass", "extra_fields"),
            bg.extra_fields,
            catalogue,
            entry.id,
        )


def _check_identity(out: _Sink, at: tuple[str | int, ...], flow: Flow, *, special: str) -> None:
    """Only ``verified`` with Article 9 or 10 data or with break-glass."""
    if flow.identity == "verified":
        return
    why = []
    if flow.lawful_basis.article_9 is not None or special == "health":
        why.append("special category data (an Article 9 basis)")
    if special == "criminal_offence":
        why.append("criminal offence data (Article 10)")
    if flow.conditions.break_glass is not None:
        why.append("break-glass")
    if why:
        place = format_place((*at, "identity"))
        out.add(
            (*at, "identity"),
            f"identity {flow.identity!r} is not allowed on flow {flow.id!r} ({place}): a flow with "
            f"{' and '.join(why)} needs a verified user (identity: verified)",
        )


def _check_fields(
    out: _Sink,
    at: tuple[str | int, ...],
    patterns: Sequence[str],
    catalogue: Sequence[str],
    dataset: str,
) -> None:
    for pattern in _duplicates(patterns):
        out.add(at, f"duplicate field {pattern!r}")
    for j, pattern in enumerate(patterns):
        try:
            check_pattern(pattern, catalogue)
        except FieldPatternError:
            out.add((*at, j), f"unknown field {pattern!r} (not in the catalogue of {dataset!r})")


def check_unique_versions(agreements: Sequence[tuple[str, Agreement]]) -> list[Problem]:
    """Two files holding the same agreement id and version: both are refused."""
    seen = Counter((a.id, a.version) for _, a in agreements)
    return [
        Problem(
            file,
            "version",
            f"duplicate agreement {a.id!r} version {a.version} (in more than one file)",
        )
        for file, a in agreements
        if seen[(a.id, a.version)] > 1
    ]


def check_unique_datasets(entries: Sequence[tuple[str, DatasetEntry]]) -> list[Problem]:
    """Two register files holding the same dataset id: both are refused."""
    seen = Counter(e.id for _, e in entries)
    return [
        Problem(file, "id", f"duplicate dataset id {e.id!r} (in more than one register file)")
        for file, e in entries
        if seen[e.id] > 1
    ]
