"""Agreements from draft to signature, held in the database (the I/O shell over ``intake.py``
and ``statements.py``).

Stored statuses: ``draft`` (written), ``in_review`` (commented on or revised), ``signing`` (the
DPO's view and the DPIA reference recorded: the parties may sign), ``signed`` (every party's
statement verified: the policy loads it, and it is in force from its start date), ``revoked``.
``in_force`` and ``superseded`` are read from the policy loaded (:func:`shown_status`).

Only the parties an agreement names see its draft; only a party's own clients submit its
signature, and a signature counts only when it verifies against that party's registered key over
the statement the broker builds from the YAML it holds. Every step is an admin act in the log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from broker.agreements.intake import read_agreement
from broker.agreements.model import Agreement
from broker.agreements.parsing import parse_document
from broker.agreements.register import Register
from broker.agreements.signing import TrustSnapshot, verify_detached
from broker.agreements.statements import ACTIONS, Action, Statement, signing_action, statement_for
from broker.agreements.store import AgreementStateStore
from broker.agreements.tables import (
    agreement_draft_comments,
    agreement_draft_revisions,
    agreement_draft_signatures,
    agreement_drafts,
    agreement_revocations,
    party_keys,
)
from broker.audit.admin import log_admin_event
from broker.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from broker.core.published_keys import PUBLISHED_KEY_REFUSAL, published_among

MAX_COMMENT = 4000
MAX_DPO_VIEW = 8000
MAX_DPIA_REFERENCE = 200
MAX_JWS = 4000
MAX_LISTED = 500
EDITABLE = ("draft", "in_review", "signing")


@dataclass(frozen=True)
class Actor:
    """Who acts: the client (or officer) and its party."""

    id: str
    party_id: str


def _draft_id() -> str:
    return "agd-" + uuid.uuid4().hex[:20]


def text_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified text diff of two YAML texts (a diff by meaning is the impact view's)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
    )
    return "".join(lines)


class DraftService:
    def __init__(
        self,
        engine: Engine,
        store: AgreementStateStore,
        *,
        register: Callable[[], Register],
        known_parties: Callable[[], Collection[str]],
        demo: bool,
        now: Callable[[], dt.datetime],
    ) -> None:
        self.engine = engine
        self.store = store
        self.register = register
        self.known_parties = known_parties
        self.demo = demo
        self.now = now

    # -- reading ---------------------------------------------------------------------------

    def _row(self, conn: Connection, draft_id: str, actor: Actor) -> Any:
        d = agreement_drafts
        row = conn.execute(select(d).where(d.c.id == draft_id)).first()
        if row is None or actor.party_id not in row.parties:
            raise NotFound(f"no agreement draft {draft_id!r} that you may see")
        return row

    def list_for(self, actor: Actor) -> list[dict[str, Any]]:
        d = agreement_drafts
        with self._connect() as conn:
            rows = conn.execute(select(d).order_by(d.c.updated_at.desc(), d.c.id)).all()
        mine = [r for r in rows if actor.party_id in r.parties][:MAX_LISTED]
        return [_summary(r) for r in mine]

    def get(self, draft_id: str, actor: Actor) -> dict[str, Any]:
        with self._connect() as conn:
            row = self._row(conn, draft_id, actor)
            r, c, s = (
                agreement_draft_revisions,
                agreement_draft_comments,
                agreement_draft_signatures,
            )
            revisions = conn.execute(
                select(r).where(r.c.draft_id == draft_id).order_by(r.c.revision)
            ).all()
            comments = conn.execute(
                select(c).where(c.c.draft_id == draft_id).order_by(c.c.id)
            ).all()
            signatures = conn.execute(select(s).where(s.c.draft_id == draft_id)).all()
        agreement = _parsed(row.yaml)
        action = signing_action(row.previous_digest)
        parties = []
        for party in agreement.parties:
            mine = [x for x in signatures if x.party_id == party.id]
            signed = next((x for x in mine if x.action == action and x.digest == row.digest), None)
            revoked = next((x for x in mine if x.action == "revoke"), None)
            parties.append(
                {
                    "party": party.id,
                    "signatory": {"name": party.signatory.name, "role": party.signatory.role},
                    "signed": signed is not None,
                    "kid": signed.kid if signed else None,
                    "signed_at": _iso(signed.signed_at) if signed else None,
                    "revoked": revoked is not None,
                }
            )
        previous = revisions[-2].yaml if len(revisions) > 1 else None
        return {
            **_summary(row),
            "yaml": row.yaml,
            "previous_digest": row.previous_digest,
            "signing_action": action,
            "dpo_view": row.dpo_view,
            "dpia_reference": row.dpia_reference,
            "dpo_recorded_by": row.dpo_recorded_by,
            "signatures": parties,
            "revisions": [
                {
                    "revision": v.revision,
                    "digest": v.digest,
                    "written_by": v.written_by,
                    "written_at": _iso(v.written_at),
                }
                for v in revisions
            ],
            "comments": [
                {
                    "revision": m.revision,
                    "author": m.author,
                    "party": m.party_id,
                    "text": m.text,
                    "written_at": _iso(m.written_at),
                }
                for m in comments
            ],
            "diff": text_diff(
                previous, row.yaml, f"revision {row.revision - 1}", f"revision {row.revision}"
            )
            if previous is not None
            else "",
            "diff_kind": "unified text diff of the YAML",
        }

    def revision_yaml(self, draft_id: str, revision: int, actor: Actor) -> str:
        with self._connect() as conn:
            self._row(conn, draft_id, actor)
            r = agreement_draft_revisions
            text = conn.execute(
                select(r.c.yaml).where(r.c.draft_id == draft_id, r.c.revision == revision)
            ).scalar()
        if text is None:
            raise NotFound(f"draft {draft_id!r} has no revision {revision}")
        return str(text)

    # -- writing ---------------------------------------------------------------------------

    def _read(self, text: str) -> Agreement:
        return read_agreement(
            text,
            register=self.register(),
            unverified_datasets={},
            known_parties=set(self.known_parties()),
        )

    def create(self, actor: Actor, text: str) -> dict[str, Any]:
        agreement = self._read(text)
        parties = [p.id for p in agreement.parties]
        if actor.party_id not in parties:
            raise Forbidden(f"your party {actor.party_id!r} is not a party to this agreement")
        seen = self.store.highest_versions().get(agreement.id)
        if seen is not None and seen.version >= agreement.version:
            raise Conflict(
                f"version {seen.version} of {agreement.id!r} is already signed: "
                f"draft version {seen.version + 1} or later"
            )
        previous = seen.digest if seen is not None else None
        now = self.now()
        draft_id = _draft_id()
        d = agreement_drafts
        with self._begin() as conn:
            clash = conn.execute(
                select(d.c.id).where(
                    d.c.agreement_id == agreement.id,
                    d.c.version == agreement.version,
                    d.c.status != "revoked",
                )
            ).first()
            if clash is not None:
                raise Conflict(
                    f"version {agreement.version} of {agreement.id!r} is already drafted "
                    f"({clash.id}): add a revision to it"
                )
            conn.execute(
                insert(d).values(
                    id=draft_id,
                    agreement_id=agreement.id,
                    version=agreement.version,
                    revision=1,
                    yaml=text,
                    digest=agreement.digest(),
                    previous_digest=previous,
                    parties=parties,
                    status="draft",
                    drafter=actor.id,
                    drafter_party=actor.party_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._revision(conn, draft_id, 1, text, agreement, actor, now)
            self._log(conn, actor, "agreements.draft.create", draft_id, agreement, now)
            row = conn.execute(select(d).where(d.c.id == draft_id)).one()
        return _summary(row)

    def _revision(
        self,
        conn: Connection,
        draft_id: str,
        revision: int,
        text: str,
        agreement: Agreement,
        actor: Actor,
        now: dt.datetime,
    ) -> None:
        conn.execute(
            insert(agreement_draft_revisions).values(
                draft_id=draft_id,
                revision=revision,
                yaml=text,
                digest=agreement.digest(),
                written_by=actor.id,
                written_at=now,
            )
        )

    def _log(
        self,
        conn: Connection,
        actor: Actor,
        action: str,
        draft_id: str,
        agreement: Agreement,
        now: dt.datetime,
        **extra: str | int | None,
    ) -> None:
        log_admin_event(
            conn,
            at=now,
            actor=actor.id,
            action=action,
            target=draft_id,
            party_id=actor.party_id,
            details={
                "party": actor.party_id,
                "agreement_id": agreement.id,
                "version": agreement.version,
                "digest": agreement.digest(),
                **extra,
            },
        )

    def revise(self, draft_id: str, actor: Actor, text: str) -> dict[str, Any]:
        agreement = self._read(text)
        now = self.now()
        d = agreement_drafts
        with self._begin() as conn:
            row = self._row(conn, draft_id, actor)
            if row.status not in EDITABLE:
                raise Conflict(f"draft {draft_id!r} is {row.status}: it can no longer change")
            if agreement.id != row.agreement_id or agreement.version != row.version:
                raise InvalidInput(
                    f"a revision keeps the agreement id {row.agreement_id!r} and version "
                    f"{row.version}; start a new draft for another version"
                )
            if actor.party_id not in [p.id for p in agreement.parties]:
                raise Forbidden("a revision may not remove your own party")
            revision = row.revision + 1
            conn.execute(
                update(d)
                .where(d.c.id == draft_id)
                .values(
                    yaml=text,
                    digest=agreement.digest(),
                    revision=revision,
                    parties=[p.id for p in agreement.parties],
                    status="in_review",
                    dpo_view=None,
                    dpia_reference=None,
                    dpo_recorded_by=None,
                    updated_at=now,
                )
            )
            self._revision(conn, draft_id, revision, text, agreement, actor, now)
            self._log(
                conn, actor, "agreements.draft.revise", draft_id, agreement, now, revision=revision
            )
            row = conn.execute(select(d).where(d.c.id == draft_id)).one()
        return _summary(row)

    def comment(self, draft_id: str, actor: Actor, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text or len(text) > MAX_COMMENT:
            raise InvalidInput(f"a comment is 1 to {MAX_COMMENT} characters")
        now = self.now()
        d = agreement_drafts
        with self._begin() as conn:
            row = self._row(conn, draft_id, actor)
            if row.status not in EDITABLE:
                raise Conflict(f"draft {draft_id!r} is {row.status}: review is over")
            conn.execute(
                insert(agreement_draft_comments).values(
                    draft_id=draft_id,
                    revision=row.revision,
                    author=actor.id,
                    party_id=actor.party_id,
                    text=text,
                    written_at=now,
                )
            )
            if row.status == "draft":
                conn.execute(
                    update(d).where(d.c.id == draft_id).values(status="in_review", updated_at=now)
                )
            self._log(
                conn,
                actor,
                "agreements.draft.comment",
                draft_id,
                _parsed(row.yaml),
                now,
                length=len(text),
            )
        return self.get(draft_id, actor)

    def record_dpo(
        self, draft_id: str, actor: Actor, view: str, dpia_reference: str
    ) -> dict[str, Any]:
        view, dpia_reference = view.strip(), dpia_reference.strip()
        if not view or len(view) > MAX_DPO_VIEW:
            raise InvalidInput(f"the DPO's view is 1 to {MAX_DPO_VIEW} characters")
        if not dpia_reference or len(dpia_reference) > MAX_DPIA_REFERENCE:
            raise InvalidInput(f"the DPIA reference is 1 to {MAX_DPIA_REFERENCE} characters")
        now = self.now()
        d = agreement_drafts
        with self._begin() as conn:
            row = self._row(conn, draft_id, actor)
            if row.status not in EDITABLE:
                raise Conflict(f"draft {draft_id!r} is {row.status}")
            conn.execute(
                update(d)
                .where(d.c.id == draft_id)
                .values(
                    dpo_view=view,
                    dpia_reference=dpia_reference,
                    dpo_recorded_by=actor.id,
                    status="signing",
                    updated_at=now,
                )
            )
            self._log(
                conn,
                actor,
                "agreements.draft.dpo",
                draft_id,
                _parsed(row.yaml),
                now,
                dpia_reference=dpia_reference,
            )
        return self.get(draft_id, actor)

    # -- signing ---------------------------------------------------------------------------

    def statement(self, draft_id: str, actor: Actor, party_id: str, action: str) -> dict[str, Any]:
        """What ``party_id`` signs for ``action`` now, with the YAML it must review."""
        with self._connect() as conn:
            row = self._row(conn, draft_id, actor)
        expected = self._expected(row, party_id, action)
        return {
            "draft_id": draft_id,
            "statement": expected.content(),
            "digest": row.digest,
            "yaml": row.yaml,
        }

    def _expected(self, row: Any, party_id: str, action: str) -> Statement:
        if action not in ACTIONS:
            raise InvalidInput(f"action must be one of {list(ACTIONS)}")
        act: Action = action
        if act == "revoke":
            if row.status != "signed":
                raise Conflict(f"draft {row.id!r} is {row.status}: only a signed one is revoked")
        else:
            if row.status != "signing":
                raise Conflict(
                    f"draft {row.id!r} is {row.status}: signing starts once the DPO's view and "
                    "the DPIA reference are recorded"
                )
            if act != signing_action(row.previous_digest):
                raise Conflict(
                    f"this draft is signed with action {signing_action(row.previous_digest)!r}"
                )
        agreement = _parsed(row.yaml)
        if agreement.party(party_id) is None:
            raise Forbidden(f"{party_id!r} is not a party to {row.agreement_id!r}")
        return statement_for(agreement, party_id, act, row.previous_digest)

    def _trust(self) -> TrustSnapshot:
        base = self.store.trust_snapshot()
        refused = {k: PUBLISHED_KEY_REFUSAL for k in published_among(base.keys, demo=self.demo)}
        return TrustSnapshot(base.keys, {**base.refused, **refused})

    def submit(
        self, draft_id: str, actor: Actor, party_id: str, action: str, token: str
    ) -> dict[str, Any]:
        """Record ``party_id``'s signature of its statement for ``action``. Only the party's own
        clients submit it; it must verify against the party's registered key."""
        if party_id != actor.party_id:
            raise Forbidden(f"only {party_id!r}'s own clients submit its signature")
        if not token or len(token) > MAX_JWS:
            raise InvalidInput(f"the signature is 1 to {MAX_JWS} characters")
        now = self.now()
        d, s = agreement_drafts, agreement_draft_signatures
        with self._begin() as conn:
            row = self._row(conn, draft_id, actor)
            expected = self._expected(row, party_id, action)
            check = verify_detached(expected.canonical_bytes(), token, party_id, self._trust())
            if not check.valid:
                raise InvalidInput(
                    f"signature refused: {check.reason} (it must cover the statement the broker "
                    "shows for this draft, party and action)"
                )
            current = _current_kid(conn, party_id)
            if check.kid != current:
                raise InvalidInput(
                    f"signature refused: key {check.kid} is no longer {party_id!r}'s current "
                    f"key ({current}); sign with the current key"
                )
            done = conn.execute(
                select(s.c.party_id).where(
                    s.c.draft_id == draft_id,
                    s.c.party_id == party_id,
                    s.c.action == action,
                    s.c.digest == row.digest,
                )
            ).first()
            if done is not None:
                raise Conflict(f"{party_id!r} has already signed this ({action})")
            conn.execute(
                insert(s).values(
                    draft_id=draft_id,
                    party_id=party_id,
                    action=action,
                    digest=row.digest,
                    statement=expected.content(),
                    jws=token,
                    kid=check.kid or "",
                    submitted_by=actor.id,
                    signed_at=now,
                )
            )
            agreement = _parsed(row.yaml)
            status = row.status
            if action == "revoke":
                status = "revoked"
                _record_revocation(conn, expected, token, now)
            else:
                signed = set(
                    conn.execute(
                        select(s.c.party_id).where(
                            s.c.draft_id == draft_id,
                            s.c.action == action,
                            s.c.digest == row.digest,
                        )
                    ).scalars()
                )
                if signed >= {p.id for p in agreement.parties}:
                    status = "signed"
            conn.execute(update(d).where(d.c.id == draft_id).values(status=status, updated_at=now))
            self._log(
                conn,
                actor,
                f"agreements.draft.{action}",
                draft_id,
                agreement,
                now,
                kid=check.kid,
                status=status,
            )
        return self.get(draft_id, actor)

    # -- plumbing --------------------------------------------------------------------------

    def _connect(self) -> contextlib.AbstractContextManager[Connection]:
        return _guard(self.engine, begin=False)

    def _begin(self) -> contextlib.AbstractContextManager[Connection]:
        return _guard(self.engine, begin=True)


def _current_kid(conn: Connection, party_id: str) -> str | None:
    """The party's current signing key: its latest registered (``trust_root.py``)."""
    k = party_keys
    return conn.execute(
        select(k.c.kid)
        .where(k.c.party_id == party_id)
        .order_by(k.c.imported_at.desc(), k.c.kid.desc())
        .limit(1)
    ).scalar()


def _record_revocation(
    conn: Connection, statement: Statement, token: str, now: dt.datetime
) -> None:
    t = agreement_revocations
    digest = statement.digest_of_statement()
    conn.execute(
        insert(t).values(
            digest=digest,
            agreement_id=statement.agreement_id,
            version=statement.version,
            revoked_by=statement.party,
            reason=f"revoked by {statement.signatory_name} ({statement.signatory_role})",
            revoked_at=now,
            document=statement.content(),
            signature=token,
            first_seen_at=now,
        )
    )


@contextlib.contextmanager
def _guard(engine: Engine, *, begin: bool) -> Iterator[Connection]:
    """A connection (or transaction) whose database failures leave as 503: fail closed."""
    try:
        with engine.begin() if begin else engine.connect() as conn:
            yield conn
    except SQLAlchemyError as e:
        raise Unavailable(f"agreement drafts unavailable ({type(e).__name__})") from e


def _parsed(text: str) -> Agreement:
    doc = parse_document(text, "draft")
    assert isinstance(doc, Agreement)
    return doc


def _iso(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _summary(row: Any) -> dict[str, Any]:
    agreement = _parsed(row.yaml)
    return {
        "id": row.id,
        "agreement_id": row.agreement_id,
        "version": row.version,
        "revision": row.revision,
        "title": agreement.title,
        "parties": list(row.parties),
        "status": row.status,
        "digest": row.digest,
        "drafter": row.drafter,
        "effective_from": agreement.validity.effective_from.isoformat(),
        "expires_on": agreement.validity.expires_on.isoformat(),
        "review_by": agreement.validity.review_by.isoformat(),
        "updated_at": _iso(row.updated_at),
    }


def shown_status(stored: str, loaded: Mapping[str, str]) -> str:
    """The status to show: ``in_force`` or ``superseded`` as the policy loaded says
    (``loaded``: the computed status of this draft's agreement), else the stored one."""
    if stored == "signed":
        computed = loaded.get("status")
        if computed == "active":
            return "in_force"
        if computed == "invalid" and "superseded" in loaded.get("reasons", ""):
            return "superseded"
    return stored
