"""Impact runs of a draft agreement: the logged background job behind ``/v1/agreements/impact``,
``broker agreements impact`` and the console's impact page.

A run compiles the policy with the draft in place of the version in force (in memory, never
served: :func:`draft_engine`), reads the logged exchanges of the period that the draft could
change (only the leaf, whose personal values are salted commitments; :func:`logged_requests`),
replays them (:mod:`broker.exchange.impact`) and stores the report in ``impact_jobs``. Each run
is one log entry of kind ``simulation``. The callers plug in with ``(draft, current | None)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, and_, insert, or_, select, update

from broker.agreements.loader import LoadResult
from broker.agreements.model import Agreement
from broker.agreements.register import DatasetEntry as RegisterEntry
from broker.audit.entry import AuditEntry, parse_leaf
from broker.audit.log import AuditLog
from broker.audit.tables import audit_entries
from broker.core.errors import BrokerError, FieldProblem, Forbidden, InvalidInput, NotFound
from broker.exchange.impact import (
    MAX_DAYS,
    MAX_ENTRIES,
    LoggedRequest,
    Replayed,
    logged_request,
    matrix,
    replay,
    summarise,
)
from broker.exchange.tables import impact_jobs
from broker.policy.bundle import policy_modules
from broker.policy.compiled import DatasetEntry, PolicyData, compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.engine import Decision
from broker.policy.from_agreements import compile_unverified, compiled_agreements

DAY_MS = 86_400_000
log = structlog.get_logger("broker.impact")


@dataclass(frozen=True)
class Viewer:
    """Who asks: its party, client, and whether it sees every party (oversight)."""

    party_id: str
    client_id: str
    party_wide: bool

    @property
    def scope(self) -> str | None:
        """The party whose scope limits the report's detail; None: the whole log."""
        return None if self.party_wide else self.party_id


def current_version(last: LoadResult | None, agreement_id: str) -> Agreement | None:
    """The latest compiled (in force, pending, expired or revoked) version of ``agreement_id``."""
    if last is None:
        return None
    found = [
        v.agreement
        for v in last.agreements
        if v.agreement is not None
        and v.agreement.id == agreement_id
        and v.status.status in ("active", "pending", "expired", "revoked")
    ]
    return max(found, key=lambda a: a.version, default=None)


def check_viewer(viewer: Viewer, draft: Agreement, current: Agreement | None) -> None:
    """A governance officer runs the impact of drafts its party is in (and whose version in
    force it is in). Raises :class:`Forbidden`."""
    if viewer.party_wide:
        return
    for doc in (draft, current):
        if doc is not None and doc.party(viewer.party_id) is None:
            raise Forbidden(
                "governance officers run the impact of drafts of agreements their party is in"
            )


def draft_engine(
    last: LoadResult, draft: Agreement, policy_dir: Path, first: dt.date, last_day: dt.date
) -> EmbeddedEngine:
    """The policy with ``draft`` in place of every version of its id, in force over the whole
    period replayed (its own dates are shown by the diff, not replayed). Never served.
    Raises :class:`InvalidInput` when the draft does not compile against the register."""
    compiled = compile_unverified(draft, draft.digest())
    compiled = dataclasses.replace(
        compiled,
        effective_from=min(compiled.effective_from, first),
        expires_on=max(compiled.expires_on or last_day, last_day),
    )
    others = tuple(a for a in compiled_agreements(last) if a.id != draft.id)
    datasets = tuple(
        _dataset(e) for e in sorted(last.register.entries.values(), key=lambda e: e.id)
    )
    try:
        data = compile_data(PolicyData(agreements=(*others, compiled), datasets=datasets))
        return EmbeddedEngine(policy_modules(policy_dir), data, f"draft-{draft.digest()[7:19]}")
    except BrokerError as e:
        raise InvalidInput(f"the draft cannot be compiled into policy: {e.detail}") from e


def _dataset(entry: RegisterEntry) -> DatasetEntry:
    return DatasetEntry(id=entry.id, owner=entry.owner, fields=entry.field_names(), open=entry.open)


def logged_requests(
    engine: Engine, draft: Agreement, start_ms: int, end_ms: int, limit: int = MAX_ENTRIES
) -> list[LoggedRequest]:
    """The exchanges of ``[start_ms, end_ms)`` the draft could change (those that named its
    agreement, and those of its parties for its datasets), latest first, at most ``limit``.
    Reads the leaf only: personal values are commitments there, and are dropped."""
    c = audit_entries.c
    parties = sorted({p.id for p in draft.parties})
    datasets = sorted({f.dataset for f in draft.flows})
    query = (
        select(c.leaf)
        .where(
            c.kind == "exchange",
            c.at_ms >= start_ms,
            c.at_ms < end_ms,
            or_(
                c.agreement_id == draft.id,
                and_(c.party_id.in_(parties), c.dataset.in_(datasets)),
            ),
        )
        .order_by(c.at_ms.desc(), c.idx.desc())
        .limit(limit)
    )
    out = []
    with engine.connect() as conn:
        for (leaf,) in conn.execute(query):
            _, body = parse_leaf(bytes(leaf))
            request = logged_request(body)
            if request is not None:
                out.append(request)
    return out


def report(
    requests: list[LoggedRequest],
    *,
    draft: Agreement,
    current: Agreement | None,
    decide: Callable[[Mapping[str, Any]], Decision],
    viewer: str | None,
    owners: Mapping[str, str],
    catalogues: Mapping[str, Collection[str]],
    days: int,
) -> dict[str, Any]:
    """The impact report (pure given ``decide``)."""
    replayed: list[Replayed] = []
    skipped = 0
    for request in requests:
        r = replay(request, draft.id, decide)
        if r is None:
            skipped += 1
        else:
            replayed.append(r)
    figures = summarise(replayed, viewer=viewer, owners=owners, skipped=skipped)
    rows = matrix(current, draft, {k: sorted(v) for k, v in catalogues.items()})
    return {
        "draft": {"id": draft.id, "version": draft.version, "digest": draft.digest()},
        "current": None
        if current is None
        else {"id": current.id, "version": current.version, "digest": current.digest()},
        "days": days,
        "capped": len(requests) >= MAX_ENTRIES,
        **figures,
        "matrix": rows,
        "undetermined_means": "the answer depends on the citizen's consent, which is not logged",
    }


def check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            "the period is out of range",
            [FieldProblem("days", f"must be between 1 and {MAX_DAYS}")],
        )


class ImpactJobs:
    """Creates, runs and reads impact runs (one row each in ``impact_jobs``)."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        policy_dir: Path,
        last: Callable[[], LoadResult | None],
        now_ms: Callable[[], int],
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.policy_dir = policy_dir
        self.last = last
        self.now_ms = now_ms

    def start(self, viewer: Viewer, draft: Agreement, days: int) -> str:
        """Check the request, record the job (``running``) and return its id; then call
        :meth:`run`. Raises :class:`InvalidInput`, :class:`Forbidden`."""
        check_days(days)
        check_viewer(viewer, draft, current_version(self.last(), draft.id))
        job = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(impact_jobs).values(
                    id=job,
                    party_id=viewer.party_id,
                    client_id=viewer.client_id,
                    party_wide=viewer.party_wide,
                    status="running",
                    draft_id=draft.id,
                    draft_version=draft.version,
                    draft_digest=draft.digest(),
                    days=days,
                    created_ms=self.now_ms(),
                )
            )
        return job

    def run(self, job: str, viewer: Viewer, draft: Agreement, days: int) -> None:
        """Replay and store the report; a failure is stored as the job's error. Logged."""
        end_ms = self.now_ms()
        start_ms = end_ms - days * DAY_MS
        status, result, error = "done", None, None
        try:
            result = self.compute(viewer, draft, days, start_ms, end_ms)
        except BrokerError as e:
            status, error = "failed", e.detail
        except Exception as e:  # a background job never dies silently: the row says it failed
            log.error("impact run failed", job=job, error=type(e).__name__)
            status, error = "failed", f"the run failed ({type(e).__name__}); try again"
        with self.engine.begin() as conn:
            conn.execute(
                update(impact_jobs)
                .where(impact_jobs.c.id == job)
                .values(status=status, result=result, error=error, finished_ms=self.now_ms())
            )
        self.audit.append(
            AuditEntry(
                kind="simulation",
                client_id=viewer.client_id,
                party_id=viewer.party_id,
                details={
                    "impact": {
                        "job": job,
                        "draft": {"id": draft.id, "version": draft.version},
                        "draft_digest": draft.digest(),
                        "days": days,
                        "status": status,
                        "totals": None if result is None else result["totals"],
                    }
                },
            )
        )

    def compute(
        self, viewer: Viewer, draft: Agreement, days: int, start_ms: int, end_ms: int
    ) -> dict[str, Any]:
        last = self.last()
        if last is None:
            raise InvalidInput("no agreements are loaded yet")
        first = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
        final = dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC).date()
        engine = draft_engine(last, draft, self.policy_dir, first, final)
        requests = logged_requests(self.engine, draft, start_ms, end_ms)
        entries = last.register.entries
        return report(
            requests,
            draft=draft,
            current=current_version(last, draft.id),
            decide=engine.decide,
            viewer=viewer.scope,
            owners={k: e.owner for k, e in entries.items()},
            catalogues={k: tuple(e.field_names()) for k, e in entries.items()},
            days=days,
        )

    def get(self, job: str, viewer: Viewer) -> dict[str, Any]:
        """A job as its viewer may read it: the party that ran it (a party-wide run, only a
        party-wide viewer). Raises :class:`NotFound` otherwise (no hint that it exists)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(impact_jobs).where(impact_jobs.c.id == job)).first()
        if row is None:
            raise NotFound("no such impact run")
        mine = row.party_id == viewer.party_id and not row.party_wide
        if not (viewer.party_wide or mine):
            raise NotFound("no such impact run")
        return {
            "job": row.id,
            "status": row.status,
            "draft": {"id": row.draft_id, "version": row.draft_version, "digest": row.draft_digest},
            "days": row.days,
            "created_ms": row.created_ms,
            "finished_ms": row.finished_ms,
            "error": row.error,
            "result": row.result,
        }
