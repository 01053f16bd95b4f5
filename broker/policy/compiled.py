"""The compiled form of agreements and of the asset register, and the pure compiler to Rego data.

The agreement model (``broker.agreements``) is rich: signatories, contacts, DPIA references. The
policy
needs only a small part of it, captured here as frozen values. A thin mapping written next to the
agreement model turns each *verified* agreement into a :class:`CompiledAgreement`; nothing
unverified
must ever reach :func:`compile_data`.

:func:`compile_data` is pure: values in, the JSON-ready ``data.isa`` document out. That document is
indexed ``agreement -> dataset -> purpose -> recipient party -> flow id`` so the policy looks a
request up
in a constant number of steps whatever the number of agreements. Wildcards (``prefix.*``) are
expanded
against the dataset's field catalogue here, so the policy only ever compares concrete field names.

Validity dates are turned into instants once, here: an agreement is in force from the start of its
``effective_from`` day to the end of its ``expires_on`` day, both in UK local time (Europe/London).
The policy compares them with ``input.now_ns``, so an agreement that expires between two bundle
builds denies at the moment it expires, not at the next build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, TypeAdapter, ValidationError

from broker.core.fields import FieldPatternError
from broker.core.fields import expand_fields as core_expand_fields
from broker.policy.errors import PolicyCompileError

_STRICT = ConfigDict(extra="forbid")

UK = ZoneInfo("Europe/London")
"""Office hours and agreement validity days are UK local time, summer time included."""

IDENTITY_LEVELS = frozenset({"verified", "asserted", "system"})
"""A flow's ``identity``: what it needs of the person behind a request."""

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class OfficeHours:
    """Requests are allowed only on these ISO weekdays (1 = Monday) between ``start`` and ``end``,
    UK local time; ``end`` is exclusive."""

    __pydantic_config__ = _STRICT

    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    start: dt.time = dt.time(8, 0)
    end: dt.time = dt.time(18, 0)

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(1, 8)):
            raise PolicyCompileError("office hours need weekdays between 1 (Monday) and 7 (Sunday)")
        if self.start >= self.end:
            raise PolicyCompileError("office hours must start before they end")

    def describe(self) -> str:
        """Human form used in reasons, e.g. ``Mon, Tue, Wed, Thu, Fri 08:00-18:00 UK time``."""
        days = ", ".join(WEEKDAY_NAMES[d - 1] for d in sorted(self.weekdays))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} UK time"


@dataclass(frozen=True)
class BreakGlass:
    """Break-glass opens ``fields`` beyond the permitted ones, for ``roles`` (empty: any role the
    flow
    allows), with a justification, and always adds the obligation ``review_break_glass``."""

    __pydantic_config__ = _STRICT

    fields: tuple[str, ...]
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conditions:
    """The conditions of one flow. Defaults are the permissive end of each: set what the agreement
    says."""

    __pydantic_config__ = _STRICT

    case_reference_required: bool = False
    consent_required: bool = False
    allowed_roles: tuple[str, ...] = ()
    """Requester roles allowed; empty means any role."""
    break_glass: BreakGlass | None = None
    """``None``: break-glass is not allowed on this flow."""
    verification_only: bool = False
    """The flow answers yes/no to one claim set and releases no values."""
    office_hours: OfficeHours | None = None


@dataclass(frozen=True)
class CompiledFlow:
    """One flow of an agreement: a dataset from its provider to recipients, for purposes."""

    __pydantic_config__ = _STRICT

    id: str
    dataset: str
    provider: str
    recipients: tuple[str, ...]
    purposes: tuple[str, ...]
    lawful_basis: tuple[str, ...]
    """As written in the agreement, e.g. ``("UK GDPR 6(1)(e)", "UK GDPR 9(2)(g)", "DPA 2018 Sch 1
    para 18")``. Carried into decisions for the audit log."""
    permitted_fields: tuple[str, ...]
    """Catalogue names; ``prefix.*`` is the only wildcard."""
    conditions: Conditions = field(default_factory=Conditions)
    retention_days: int | None = None
    """How long the recipient may keep what it received; gives the ``retain_until`` obligation."""
    notify_provider: bool = False
    subject_access_hold_days: int = 0
    """How long exchanges under this flow are held back from the citizen's own access report."""
    identity: str = "verified"
    """Who must be proven behind a request: ``verified``, ``asserted`` or ``system``
    (broker/agreements/model.py ``IdentityLevel``)."""


@dataclass(frozen=True)
class CompiledAgreement:
    """What the policy needs of one verified agreement."""

    __pydantic_config__ = _STRICT

    id: str
    version: int
    digest: str
    parties: tuple[str, ...]
    effective_from: dt.date
    expires_on: dt.date | None
    flows: tuple[CompiledFlow, ...]
    revoked: bool = False


@dataclass(frozen=True)
class DatasetEntry:
    """What the policy needs of one verified entry of the information asset register."""

    __pydantic_config__ = _STRICT

    id: str
    owner: str
    fields: tuple[str, ...]
    open: bool = False


@dataclass(frozen=True)
class PolicyData:
    """Everything a bundle is built from, besides the Rego files."""

    __pydantic_config__ = _STRICT

    agreements: tuple[CompiledAgreement, ...]
    datasets: tuple[DatasetEntry, ...]


def expand_fields(patterns: Iterable[str], catalogue: Iterable[str], *, where: str) -> list[str]:
    """Concrete catalogue names matched by ``patterns``, sorted, by the one rule of
    ``broker/core/fields.py`` (exact names or ``prefix.*``; a pattern matching nothing is refused).

    Raises :class:`PolicyCompileError` naming ``where``: a typo must never silently narrow or
    widen what an agreement means.
    """
    try:
        return sorted(core_expand_fields(patterns, tuple(catalogue)))
    except FieldPatternError as e:
        raise PolicyCompileError(f"{where}: {e}") from e


def day_start_ns(day: dt.date) -> int:
    """Nanoseconds since the epoch at 00:00 UK local time on ``day``."""
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=UK)
    return int(start.timestamp()) * 1_000_000_000


def _set(values: Iterable[str]) -> dict[str, bool]:
    return {v: True for v in sorted(values)}


def _minutes(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def _compile_flow(flow: CompiledFlow, dataset: DatasetEntry, where: str) -> dict[str, Any]:
    cond = flow.conditions
    permitted = expand_fields(flow.permitted_fields, dataset.fields, where=where)
    break_glass: dict[str, Any] = {"allowed": False, "fields": {}, "roles": {}}
    if cond.break_glass is not None:
        extra = expand_fields(cond.break_glass.fields, dataset.fields, where=f"{where} break-glass")
        break_glass = {
            "allowed": True,
            "fields": _set(f for f in extra if f not in permitted),
            "roles": _set(cond.break_glass.roles),
        }
    office_hours: dict[str, Any] | None = None
    if cond.office_hours is not None:
        oh = cond.office_hours
        office_hours = {
            "weekdays": sorted(oh.weekdays),
            "start_minute": _minutes(oh.start),
            "end_minute": _minutes(oh.end),
            "text": oh.describe(),
        }
    if flow.retention_days is not None and flow.retention_days < 0:
        raise PolicyCompileError(f"{where}: retention days must not be negative")
    if flow.identity not in IDENTITY_LEVELS:
        raise PolicyCompileError(f"{where}: identity {flow.identity!r} is not known")
    if flow.subject_access_hold_days < 0:
        raise PolicyCompileError(f"{where}: subject-access hold days must not be negative")
    return {
        "id": flow.id,
        "dataset": flow.dataset,
        "provider": flow.provider,
        "lawful_basis": list(flow.lawful_basis),
        "fields": _set(permitted),
        "break_glass": break_glass,
        "case_reference_required": cond.case_reference_required,
        "consent_required": cond.consent_required,
        "roles": _set(cond.allowed_roles),
        "verification_only": cond.verification_only,
        "office_hours": office_hours,
        "retention_days": flow.retention_days,
        "notify_provider": flow.notify_provider,
        "subject_access_hold_days": flow.subject_access_hold_days,
        "identity": flow.identity,
    }


def _compile_agreement(
    agreement: CompiledAgreement, datasets: Mapping[str, DatasetEntry]
) -> dict[str, Any]:
    aid = agreement.id
    if agreement.expires_on is not None and agreement.expires_on < agreement.effective_from:
        raise PolicyCompileError(f"agreement {aid}: expires before it takes effect")
    parties = set(agreement.parties)
    flows: dict[str, Any] = {}
    index: dict[str, dict[str, dict[str, str]]] = {}
    for flow in agreement.flows:
        where = f"agreement {aid} flow {flow.id}"
        if flow.id in flows:
            raise PolicyCompileError(f"{where}: duplicate flow id")
        dataset = datasets.get(flow.dataset)
        if dataset is None:
            raise PolicyCompileError(f"{where}: dataset {flow.dataset!r} is not in the register")
        if flow.provider != dataset.owner:
            raise PolicyCompileError(
                f"{where}: provider {flow.provider!r} is not the owner of {flow.dataset!r}"
            )
        for party in (flow.provider, *flow.recipients):
            if party not in parties:
                raise PolicyCompileError(f"{where}: {party!r} is not a party to the agreement")
        if not flow.recipients or not flow.purposes:
            raise PolicyCompileError(f"{where}: a flow needs recipients and purposes")
        flows[flow.id] = _compile_flow(flow, dataset, where)
        by_purpose = index.setdefault(flow.dataset, {})
        for purpose in flow.purposes:
            by_party = by_purpose.setdefault(purpose, {})
            for recipient in flow.recipients:
                if recipient in by_party:
                    raise PolicyCompileError(
                        f"{where}: {recipient!r} already receives {flow.dataset!r} for "
                        f"{purpose!r} under flow {by_party[recipient]!r}: flows must not overlap"
                    )
                by_party[recipient] = flow.id
    valid_until = (
        None
        if agreement.expires_on is None
        else day_start_ns(agreement.expires_on + dt.timedelta(days=1))
    )
    return {
        "id": aid,
        "version": agreement.version,
        "digest": agreement.digest,
        "parties": _set(parties),
        "datasets": _set(index),
        "purposes": _set(p for f in agreement.flows for p in f.purposes),
        "effective_from": agreement.effective_from.isoformat(),
        "expires_on": None if agreement.expires_on is None else agreement.expires_on.isoformat(),
        "valid_from_ns": day_start_ns(agreement.effective_from),
        "valid_until_ns": valid_until,
        "revoked": agreement.revoked,
        "index": index,
        "flows": flows,
    }


def compile_data(data: PolicyData) -> dict[str, Any]:
    """The ``data`` document of the bundle: ``{"isa": {"agreements": ..., "datasets": ...}}``.

    Pure. Raises :class:`PolicyCompileError` naming the agreement and flow for anything the policy
    could not decide on safely: unknown dataset or field, a provider that does not own the dataset,
    a recipient that is not a party, overlapping flows, duplicate ids.
    """
    datasets: dict[str, DatasetEntry] = {}
    for entry in data.datasets:
        if entry.id in datasets:
            raise PolicyCompileError(f"dataset {entry.id}: listed twice in the register")
        datasets[entry.id] = entry
    agreements: dict[str, Any] = {}
    for agreement in data.agreements:
        if agreement.id in agreements:
            raise PolicyCompileError(f"agreement {agreement.id}: listed twice")
        agreements[agreement.id] = _compile_agreement(agreement, datasets)
    return {
        "isa": {
            "agreements": agreements,
            "datasets": {
                d.id: {"id": d.id, "owner": d.owner, "open": d.open, "fields": _set(d.fields)}
                for d in sorted(datasets.values(), key=lambda d: d.id)
            },
        }
    }


def policy_data_from_json(value: Any) -> PolicyData:
    """Read :class:`PolicyData` from its JSON form (field names as above; dates ISO 8601, times
    ``HH:MM``). Unknown keys are refused. Raises :class:`PolicyCompileError`."""
    try:
        return TypeAdapter(PolicyData).validate_python(value)
    except ValidationError as e:
        raise PolicyCompileError(f"compiled policy data is not valid: {e}") from e
