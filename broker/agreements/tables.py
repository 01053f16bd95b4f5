"""Tables of the agreements area: the party-key trust store, recorded revocations, and the
highest version of each agreement ever seen (SQLModel table models, storage only). Created by
migration 0002. The drafts written through the API, their revisions, comments and signatures,
and the approvals of a party's first signing key: migration 0019."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field

from broker.db.tables import TableModel, table_of


class PartyKeyRow(TableModel, table=True):
    """Public keys of parties, imported from JWKS files by an administrator
    (``parties import-keys``)."""

    __tablename__ = "party_keys"
    __table_args__ = (Index("ix_party_keys_party_id", "party_id"),)

    kid: str = Field(sa_column=Column("kid", String(100), primary_key=True))  # RFC 7638 thumbprint
    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), nullable=False)
    )
    jwk: dict[str, Any] = Field(sa_column=Column("jwk", JSON, nullable=False))
    source: str = Field(sa_column=Column("source", String(500), nullable=False))
    imported_at: datetime = Field(
        sa_column=Column("imported_at", DateTime(timezone=True), nullable=False)
    )
    imported_by: str = Field(sa_column=Column("imported_by", String(200), nullable=False))


class AgreementRevocationRow(TableModel, table=True):
    """Every verified revocation ever seen. Never deleted: removing the file does not restore
    access."""

    __tablename__ = "agreement_revocations"
    __table_args__ = (Index("ix_agreement_revocations_agreement_id", "agreement_id"),)

    digest: str = Field(sa_column=Column("digest", String(80), primary_key=True))
    agreement_id: str = Field(sa_column=Column("agreement_id", String(100), nullable=False))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    revoked_by: str = Field(sa_column=Column("revoked_by", String(100), nullable=False))
    reason: str = Field(sa_column=Column("reason", Text, nullable=False))
    revoked_at: datetime = Field(
        sa_column=Column("revoked_at", DateTime(timezone=True), nullable=False)
    )
    document: dict[str, Any] = Field(sa_column=Column("document", JSON, nullable=False))
    signature: str = Field(sa_column=Column("signature", Text, nullable=False))
    first_seen_at: datetime = Field(
        sa_column=Column("first_seen_at", DateTime(timezone=True), nullable=False)
    )


class AgreementVersionRow(TableModel, table=True):
    """The highest fully signed version of each agreement ever seen: an older version never
    comes back."""

    __tablename__ = "agreement_versions"

    agreement_id: str = Field(sa_column=Column("agreement_id", String(100), primary_key=True))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    digest: str = Field(sa_column=Column("digest", String(80), nullable=False))
    # The signed canonical content, to name changes.
    content: dict[str, Any] | None = Field(sa_column=Column("content", JSON, nullable=True))
    first_seen_at: datetime = Field(
        sa_column=Column("first_seen_at", DateTime(timezone=True), nullable=False)
    )


class AgreementDraftRow(TableModel, table=True):
    """An agreement written through the API, from draft to signature (one row per agreement
    version). ``yaml`` is the current revision; once every party has signed it never changes."""

    __tablename__ = "agreement_drafts"
    __table_args__ = (Index("ix_agreement_drafts_agreement_id", "agreement_id"),)

    id: str = Field(sa_column=Column("id", String(40), primary_key=True))
    agreement_id: str = Field(sa_column=Column("agreement_id", String(100), nullable=False))
    version: int = Field(sa_column=Column("version", Integer, nullable=False))
    revision: int = Field(sa_column=Column("revision", Integer, nullable=False))
    yaml: str = Field(sa_column=Column("yaml", Text, nullable=False))
    digest: str = Field(sa_column=Column("digest", String(80), nullable=False))
    previous_digest: str | None = Field(
        sa_column=Column("previous_digest", String(80), nullable=True)
    )
    parties: list[str] = Field(sa_column=Column("parties", JSON, nullable=False))
    status: str = Field(sa_column=Column("status", String(20), nullable=False))
    drafter: str = Field(sa_column=Column("drafter", String(200), nullable=False))
    drafter_party: str = Field(sa_column=Column("drafter_party", String(100), nullable=False))
    dpo_view: str | None = Field(sa_column=Column("dpo_view", Text, nullable=True))
    dpia_reference: str | None = Field(
        sa_column=Column("dpia_reference", String(200), nullable=True)
    )
    dpo_recorded_by: str | None = Field(
        sa_column=Column("dpo_recorded_by", String(200), nullable=True)
    )
    created_at: datetime = Field(
        sa_column=Column("created_at", DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        sa_column=Column("updated_at", DateTime(timezone=True), nullable=False)
    )


class AgreementDraftRevisionRow(TableModel, table=True):
    """Every revision of a draft's YAML, kept for review (earlier versions and their diff)."""

    __tablename__ = "agreement_draft_revisions"

    draft_id: str = Field(
        sa_column=Column(
            "draft_id", String(40), ForeignKey("agreement_drafts.id"), primary_key=True
        )
    )
    revision: int = Field(sa_column=Column("revision", Integer, primary_key=True))
    yaml: str = Field(sa_column=Column("yaml", Text, nullable=False))
    digest: str = Field(sa_column=Column("digest", String(80), nullable=False))
    written_by: str = Field(sa_column=Column("written_by", String(200), nullable=False))
    written_at: datetime = Field(
        sa_column=Column("written_at", DateTime(timezone=True), nullable=False)
    )


class AgreementDraftCommentRow(TableModel, table=True):
    """A reviewer's comment on one revision of a draft."""

    __tablename__ = "agreement_draft_comments"
    __table_args__ = (Index("ix_agreement_draft_comments_draft_id", "draft_id"),)

    id: int | None = Field(
        default=None, sa_column=Column("id", Integer, primary_key=True, autoincrement=True)
    )
    draft_id: str = Field(
        sa_column=Column("draft_id", String(40), ForeignKey("agreement_drafts.id"), nullable=False)
    )
    revision: int = Field(sa_column=Column("revision", Integer, nullable=False))
    author: str = Field(sa_column=Column("author", String(200), nullable=False))
    party_id: str = Field(sa_column=Column("party_id", String(100), nullable=False))
    text: str = Field(sa_column=Column("text", Text, nullable=False))
    written_at: datetime = Field(
        sa_column=Column("written_at", DateTime(timezone=True), nullable=False)
    )


class AgreementDraftSignatureRow(TableModel, table=True):
    """A party's verified signature of a statement (``broker.agreements.statements``) over one
    digest of a draft: sign, renew or revoke."""

    __tablename__ = "agreement_draft_signatures"

    draft_id: str = Field(
        sa_column=Column(
            "draft_id", String(40), ForeignKey("agreement_drafts.id"), primary_key=True
        )
    )
    party_id: str = Field(sa_column=Column("party_id", String(100), primary_key=True))
    action: str = Field(sa_column=Column("action", String(10), primary_key=True))
    digest: str = Field(sa_column=Column("digest", String(80), primary_key=True))
    statement: dict[str, Any] = Field(sa_column=Column("statement", JSON, nullable=False))
    jws: str = Field(sa_column=Column("jws", Text, nullable=False))
    kid: str = Field(sa_column=Column("kid", String(100), nullable=False))
    submitted_by: str = Field(sa_column=Column("submitted_by", String(200), nullable=False))
    signed_at: datetime = Field(
        sa_column=Column("signed_at", DateTime(timezone=True), nullable=False)
    )


class PartyKeyApprovalRow(TableModel, table=True):
    """A party's proposed first signing key and the officers who approved it, repeating its
    thumbprint (two distinct approvals register it)."""

    __tablename__ = "party_key_approvals"

    party_id: str = Field(sa_column=Column("party_id", String(100), primary_key=True))
    kid: str = Field(sa_column=Column("kid", String(100), primary_key=True))
    approver: str = Field(sa_column=Column("approver", String(200), primary_key=True))
    jwk: dict[str, Any] = Field(sa_column=Column("jwk", JSON, nullable=False))
    approved_at: datetime = Field(
        sa_column=Column("approved_at", DateTime(timezone=True), nullable=False)
    )


party_keys = table_of(PartyKeyRow)
agreement_revocations = table_of(AgreementRevocationRow)
agreement_versions = table_of(AgreementVersionRow)
agreement_drafts = table_of(AgreementDraftRow)
agreement_draft_revisions = table_of(AgreementDraftRevisionRow)
agreement_draft_comments = table_of(AgreementDraftCommentRow)
agreement_draft_signatures = table_of(AgreementDraftSignatureRow)
party_key_approvals = table_of(PartyKeyApprovalRow)
