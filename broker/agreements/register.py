"""The Information Asset Register: one signed entry per dataset. Pure values, no I/O.

Each entry is a YAML file holding one :class:`DatasetEntry`, signed by its owner party the same
way agreements are signed. Only entries whose owner signature verifies make it into a
:class:`Register`; an unsigned or wrongly signed entry counts for nothing (an unsigned
``open: true`` opens nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from broker.agreements.model import FieldName, Identifier, Strict, Text
from broker.core.canonical import JSONValue

SubjectIdType = Literal["nhs_number", "person_id", "uprn", "council_tax_account", "transaction_id"]
FieldType = Literal["string", "date", "boolean", "integer", "decimal", "enum", "binary"]


class CatalogueField(Strict):
    """One field of a dataset's catalogue, addressed by its dotted ``name``."""

    name: FieldName
    type: FieldType
    description: Text
    sensitivity: Literal["public", "identifying", "personal", "sensitive"] = "personal"
    values: tuple[str, ...] = ()
    """The allowed values of an ``enum`` field."""


class Retention(Strict):
    """How long the owner keeps the source records."""

    period: Text
    basis: Text | None = None


class DatasetEntry(Strict):
    """An information asset: owner, classification, identifiers, catalogue, retention, binding."""

    kind: Literal["dataset"]
    id: Identifier
    title: Text
    description: Text | None = None
    owner: Identifier
    """The controlling party: the only one that may provide the dataset and sign the entry."""
    asset_owner_role: Text
    """The Information Asset Owner's role, e.g. "Director of Children's Services"."""
    classification: Literal["OFFICIAL", "OFFICIAL-SENSITIVE"]
    special_category: Literal["none", "health", "criminal_offence"]
    subject_id_types: tuple[SubjectIdType, ...] = Field(min_length=1)
    fields: tuple[CatalogueField, ...] = Field(min_length=1)
    source_retention: Retention
    open: bool = False
    """Public data: anyone may read it without an agreement (only if the entry is signed)."""
    source: Identifier | None = None
    """The name of the adapter binding that serves this dataset (set by the adapters config)."""
    review_by: dt.date | None = None
    """When the asset owner next reviews the entry (optional; flagged overdue once past)."""

    def content(self) -> dict[str, JSONValue]:
        """As :meth:`Strict.content`, without ``review_by`` when it is not recorded: entries
        signed before the key existed keep their digests (and the agreements pinning them)."""
        dumped = super().content()
        if dumped.get("review_by") is None:
            dumped.pop("review_by", None)
        return dumped

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True)
class Register:
    """The verified entries of the register by dataset id, with their digests."""

    entries: Mapping[str, DatasetEntry] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)

    def get(self, dataset_id: str) -> DatasetEntry | None:
        return self.entries.get(dataset_id)

    def open_datasets(self) -> tuple[str, ...]:
        """Ids of signed entries marked ``open: true``."""
        return tuple(sorted(k for k, v in self.entries.items() if v.open))
