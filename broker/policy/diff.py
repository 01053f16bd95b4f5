"""Permissions gained and lost between two versions of an agreement. Pure.

A permission is one row: (party, dataset, purpose, field), with wildcards expanded against the
catalogue (so a catalogue growing under ``prefix.*`` shows up as gained fields). Break-glass
fields are
rows too, marked ``break_glass``; each row names what the flow needs of the person (``identity``),
so a flow that stops needing a verified user shows every field lost and gained again.
Governance officers read this before they sign a new version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broker.policy.compiled import CompiledAgreement, DatasetEntry, expand_fields


@dataclass(frozen=True, order=True)
class Permission:
    party: str
    dataset: str
    purpose: str
    field: str
    break_glass: bool = False
    identity: str = "verified"
    """What the flow needs of the person behind the request: a flow that takes the user on the
    system's word (``asserted``) or needs no person (``system``) is a permission of its own."""


@dataclass(frozen=True)
class PermissionDiff:
    gained: tuple[Permission, ...]
    lost: tuple[Permission, ...]

    @property
    def unchanged(self) -> bool:
        return not self.gained and not self.lost

    def rows(self) -> list[dict[str, str | bool]]:
        """One dict per changed permission (``change`` is ``gained`` or ``lost``), for ``--json``
        and for a table."""
        return [
            {
                "change": change,
                "party": p.party,
                "dataset": p.dataset,
                "purpose": p.purpose,
                "field": p.field,
                "break_glass": p.break_glass,
                "identity": p.identity,
            }
            for change, perms in (("gained", self.gained), ("lost", self.lost))
            for p in perms
        ]


def permissions(
    agreement: CompiledAgreement, datasets: Mapping[str, DatasetEntry]
) -> frozenset[Permission]:
    """Every row ``agreement`` permits. Raises ``PolicyCompileError`` for unknown fields."""
    rows: set[Permission] = set()
    for flow in agreement.flows:
        catalogue = datasets[flow.dataset].fields if flow.dataset in datasets else ()
        where = f"agreement {agreement.id} flow {flow.id}"
        fields = expand_fields(flow.permitted_fields, catalogue, where=where)
        bg = flow.conditions.break_glass
        extra = [] if bg is None else expand_fields(bg.fields, catalogue, where=where)
        for party in flow.recipients:
            for purpose in flow.purposes:
                rows.update(
                    Permission(party, flow.dataset, purpose, f, identity=flow.identity)
                    for f in fields
                )
                rows.update(
                    Permission(party, flow.dataset, purpose, f, True, flow.identity)
                    for f in extra
                    if f not in fields
                )
    return frozenset(rows)


def diff_agreements(
    old: CompiledAgreement,
    new: CompiledAgreement,
    datasets: Iterable[DatasetEntry],
    new_datasets: Iterable[DatasetEntry] | None = None,
) -> PermissionDiff:
    """Rows ``new`` permits that ``old`` did not (gained) and the reverse (lost), sorted.

    ``new_datasets`` is the register the new version relies on, when it differs from the old one.
    """
    old_register = {d.id: d for d in datasets}
    new_register = old_register if new_datasets is None else {d.id: d for d in new_datasets}
    before = permissions(old, old_register)
    after = permissions(new, new_register)
    return PermissionDiff(gained=tuple(sorted(after - before)), lost=tuple(sorted(before - after)))
