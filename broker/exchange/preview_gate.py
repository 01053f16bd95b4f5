"""The citizen preview: on flows whose consent asks for it, an allowed exchange is first held
until the citizen approves it, then let through once when the requester names the approval.

The requester is the system (client id) and the user (verified or asserted) of the held
request: an approval is released to them only, never to another system of the same party or
another user of the same system. Such an attempt is refused and logged and leaves the approval
as it was, for its own requester. A hold that names no requester (made before migration 0008)
is never released: the requester asks again.

Called by :mod:`broker.exchange.service` after an allow, before any source is asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from anyio import to_thread

from broker.audit.entry import AuditEntry
from broker.core.errors import NotFound, Refused, Unavailable
from broker.core.identifiers import Caller, SubjectId
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.exchange.ports import Appended, HeldPreview, PreviewPort
from broker.exchange.request import ExchangeRequest
from broker.policy.engine import Decision


class PreviewGate:
    def __init__(
        self,
        *,
        previews: PreviewPort | None,
        pseudonyms: PseudonymKeyring,
        ttl_seconds: int,
    ) -> None:
        self._previews = previews
        self._pseudonyms = pseudonyms
        self._ttl = ttl_seconds

    async def check(
        self,
        *,
        caller: Caller,
        user_id: str,
        request: ExchangeRequest,
        subject: SubjectId,
        pseudonym: Pseudonym,
        decision: Decision,
        entry: AuditEntry,
        log_refusal: Callable[[AuditEntry], Awaitable[Appended]],
    ) -> HeldPreview | None:
        """Hold a new request for the citizen (returns the hold), or let through a request that
        names an approval the citizen gave for exactly this, from the same system and user
        (returns None; spends it). ``user_id`` is the person behind the request, verified or
        asserted. Raises Refused (logged through ``log_refusal``) for anything else."""
        previews = self._previews
        matched = decision.matched
        if previews is None or matched is None:
            raise Unavailable("the citizen preview is not configured: nothing was released")
        if request.preview_id is None:
            return await to_thread.run_sync(
                lambda: previews.hold(
                    exchange_id=entry.exchange_id,
                    subject=pseudonym,
                    requester_party=caller.party_id,
                    requester_client=caller.client_id,
                    requester_user=user_id,
                    agreement_id=matched.agreement_id,
                    dataset=request.dataset,
                    purpose=request.purpose,
                    fields=decision.released_fields,
                    ttl_seconds=self._ttl,
                )
            )
        preview_id = request.preview_id
        reason: str | None = None
        held: HeldPreview | None
        try:
            held = await to_thread.run_sync(previews.status, preview_id)
        except NotFound:
            held = None
            reason = f"no held exchange {preview_id}"
        if held is not None:
            mine = {p.value for p in self._pseudonyms.all_pseudonyms(subject.type, subject.value)}
            if held.requester_party != caller.party_id:
                reason = f"preview {preview_id} was for another request"
            elif held.requester_client is None or held.requester_user is None:
                reason = (
                    f"preview {preview_id} does not record the system and user that asked "
                    "(held before the broker recorded them): ask again for a new preview"
                )
            elif held.requester_client != caller.client_id:
                reason = f"preview {preview_id} was asked for by another system: only it may use it"
            elif held.requester_user != user_id:
                reason = f"preview {preview_id} was asked for by another user: only they may use it"
            elif (
                held.agreement_id != matched.agreement_id
                or held.dataset != request.dataset
                or held.purpose != request.purpose
                or held.subject_pseudonym not in mine
                or not set(decision.released_fields) <= set(held.fields)
            ):
                reason = f"preview {preview_id} was for another request"
            elif held.status == "released":
                reason = f"the approval of preview {preview_id} has been used already"
            elif held.status != "approved":
                reason = f"the citizen has not approved this exchange (it is {held.status})"
            elif not await to_thread.run_sync(previews.release, preview_id):
                reason = f"the approval of preview {preview_id} has been used already"
        if reason is None:
            return None
        denied = replace(
            entry,
            decision="deny",
            reasons=(*decision.reasons, reason),
            released_fields=(),
            obligations=(),
        )
        appended = await log_refusal(denied)
        raise Refused("the request is not permitted").with_extra(
            exchange_id=appended.exchange_id, reasons=[reason]
        )
