"""Systems bound to roles: a partner system acts only for the roles its party's administrator
bound it to (``broker clients bind``), each for any agreement or narrowed to one agreement or flow.
A system asking for itself, with no person (a flow that says ``identity: system``), needs a
binding that covers the flow.

Pure. Applied to the policy's decision, so a request under a role its system is not bound to is
a denied exchange in the log and a 403 naming the binding, by the same path as any refusal. An
allow on open data (no agreement matched) asks no role of anyone, so it is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from broker.core.identifiers import RoleBinding
from broker.policy.engine import Decision


def unbound_reason(
    client_id: str,
    bindings: Iterable[RoleBinding],
    role: str,
    agreement_id: str,
    flow_id: str,
) -> str | None:
    """Why ``client_id`` may not act as ``role`` under ``agreement_id``'s ``flow_id``, or None
    when one of its ``bindings`` covers that. A system asking for itself (no person, role
    ``""``, where the flow says ``identity: system``) needs a binding, of any role, that covers
    the flow."""
    if role == "":
        if any(b.covers(b.role, agreement_id, flow_id) for b in bindings):
            return None
        return (
            f"system {client_id!r} is bound to no role under agreement {agreement_id} "
            f"flow {flow_id} (it asked for itself)"
        )
    for_role = [b for b in bindings if b.role == role]
    if any(b.covers(role, agreement_id, flow_id) for b in for_role):
        return None
    if not for_role:
        return f"system {client_id!r} is not bound to role {role!r}"
    return (
        f"system {client_id!r} is not bound to role {role!r} "
        f"for agreement {agreement_id} flow {flow_id}"
    )


def refuse_unbound(
    decision: Decision, client_id: str, bindings: Iterable[RoleBinding], role: str
) -> Decision:
    """``decision``, or a deny naming the missing binding when it allows ``client_id`` to act as
    ``role`` under an agreement flow none of its bindings covers (the matched flow stays, for
    the log; a break-glass attempt keeps its review)."""
    matched = decision.matched
    if not decision.allow or matched is None:
        return decision
    reason = unbound_reason(client_id, bindings, role, matched.agreement_id, matched.flow_id)
    if reason is None:
        return decision
    return replace(
        decision,
        allow=False,
        released_fields=(),
        verified_claims=(),
        # Nothing is released: no notice to the provider, nothing to retain.
        obligations=replace(decision.obligations, notify_provider=None, retain_until=None),
        reasons=(*decision.reasons, reason),
        caller_reasons=(reason,),
    )
