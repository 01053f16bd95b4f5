"""The policy engine port and the decision it returns.

An engine evaluates ``data.sharing.decision`` for one policy input. Two real implementations give
identical decisions: :mod:`broker.policy.embedded` (rego-cpp in process, the default) and
:mod:`broker.policy.opa` (an OPA server over REST). Engines never raise on a request: whatever goes
wrong becomes a deny with the reason :data:`ENGINE_UNAVAILABLE` (fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from broker.core.projection import WithheldField

ENGINE_UNAVAILABLE = "policy engine unavailable"
GENERIC_REFUSAL = "no agreement permits this request"
ENTRYPOINT = "sharing/decision"
"""The rule every engine evaluates, ``data.sharing.decision``, in OPA's path form."""


@dataclass(frozen=True)
class Obligations:
    """What the broker must do after an allow."""

    notify_provider: str | None = None
    """The provider party to tell about this exchange, or ``None``."""
    retain_until: dt.date | None = None
    """The recipient may keep what it received until this date (UTC)."""
    review_break_glass: bool = False
    """A break-glass access: governance must review it."""
    subject_access_hold_until: dt.date | None = None
    """Hold this exchange back from the citizen's own access report until this date."""


@dataclass(frozen=True)
class MatchedFlow:
    """The agreement and flow a request matched, for the audit log."""

    agreement_id: str
    agreement_version: int
    agreement_digest: str
    flow_id: str
    provider: str
    lawful_basis: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """One policy decision.

    ``reasons`` are specific and go to the log and to governance; ``caller_reasons`` are what the
    requesting system may be told (the generic refusal when its party is not a party to the named
    agreement). ``revision`` is the bundle revision that decided.
    """

    allow: bool
    revision: str
    mode: str = "fetch"
    basis: str | None = None
    """``"agreement"`` or ``"open-data"`` on an allow, else ``None``."""
    released_fields: tuple[str, ...] = ()
    withheld_fields: tuple[WithheldField, ...] = ()
    verified_claims: tuple[str, ...] = ()
    obligations: Obligations = Obligations()
    reasons: tuple[str, ...] = ()
    caller_reasons: tuple[str, ...] = ()
    matched: MatchedFlow | None = None


def obligations_json(obligations: Obligations) -> dict[str, Any]:
    """The one JSON form of a decision's obligations. The provider to notify is named (its party
    id, or None): the audit log records whom it told. Views for other readers derive from this
    (the requester's answer says only whether the provider is told: broker/api/exchanges.py)."""
    o = obligations
    return {
        "notify_provider": o.notify_provider,
        "retain_until": o.retain_until.isoformat() if o.retain_until else None,
        "review_break_glass": o.review_break_glass,
        "subject_access_hold_until": (
            o.subject_access_hold_until.isoformat() if o.subject_access_hold_until else None
        ),
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    """The one JSON form of a decision: what the API answer, a simulation and the audit entry's
    obligations are built from."""
    matched = decision.matched
    return {
        "allow": decision.allow,
        "released_fields": list(decision.released_fields),
        "withheld_fields": [
            {"field": w.field, "reason": w.reason} for w in decision.withheld_fields
        ],
        "verified_claims": list(decision.verified_claims),
        "reasons": list(decision.reasons),
        "obligations": obligations_json(decision.obligations),
        "matched": None
        if matched is None
        else {
            "agreement_id": matched.agreement_id,
            "version": matched.agreement_version,
            "flow": matched.flow_id,
            "lawful_basis": list(matched.lawful_basis),
        },
        "policy_revision": decision.revision,
    }


class PolicyEngine(Protocol):
    """Decides sharing requests with one policy revision (embedded) or what the server has (OPA)."""

    @property
    def revision(self) -> str:
        """The bundle revision this engine was built from (OPA: the last one it reported)."""
        ...

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        """The decision for ``policy_input``; never raises: failures deny (fail closed)."""
        ...


def unavailable(revision: str, detail: str | None = None) -> Decision:
    """The fail-closed decision: deny, nothing released, reason :data:`ENGINE_UNAVAILABLE`."""
    reasons = (ENGINE_UNAVAILABLE,) if detail is None else (ENGINE_UNAVAILABLE, detail)
    return Decision(
        allow=False,
        revision=revision,
        reasons=reasons,
        caller_reasons=(ENGINE_UNAVAILABLE,),
    )


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _days_after(today: dt.date, value: Any) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected a number of days")
    return today + dt.timedelta(days=value)


def utc_date(now_ns: int) -> dt.date:
    """The UTC calendar date of an instant in nanoseconds since the epoch."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=now_ns // 86_400_000_000_000)


def _matched(value: Any) -> MatchedFlow | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("matched must be an object")
    version = value["agreement_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("agreement_version must be an integer")
    return MatchedFlow(
        agreement_id=str(value["agreement_id"]),
        agreement_version=version,
        agreement_digest=str(value["agreement_digest"]),
        flow_id=str(value["flow_id"]),
        provider=str(value["provider"]),
        lawful_basis=_strs(value["lawful_basis"]),
    )


def decision_from_result(result: Any, revision: str, policy_input: Mapping[str, Any]) -> Decision:
    """Turn the JSON value of ``data.sharing.decision`` into a :class:`Decision`.

    The policy gives the flow's notify flag, retention days and subject-access hold days; they
    become the provider to notify (from ``matched``) and dates counted from the UTC date of
    ``policy_input["now_ns"]`` (a hold of 0 days is no hold).

    Anything that is not exactly the expected shape (undefined, missing keys, wrong types) gives the
    fail-closed decision: a policy that answers in a shape we do not understand does not allow.
    """
    try:
        if not isinstance(result, Mapping):
            raise ValueError("undefined or not an object")
        allow = result["allow"]
        if not isinstance(allow, bool):
            raise ValueError("allow must be a boolean")
        today = utc_date(int(policy_input["now_ns"]))
        ob = result["obligations"]
        matched = _matched(result["matched"])
        notify = ob["notify_provider"]
        if not isinstance(notify, bool) or (notify and matched is None):
            raise ValueError("notify_provider must be a boolean, with a matched flow")
        hold_days = ob["subject_access_hold_days"]
        withheld = tuple(
            WithheldField(field=str(w["field"]), reason=str(w["reason"]))
            for w in result["withheld_fields"]
        )
        released = _strs(result["released_fields"])
        decision = Decision(
            allow=allow,
            revision=revision,
            mode=str(result["mode"]),
            basis=None if result["basis"] is None else str(result["basis"]),
            released_fields=released if allow else (),
            withheld_fields=withheld,
            verified_claims=_strs(result["verified_claims"]),
            obligations=Obligations(
                notify_provider=matched.provider if notify and matched else None,
                retain_until=_days_after(today, ob["retain_days"]),
                review_break_glass=ob["review_break_glass"] is True,
                subject_access_hold_until=_days_after(today, hold_days) if hold_days else None,
            ),
            reasons=_strs(result["reasons"]),
            caller_reasons=_strs(result["caller_reasons"]),
            matched=matched,
        )
    except (KeyError, TypeError, ValueError) as e:
        return unavailable(revision, f"unexpected policy result: {e}")
    if decision.allow and decision.reasons:
        # Fail closed on a self-contradicting policy.
        return unavailable(revision, "policy allowed with reasons to refuse")
    return decision
