"""The ``POST /v1/exchanges`` body and its checks (docs/exchanges.md). Unknown keys are refused: a
typo in a request must never silently change what is asked for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from broker.core.errors import FieldProblem, InvalidInput
from broker.core.identifiers import SubjectId, parse_subject
from broker.core.names import IDENTIFIER_PATTERN, free_text_problem, trim_space
from broker.exchange.ports import DatasetFacts

_FIELD = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
_ID = IDENTIFIER_PATTERN

#: Limits on the names a request lists (fields, claims): each name, how many, and all together.
NAME_MAX_CHARS = 100
NAMES_MAX = 200
NAMES_MAX_TOTAL_CHARS = 4096
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS, pattern=_FIELD)]


def _free_text(value: str) -> str:
    text = trim_space(value)
    problem = free_text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


FreeText = Annotated[str, AfterValidator(_free_text)]
"""A case reference or justification: stripped of what Go's ``strings.TrimSpace`` strips, at
least three letters or digits, no control or format characters (broker/core/names.py)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SubjectIn(Strict):
    type: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    value: str = Field(min_length=1, max_length=100)


class RequestedBy(Strict):
    """The person, with an application token (left out: the system asks for itself, which only
    ``identity: system`` flows allow); with a user-restricted token the user and role come from
    the token, and what is sent here must agree with it (broker/exchange/person.py)."""

    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = Field(default=None, min_length=1, max_length=100, pattern=IDENTIFIER_PATTERN)
    id_token: str | None = Field(default=None, max_length=8192)


class ExchangeRequest(Strict):
    agreement_id: str | None = Field(default=None, pattern=_ID)
    purpose: str = Field(min_length=1, max_length=100, pattern=_ID)
    dataset: str = Field(min_length=1, max_length=100, pattern=_ID)
    subject: SubjectIn
    fields: list[Name] | None = Field(default=None, max_length=NAMES_MAX)
    """Absent: every field the agreement permits."""
    requested_by: RequestedBy | None = None
    case_reference: FreeText | None = Field(default=None, min_length=1, max_length=100)
    justification: FreeText | None = Field(default=None, min_length=1, max_length=2000)
    break_glass: StrictBool = False
    mode: Literal["fetch", "verify", "attest", "document"] = "fetch"
    """``attest``: signed attestations that the subject's proof documents were verified (who,
    when, how, the document's hash), instead of the documents: the minimum a service needs."""
    claims: dict[Name, str] | None = Field(default=None, max_length=20)
    document_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """``document`` mode: which of the subject's verified proof documents to stream."""
    preview_id: str | None = Field(default=None, pattern=r"^[0-9a-f-]{36}$")
    """On flows with a citizen preview: the ``exchange_id`` of the held request the citizen
    approved (from the 202 answer). Each approval releases the record once."""


def problems_of(request: ExchangeRequest, *, user_token: bool = False) -> list[FieldProblem]:
    """Checks across fields, each problem named by its place (the model checks single fields).
    ``user_token``: the caller's token names the user, so ``requested_by`` may be left out."""
    problems: list[FieldProblem] = []
    if not user_token:
        # No requested_by at all: the system asks for itself (identity: system flows only).
        asserted = request.requested_by
        if asserted is not None:
            if asserted.user_id is None:
                problems.append(FieldProblem("requested_by.user_id", "Field required"))
            if asserted.role is None:
                problems.append(FieldProblem("requested_by.role", "Field required"))
    for name, value in (request.claims or {}).items():
        if len(value) > 500:
            problems.append(FieldProblem(f"claims.{name}", "longer than 500 characters"))
    if request.mode == "verify":
        if not request.claims:
            problems.append(FieldProblem("claims", "verify mode needs one claim set"))
        if request.fields is not None:
            problems.append(FieldProblem("fields", "verify mode releases no values: leave out"))
    elif request.claims is not None:
        problems.append(FieldProblem("claims", 'only with "mode": "verify"'))
    if request.mode in ("attest", "document") and request.fields is not None:
        problems.append(
            FieldProblem("fields", f"{request.mode} mode answers fixed fields: leave out")
        )
    if request.mode == "document" and request.document_sha256 is None:
        problems.append(FieldProblem("document_sha256", "document mode names the document"))
    if request.mode != "document" and request.document_sha256 is not None:
        problems.append(FieldProblem("document_sha256", 'only with "mode": "document"'))
    if request.break_glass and not request.justification:
        problems.append(FieldProblem("justification", "break-glass needs a justification"))
    return problems


def name_problems(
    fields: Sequence[str] | None,
    claims: Iterable[str],
    dataset: str,
    catalogue: frozenset[str] | None,
) -> list[FieldProblem]:
    """The names a request lists (``fields``, ``claims``), checked before any policy is asked:
    all together at most :data:`NAMES_MAX_TOTAL_CHARS` characters, each named once, and each in
    the dataset's ``catalogue`` (None: not known here, left to the policy). Cheap whatever the
    input: one pass, set lookups. The model has checked each name's form and length."""
    claim_names = list(claims)
    total = sum(map(len, fields or ())) + sum(map(len, claim_names))
    if total > NAMES_MAX_TOTAL_CHARS:
        where = "fields" if fields else "claims"
        return [
            FieldProblem(
                where,
                f"the names listed total {total} characters: at most "
                f"{NAMES_MAX_TOTAL_CHARS} (fields and claims together)",
            )
        ]
    problems: list[FieldProblem] = []
    for where, names in (("fields", fields or ()), ("claims", claim_names)):
        seen: set[str] = set()
        for index, name in enumerate(names):
            at = f"{where}[{index}]" if where == "fields" else f"claims.{name}"
            if name in seen:
                problems.append(FieldProblem(at, f"{name!r} is named twice"))
            elif catalogue is not None and name not in catalogue:
                problems.append(FieldProblem(at, f"{name!r} is not a field of dataset {dataset}"))
            seen.add(name)
    return problems


def asserted_user(request: ExchangeRequest) -> tuple[str, str, str | None] | None:
    """The asserted user id, role and ID token of a request made with an application token
    (:func:`valid_subject` has checked that they are there), or None when the request names no
    person (no ``requested_by``: the system asks for itself)."""
    asserted = request.requested_by
    if asserted is None:
        return None
    if asserted.user_id is None or asserted.role is None:
        raise InvalidInput(
            "requested_by is required with an application token",
            [FieldProblem("requested_by", "Field required")],
        )
    return asserted.user_id, asserted.role, asserted.id_token


def valid_subject(
    request: ExchangeRequest,
    facts: DatasetFacts | None,
    *,
    test_range_only: bool,
    user_token: bool = False,
) -> SubjectId:
    """The request's subject, once the whole request is valid; else InvalidInput naming every
    problem (checks across fields, the identifier, the dataset's subject types). Not logged:
    nothing was decided."""
    problems = problems_of(request, user_token=user_token)
    problems.extend(
        name_problems(
            request.fields,
            request.claims or (),
            request.dataset,
            None if facts is None else facts.fields,
        )
    )
    subject: SubjectId | None = None
    try:
        subject = parse_subject(
            request.subject.type, request.subject.value, test_range_only=test_range_only
        )
    except InvalidInput as e:
        problems.extend(e.problems)
    if subject is not None and facts is not None and subject.type not in facts.subject_types:
        problems.append(
            FieldProblem(
                "subject.type",
                f"dataset {request.dataset} accepts {', '.join(sorted(facts.subject_types))}",
            )
        )
    if problems or subject is None:
        raise InvalidInput("the sharing request is not valid", problems)
    return subject
