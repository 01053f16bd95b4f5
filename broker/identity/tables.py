"""The identity providers parties registered (a SQLModel table model; migration 0007 creates it,
0012 keys it by party and issuer and adds the role map), and the verified users their governance
officers suspended (migration 0014).

One row per party and issuer (one national provider serves several parties): the issuer, where
its keys are (a JWKS URL, or a key set held inline for tests, demos and providers without a
public endpoint), the claims that name the user and their role, the audiences its partner
systems have there, where the roles are (``role_format``) and how they map to agreement roles
(``role_map``), and whether the party requires ID tokens.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, String, Text
from sqlmodel import Field

from broker.db.tables import TableModel, table_of


class IdentityProviderRow(TableModel, table=True):
    __tablename__ = "identity_providers"

    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), primary_key=True)
    )
    issuer: str = Field(sa_column=Column("issuer", Text, primary_key=True))
    jwks_url: str | None = Field(sa_column=Column("jwks_url", Text, nullable=True))
    jwks: dict[str, Any] | None = Field(sa_column=Column("jwks", JSON, nullable=True))
    audiences: dict[str, str] = Field(sa_column=Column("audiences", JSON, nullable=False))
    user_claim: str = Field(sa_column=Column("user_claim", String(100), nullable=False))
    role_claim: str = Field(sa_column=Column("role_claim", String(100), nullable=False))
    algorithms: list[str] = Field(sa_column=Column("algorithms", JSON, nullable=False))
    required: bool = Field(sa_column=Column("required", Boolean, nullable=False))
    role_format: str = Field(
        sa_column=Column("role_format", String(20), nullable=False, server_default="claim")
    )
    role_map: dict[str, str] = Field(sa_column=Column("role_map", JSON, nullable=False))
    created_ms: int = Field(sa_column=Column("created_ms", BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column("updated_ms", BigInteger, nullable=False))


identity_providers = table_of(IdentityProviderRow)


class UserSuspensionRow(TableModel, table=True):
    """A verified user (issuer and subject at the identity provider) suspended by a governance
    officer of their party: no user-restricted token is issued to them and none of their
    requests is answered until reinstated (migration 0014 creates it)."""

    __tablename__ = "user_suspensions"

    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), primary_key=True)
    )
    issuer: str = Field(sa_column=Column("issuer", String(500), primary_key=True))
    subject: str = Field(sa_column=Column("subject", String(255), primary_key=True))
    reason: str = Field(sa_column=Column("reason", Text, nullable=False))
    suspended_by: str = Field(sa_column=Column("suspended_by", String(200), nullable=False))
    suspended_ms: int = Field(sa_column=Column("suspended_ms", BigInteger, nullable=False))


user_suspensions = table_of(UserSuspensionRow)


class CitizenIdentityProviderRow(TableModel, table=True):
    """A citizen identity provider (NHS login, GOV.UK One Login...) registered for a party's
    citizen-facing systems (migration 0013): what its ID tokens must say about the person."""

    __tablename__ = "citizen_identity_providers"

    party_id: str = Field(
        sa_column=Column("party_id", String(100), ForeignKey("parties.id"), primary_key=True)
    )
    issuer: str = Field(sa_column=Column("issuer", String(500), primary_key=True))
    name: str = Field(sa_column=Column("name", String(200), nullable=False))
    jwks_url: str | None = Field(sa_column=Column("jwks_url", Text, nullable=True))
    jwks: dict[str, Any] | None = Field(sa_column=Column("jwks", JSON, nullable=True))
    audiences: dict[str, str] = Field(sa_column=Column("audiences", JSON, nullable=False))
    algorithms: list[str] = Field(sa_column=Column("algorithms", JSON, nullable=False))
    identifier_claim: str = Field(sa_column=Column("identifier_claim", String(100), nullable=False))
    identifier_type: str = Field(sa_column=Column("identifier_type", String(40), nullable=False))
    assurance_claim: str = Field(sa_column=Column("assurance_claim", String(100), nullable=False))
    assurance_values: list[str] = Field(sa_column=Column("assurance_values", JSON, nullable=False))
    created_ms: int = Field(sa_column=Column("created_ms", BigInteger, nullable=False))
    updated_ms: int = Field(sa_column=Column("updated_ms", BigInteger, nullable=False))


class CitizenLinkRow(TableModel, table=True):
    """A citizen's identity at a provider linked to a personal identifier, by the verified claim
    that proved it (never the identifier in clear: its keyed pseudonym)."""

    __tablename__ = "citizen_links"

    issuer: str = Field(sa_column=Column("issuer", String(500), primary_key=True))
    subject: str = Field(sa_column=Column("subject", String(255), primary_key=True))
    identifier_type: str = Field(sa_column=Column("identifier_type", String(40), primary_key=True))
    identifier_pseudonym: str = Field(
        sa_column=Column("identifier_pseudonym", String(100), nullable=False)
    )
    key_version: str = Field(sa_column=Column("key_version", String(32), nullable=False))
    party_id: str = Field(sa_column=Column("party_id", String(100), nullable=False))
    client_id: str = Field(sa_column=Column("client_id", String(100), nullable=False))
    verified_by: str = Field(sa_column=Column("verified_by", String(100), nullable=False))
    """The ID token claim that carried the identifier (NHS login: ``nhs_number``)."""
    assurance: str = Field(sa_column=Column("assurance", String(100), nullable=False))
    """The assurance claim and value it came with (``identity_proofing_level=P9``)."""
    created_ms: int = Field(sa_column=Column("created_ms", BigInteger, nullable=False))


citizen_identity_providers = table_of(CitizenIdentityProviderRow)
citizen_links = table_of(CitizenLinkRow)
