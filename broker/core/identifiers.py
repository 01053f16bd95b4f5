"""Subject identifiers: the kinds a request may name, and their validation (pure).

A :class:`SubjectId` is what an exchange asks about: ``{"type": "nhs_number", "value": "..."}``.
:func:`parse_subject` normalises the value and raises :class:`InvalidInput` with a
:class:`FieldProblem` when it is malformed, so a bad identifier is refused (422) before any source
is asked. NHS numbers are checked by :mod:`broker.core.nhs_number`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from broker.core import nhs_number
from broker.core.errors import FieldProblem, InvalidInput

SubjectType = Literal["nhs_number", "person_id", "uprn", "council_tax_account", "transaction_id"]
SUBJECT_TYPES: Final[tuple[str, ...]] = get_args(SubjectType)

_PATTERNS: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "person_id": (re.compile(r"P[0-9]{7}"), "a council person id is P and 7 digits, e.g. P0001234"),
    "uprn": (re.compile(r"[0-9]{1,12}"), "a UPRN is 1 to 12 digits"),
    "council_tax_account": (
        re.compile(r"CT[0-9]{8}"),
        "a council tax account is CT and 8 digits, e.g. CT00012345",
    ),
    "transaction_id": (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.]{0,63}"),
        "a transaction id is 1 to 64 letters, digits or - _ / .",
    ),
}


@dataclass(frozen=True)
class SubjectId:
    """A validated, normalised subject identifier."""

    type: SubjectType
    value: str

    def __str__(self) -> str:
        # Never the value: identifiers of people must not leak into logs by accident.
        return f"SubjectId({self.type})"

    __repr__ = __str__


def parse_subject(
    type_: str, value: str, *, location: str = "subject", test_range_only: bool = False
) -> SubjectId:
    """Validate and normalise ``value`` for ``type_``; :class:`InvalidInput` names the bad part."""
    if type_ not in SUBJECT_TYPES:
        raise InvalidInput(
            "unknown subject identifier type",
            [FieldProblem(f"{location}.type", f"must be one of {', '.join(SUBJECT_TYPES)}")],
        )
    if type_ == "nhs_number":
        number = nhs_number.validate(
            value, location=f"{location}.value", test_range_only=test_range_only
        )
        return SubjectId("nhs_number", number)
    pattern, message = _PATTERNS[type_]
    normalised = value.strip().upper() if type_ != "transaction_id" else value.strip()
    if type_ == "uprn":
        normalised = normalised.replace(" ", "")
    if not pattern.fullmatch(normalised):
        raise InvalidInput(
            "invalid subject identifier", [FieldProblem(f"{location}.value", message)]
        )
    return SubjectId(type_, normalised)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CallerUser:
    """The verified person of a user-restricted access token (token exchange): the identity
    provider's issuer, the user's subject there and the roles the provider gave."""

    issuer: str
    subject: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class RoleBinding:
    """A role a partner system may act for, as its party's administrator bound it: for any
    agreement (``agreement_id`` None), for one agreement, or for one flow of one agreement."""

    role: str
    agreement_id: str | None = None
    flow_id: str | None = None

    def covers(self, role: str, agreement_id: str, flow_id: str) -> bool:
        """Whether this binding lets its system act as ``role`` under ``agreement_id``'s
        ``flow_id``."""
        return (
            self.role == role
            and self.agreement_id in (None, agreement_id)
            and self.flow_id in (None, flow_id)
        )

    def __str__(self) -> str:
        where = "" if self.agreement_id is None else f" for agreement {self.agreement_id}"
        return self.role + where + ("" if self.flow_id is None else f" flow {self.flow_id}")


@dataclass(frozen=True)
class Caller:
    """Who is asking: the authenticated client, its party, its scopes and its name; with a
    user-restricted token, also the verified user. ``roles``: the roles the registry binds the
    client to (a client with none may act for no role)."""

    client_id: str
    party_id: str
    scopes: frozenset[str] = frozenset()
    client_name: str = ""
    user: CallerUser | None = None
    roles: tuple[RoleBinding, ...] = ()
