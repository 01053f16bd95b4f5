"""The Information Sharing Agreement document, as signed by every party. Pure values, no I/O.

An agreement is a YAML file whose content is exactly one :class:`Agreement`. Every model here
refuses unknown keys (``extra="forbid"``): a misspelt key must never silently widen or narrow
access. Models are frozen; build a new one to change anything.

What the policy compiler reads (attribute names are the YAML keys):

- ``Agreement.id``, ``.version``, ``.parties[*].id``,
  ``.validity`` (effective_from, expires_on, review_by)
- ``Agreement.flows[*]``: ``id``, ``dataset``, ``provider``, ``recipients``, ``purposes``,
  ``permitted_fields`` (catalogue names, ``prefix.*`` the only wildcard: expand it with
  :func:`broker.core.fields.expand_fields`), ``conditions`` (``case_reference_required``,
  ``consent``, ``requester_roles``, ``break_glass``, ``verification_only``, ``office_hours``),
  ``notify_provider``, ``recipient_retention_days``, ``onward_sharing``,
  ``subject_access_hold_days``, ``lawful_basis``, ``identity`` (who must be proven behind a
  request: ``verified``, the default; ``asserted``; ``system``).
- ``Agreement.dataset_digests``: the digest of every register entry the flows rely on; part of the
  signed content so that a dataset growing under a wildcard needs new signatures.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from broker.core.canonical import JSONValue, canonical_bytes, digest_bytes
from broker.core.names import IDENTIFIER_PATTERN


class Strict(BaseModel):
    """Base of every document model: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def content(self) -> dict[str, JSONValue]:
        """The JSON content that is canonicalised and signed.

        Every key, with defaults filled in: signatures cover the full effective meaning, so a
        key written out with its default value gives the same digest as leaving it out, and a
        default changed in a later schema changes the digest (the agreement must be signed again
        rather than silently mean something else).
        """
        dumped: dict[str, JSONValue] = self.model_dump(mode="json")
        return dumped

    @functools.cached_property
    def _canonical(self) -> bytes:
        # Computed once per (immutable) document: signatures and digests all need it.
        return canonical_bytes(self.content())

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of :meth:`content`: what signatures are computed over."""
        return self._canonical

    def digest(self) -> str:
        """``sha256:<hex>`` of :meth:`canonical_bytes`."""
        return digest_bytes(self._canonical)


_ID_RE = re.compile(IDENTIFIER_PATTERN[1:-1])
_FIELD_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
_PATTERN_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HHMM_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _match(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"not a valid {what}: {value!r}")
        return value

    return AfterValidator(check)


Identifier = Annotated[str, _match(_ID_RE, "identifier (letters, digits, '.', '_', '-')")]
"""A party, dataset, agreement, purpose or flow id."""
FieldName = Annotated[str, _match(_FIELD_RE, "dotted field name")]
"""A dotted catalogue name such as ``child_protection_plan.status``."""
FieldPattern = Annotated[str, _match(_PATTERN_RE, "field name or 'prefix.*'")]
"""A field name, or ``prefix.*`` meaning every catalogue field under ``prefix.``."""
Digest = Annotated[str, _match(_DIGEST_RE, "digest 'sha256:<64 hex>'")]
ClockTime = Annotated[str, _match(_HHMM_RE, "time 'HH:MM'")]
Text = Annotated[str, Field(min_length=1, max_length=4000)]

Article6 = Literal["a", "b", "c", "d", "e", "f"]
"""UK GDPR Article 6(1) point: (a) consent ... (e) public task, (f) legitimate interests."""
Article9 = Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
"""UK GDPR Article 9(2) condition for special category data."""
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
IdentityLevel = Literal["verified", "system", "asserted"]
"""What a flow needs of the person behind a request: ``verified`` (a user-restricted token or a
checked ID token; what a flow that says nothing means), ``system`` (a machine flow with no person:
the system asks for itself), ``asserted`` (the user taken on the partner system's word, marked so
in the log). Only ``verified`` is allowed with Article 9 or 10 data or with break-glass."""


class Signatory(Strict):
    """The person who signs for a party, e.g. the SIRO, the DPO or the Caldicott Guardian."""

    name: Text
    role: Literal["SIRO", "DPO", "Caldicott Guardian", "Information Asset Owner", "Chief Executive"]
    job_title: Text | None = None


class Party(Strict):
    """One organisation that is party to the agreement (a controller)."""

    id: Identifier
    """A party id of the registry (``calderbridge-city-council``; ODS codes for NHS bodies)."""
    name: Text
    role: Literal["provider", "recipient", "provider_and_recipient"]
    controller: Literal["separate", "joint"]
    """Separate controllers, or joint controllers with the other parties marked ``joint``."""
    public_authority: bool
    """Public authorities may not rely on Article 6(1)(f) for their public tasks."""
    signatory: Signatory
    department: Text | None = None


class Purpose(Strict):
    id: Identifier
    description: Text
    necessity: Text
    """Why sharing is necessary for this purpose and why less data would not do."""


class Dpia(Strict):
    reference: Text
    completed_on: dt.date
    dpo_advice: Text
    """The Data Protection Officer's view, as recorded in the DPIA."""


class LawfulBasis(Strict):
    article_6: Article6
    article_9: Article9 | None = None
    """Required when the dataset is special category (health)."""
    dpa_2018_schedule_1: tuple[Annotated[int, Field(ge=1, le=37)], ...] = ()
    """DPA 2018 Schedule 1 paragraph numbers relied on, e.g. 18 (safeguarding of children and of
    individuals at risk). Required with Article 9(2)(b), (g), (h), (i), (j) and for criminal
    offence data (Article 10)."""
    legal_powers: tuple[Text, ...] = ()
    """Statutory powers of a public authority, e.g. "Children Act 2004, s.11"."""

    def labels(self) -> tuple[str, ...]:
        """Human labels for decisions and the audit log, e.g. ``("UK GDPR 6(1)(e)",
        "UK GDPR 9(2)(g)", "DPA 2018 Sch 1 para 18")``."""
        out = [f"UK GDPR 6(1)({self.article_6})"]
        if self.article_9:
            out.append(f"UK GDPR 9(2)({self.article_9})")
        out.extend(f"DPA 2018 Sch 1 para {n}" for n in self.dpa_2018_schedule_1)
        return tuple(out)


class Consent(Strict):
    required: bool = True
    recorded_by: Identifier
    """The party that may record (and withdraw) the citizen's consent."""
    citizen_preview: bool = False
    """Hold each exchange until the citizen approves it through the council's portal (the
    requester gets 202 and a status URL, then asks again naming the approved preview)."""


class BreakGlass(Strict):
    allowed: bool = True
    roles: tuple[Identifier, ...] = Field(min_length=1)
    """Requester roles that may break glass."""
    extra_fields: tuple[FieldPattern, ...] = Field(min_length=1)
    """Catalogue fields opened only under break-glass; every use is flagged for review."""
    review_within_days: int = Field(default=2, ge=1, le=30)


class OfficeHours(Strict):
    """When requests are allowed, in UK local time (Europe/London, with daylight saving)."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: ClockTime = "08:00"
    end: ClockTime = "18:00"
    """Exclusive: a request at ``end`` is outside office hours."""

    def iso_weekdays(self) -> frozenset[int]:
        """The days as ISO weekday numbers (1 = Monday)."""
        order = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return frozenset(order.index(d) + 1 for d in self.days)


class Conditions(Strict):
    case_reference_required: bool = False
    consent: Consent | None = None
    requester_roles: tuple[Identifier, ...] = ()
    """Allowed requester roles; empty means any role of a recipient party."""
    break_glass: BreakGlass | None = None
    verification_only: bool = False
    """Only yes/no answers to claims about the permitted fields; no values are released."""
    office_hours: OfficeHours | None = None


class Flow(Strict):
    """One dataset shared by its provider with some recipients for some purposes."""

    id: Identifier
    dataset: Identifier
    provider: Identifier
    recipients: tuple[Identifier, ...] = Field(min_length=1)
    purposes: tuple[Identifier, ...] = Field(min_length=1)
    lawful_basis: LawfulBasis
    permitted_fields: tuple[FieldPattern, ...] = Field(min_length=1)
    conditions: Conditions = Conditions()
    notify_provider: bool = False
    """The provider is told of every exchange (e.g. the council when an ED checks a child)."""
    recipient_retention_days: int = Field(ge=0, le=36500)
    onward_sharing: Literal["prohibited", "allowed"] = "prohibited"
    subject_access_hold_days: int = Field(default=0, ge=0, le=3650)
    """Exchanges under this flow are held back from the citizen's access report this long."""
    attestation_valid_hours: int | None = Field(default=None, ge=1, le=2160)
    """How long an attestation given under this flow (``mode: attest``) is valid, at most 90 days;
    absent: the broker's default (``BROKER_ATTESTATION_VALIDITY_SECONDS``, 24 hours). Its status
    can revoke it sooner (the consent withdrawn, the document changed)."""
    identity: IdentityLevel = "verified"
    """Who must be proven behind each request (see :data:`IdentityLevel`)."""


class Validity(Strict):
    """In force from the start of ``effective_from`` to the end of ``expires_on`` (both days
    included, UK local dates), the same reading as the policy compiler's."""

    effective_from: dt.date
    expires_on: dt.date
    review_by: dt.date
    """Past this date the agreement stays active and is flagged for review."""


class Contact(Strict):
    party: Identifier
    role: Text
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")]
    phone: Text | None = None


class Agreement(Strict):
    """An Information Sharing Agreement: the signed content (signatures are kept beside it)."""

    kind: Literal["agreement"]
    id: Identifier
    version: int = Field(ge=1)
    title: Text
    summary: Text | None = None
    parties: tuple[Party, ...] = Field(min_length=1)
    purposes: tuple[Purpose, ...] = Field(min_length=1)
    dpia: Dpia
    flows: tuple[Flow, ...] = Field(min_length=1)
    dataset_digests: Annotated[
        Mapping[Identifier, Digest],
        AfterValidator(MappingProxyType),  # read-only: the model is frozen all the way down
        PlainSerializer(dict, return_type=dict[str, str]),
    ]
    """Digest of each register entry the flows rely on, by dataset id."""
    validity: Validity
    contacts: tuple[Contact, ...] = Field(min_length=1)
    security: Text
    individuals_rights: Text
    revocation_terms: Text
    """Who may end the agreement and how (any party, by a signed revocation, with notice)."""

    def party(self, party_id: str) -> Party | None:
        return next((p for p in self.parties if p.id == party_id), None)


class Revocation(Strict):
    """A signed statement by one party that an agreement (up to ``version``) is revoked."""

    kind: Literal["revocation"]
    agreement_id: Identifier
    version: int = Field(ge=1)
    """Versions up to and including this one are revoked; a later version needs new signatures."""
    revoked_by: Identifier
    reason: Text
    revoked_at: dt.datetime
