"""The registry of parties and their partner systems (clients), in the database.

Every change is an administrative action: an ``admin_events`` row and an entry of the audit log,
written in the same transaction as the change itself (``broker.audit.admin.log_admin_event``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from sqlmodel import select as select_rows

from broker.audit.admin import log_admin_event
from broker.auth.jose import import_public_jwk
from broker.auth.scopes import parse_scopes
from broker.core.confusables import confusable_with
from broker.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from broker.core.identifiers import RoleBinding
from broker.core.names import IDENTIFIER_PATTERN, is_identifier
from broker.db.tables import (
    ClientRoleRow,
    ClientRow,
    PartyRow,
    client_roles,
    clients,
)

PARTY_KINDS = ("council", "nhs", "police", "education", "housing", "other")
PartyKind = Literal["council", "nhs", "police", "education", "housing", "other"]
ClientStatus = Literal["active", "suspended"]

#: Party and client ids: the one identifier pattern (broker/core/names.py), at least 2 characters
#: long here (pydantic callers add ``min_length=2``).
ID_PATTERN = IDENTIFIER_PATTERN
#: Roles, agreement and flow ids of a binding: as party and client ids.
BINDING_ID_PATTERN = ID_PATTERN


def _valid_id(value: str) -> bool:
    return len(value) >= 2 and is_identifier(value)


#: The scope of systems that act for roles (only they are bound).
ACTING_SCOPE = "exchange"
#: Built once: SQLAlchemy then skips rebuilding the statement and its cache key per request.
#: The hot path (every authenticated request) reads the client and its role bindings in one
#: Core statement (one row per binding; one row with no role for an unbound client).
_FIND_CLIENT = (
    select(clients, client_roles.c.role, client_roles.c.agreement_id, client_roles.c.flow_id)
    .select_from(clients.outerjoin(client_roles, client_roles.c.client_id == clients.c.id))
    .where(clients.c.id == bindparam("client_id"))
    .order_by(client_roles.c.id)
)
_ROLES = select(client_roles).order_by(client_roles.c.client_id, client_roles.c.id)
_ODS = re.compile(r"^[A-Z0-9]{3,10}$")


@dataclass(frozen=True)
class Party:
    id: str
    name: str
    kind: str
    ods_code: str | None


@dataclass(frozen=True)
class Client:
    id: str
    party_id: str
    name: str
    jwks: dict[str, Any]
    scopes: tuple[str, ...]
    status: str
    roles: tuple[RoleBinding, ...] = ()
    """The roles it may act for (``broker clients bind``); none: it acts for no role."""

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def unbound(self) -> bool:
        """A system with the ``exchange`` scope bound to no role: every request it makes under
        an agreement is refused."""
        return ACTING_SCOPE in self.scopes and not self.roles

    @property
    def keys(self) -> list[dict[str, Any]]:
        keys = self.jwks.get("keys", [])
        return list(keys) if isinstance(keys, list) else []


def _now() -> datetime:
    return datetime.now(UTC)


def _log(
    session: Session,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    party_id: str | None = None,
) -> None:
    """The act's ``admin_events`` row and audit log entry, in the session's transaction."""
    log_admin_event(
        session.connection(),
        actor=actor,
        action=action,
        target=target,
        details=details,
        party_id=party_id,
    )


def _party(row: PartyRow) -> Party:
    return Party(row.id, row.name, row.kind, row.ods_code)


def _client(row: Any, roles: tuple[RoleBinding, ...] = ()) -> Client:
    return Client(
        row.id, row.party_id, row.name, dict(row.jwks), tuple(row.scopes), row.status, roles
    )


def _binding(row: Any) -> RoleBinding:
    return RoleBinding(row.role, row.agreement_id, row.flow_id)


def valid_binding(role: str, agreement_id: str | None, flow_id: str | None) -> RoleBinding:
    """A binding from outside, checked: identifiers, and a flow only within an agreement.
    Raises InvalidInput naming each bad part."""
    problems = [
        FieldProblem(name, "letters, digits, '.', '_', '-'; 2-100 chars")
        for name, value in (("role", role), ("agreement_id", agreement_id), ("flow_id", flow_id))
        if value is not None and not _valid_id(value)
    ]
    if flow_id is not None and agreement_id is None:
        problems.append(FieldProblem("flow_id", "a flow is narrowed within an agreement: name it"))
    if problems:
        raise InvalidInput("the role binding is not valid", problems)
    return RoleBinding(role, agreement_id, flow_id)


def validate_jwks(jwks: Any, refused_thumbprints: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check a client's public key set: public keys only, unique ``kid``s, at least one key,
    none of ``refused_thumbprints`` (the public demo keys, outside ``--demo``).

    Raises InvalidInput naming each bad key.
    """
    problems: list[FieldProblem] = []
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidInput("a JWKS needs a non-empty 'keys' list", [FieldProblem("jwks", "empty")])
    seen: set[str] = set()
    cleaned = []
    for index, key in enumerate(jwks["keys"]):
        where = f"jwks.keys[{index}]"
        if not isinstance(key, dict):
            problems.append(FieldProblem(where, "not a JSON object"))
            continue
        try:
            imported = import_public_jwk(key)
        except ValueError as e:
            problems.append(FieldProblem(where, str(e)))
            continue
        if imported.thumbprint() in refused_thumbprints:
            problems.append(
                FieldProblem(where, "this is a public demo key, refused outside --demo")
            )
            continue
        kid = key.get("kid")
        if kid is not None:
            if not isinstance(kid, str) or not kid:
                problems.append(FieldProblem(f"{where}.kid", "must be a non-empty string"))
            elif kid in seen:
                problems.append(FieldProblem(f"{where}.kid", f"duplicate kid {kid!r}"))
            else:
                seen.add(kid)
        cleaned.append(dict(key))
    if len(cleaned) > 1 and any("kid" not in k for k in cleaned):
        problems.append(FieldProblem("jwks.keys", "with several keys every key needs a kid"))
    if problems:
        raise InvalidInput("the key set is not acceptable", problems)
    return {"keys": cleaned}


class Registry:
    """Parties and clients. Thread-safe (each call uses its own connection)."""

    def __init__(self, engine: Engine, refused_thumbprints: frozenset[str] = frozenset()) -> None:
        self._engine = engine
        self._refused = refused_thumbprints

    # -- parties -----------------------------------------------------------------------------

    def add_party(
        self, party_id: str, name: str, kind: str, ods_code: str | None, *, actor: str
    ) -> Party:
        problems = []
        if not _valid_id(party_id):
            problems.append(FieldProblem("id", "letters, digits, '.', '_', '-'; 2-100 chars"))
        if not name.strip():
            problems.append(FieldProblem("name", "must not be empty"))
        if kind not in PARTY_KINDS:
            problems.append(FieldProblem("kind", f"one of {', '.join(PARTY_KINDS)}"))
        if kind == "nhs" and not ods_code:
            problems.append(FieldProblem("ods_code", "NHS bodies need their ODS code"))
        if ods_code is not None and not _ODS.match(ods_code):
            problems.append(FieldProblem("ods_code", "3-10 upper-case letters and digits"))
        if problems:
            raise InvalidInput("the party is not valid", problems)
        try:
            with Session(self._engine) as session:
                _check_new_party(session, party_id, ods_code)
                session.add(
                    PartyRow(
                        id=party_id, name=name, kind=kind, ods_code=ods_code, created_at=_now()
                    )
                )
                _log(session, actor, "party.add", party_id, {"name": name, "kind": kind})
                session.commit()
        except IntegrityError as e:
            raise Conflict(f"party {party_id!r} (or ODS code {ods_code}) already exists") from e
        return Party(party_id, name, kind, ods_code)

    def list_parties(self) -> list[Party]:
        with Session(self._engine) as session:
            rows = session.exec(select_rows(PartyRow).order_by(col(PartyRow.id))).all()
            return [_party(r) for r in rows]

    def get_party(self, party_id: str) -> Party:
        with Session(self._engine) as session:
            row = session.get(PartyRow, party_id)
            if row is None:
                raise NotFound(f"no party {party_id!r}")
            return _party(row)

    # -- clients -----------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        party_id: str,
        name: str,
        jwks: dict[str, Any],
        scopes: list[str],
        *,
        actor: str,
    ) -> Client:
        if not _valid_id(client_id):
            raise InvalidInput(
                "the client id is not valid",
                [FieldProblem("client_id", "letters, digits, '.', '_', '-'; 2-100 chars")],
            )
        try:
            granted = parse_scopes(scopes)
        except ValueError as e:
            raise InvalidInput(str(e), [FieldProblem("scopes", str(e))]) from e
        jwks = validate_jwks(jwks, self._refused)
        self.get_party(party_id)
        now = _now()
        try:
            with Session(self._engine) as session:
                existing = session.exec(select_rows(ClientRow.id)).all()
                other = confusable_with(client_id, existing)
                if other is not None:
                    raise InvalidInput(
                        f"client id {client_id!r} could be taken for client {other!r}",
                        [FieldProblem("client_id", f"confusable with existing client {other!r}")],
                    )
                session.add(
                    ClientRow(
                        id=client_id,
                        party_id=party_id,
                        name=name or client_id,
                        jwks=jwks,
                        scopes=granted,
                        status="active",
                        created_at=now,
                        updated_at=now,
                    )
                )
                _log(
                    session,
                    actor,
                    "client.add",
                    client_id,
                    {"party": party_id, "scopes": granted, "kids": _kids(jwks)},
                )
                session.commit()
        except IntegrityError as e:
            raise Conflict(f"client {client_id!r} already exists") from e
        return Client(client_id, party_id, name or client_id, jwks, tuple(granted), "active")

    def find_client(self, client_id: str) -> Client | None:
        """Read on every authenticated request (suspension and role changes take effect at
        once)."""
        with self._engine.connect() as conn:
            rows = conn.execute(_FIND_CLIENT, {"client_id": client_id}).all()
        if not rows:
            return None
        return _client(rows[0], tuple(_binding(r) for r in rows if r.role is not None))

    def get_client(self, client_id: str) -> Client:
        client = self.find_client(client_id)
        if client is None:
            raise NotFound(f"no client {client_id!r}")
        return client

    def list_clients(self, party_id: str | None = None) -> list[Client]:
        query = select_rows(ClientRow).order_by(col(ClientRow.id))
        if party_id is not None:
            query = query.where(col(ClientRow.party_id) == party_id)
        with Session(self._engine) as session:
            rows = session.exec(query).all()
            bindings: dict[str, list[RoleBinding]] = {}
            for b in session.connection().execute(_ROLES):
                bindings.setdefault(b.client_id, []).append(_binding(b))
            return [_client(r, tuple(bindings.get(r.id, ()))) for r in rows]

    # -- role bindings -----------------------------------------------------------------------

    def bind(
        self,
        client_id: str,
        role: str,
        agreement_id: str | None = None,
        flow_id: str | None = None,
        *,
        actor: str,
    ) -> Client:
        """Let ``client_id`` act for ``role`` (under any agreement, or only ``agreement_id``,
        or only its ``flow_id``). Only systems with the ``exchange`` scope act for roles.
        Raises InvalidInput, NotFound, Conflict (bound so already)."""
        binding = valid_binding(role, agreement_id, flow_id)
        client = self.get_client(client_id)
        if ACTING_SCOPE not in client.scopes:
            raise InvalidInput(
                f"client {client_id!r} does not make exchanges (no {ACTING_SCOPE!r} scope): "
                "only systems that make exchanges act for roles",
                [FieldProblem("client_id", f"needs the {ACTING_SCOPE!r} scope")],
            )
        if binding in client.roles:
            raise Conflict(f"client {client_id!r} is already bound to role {binding}")
        with Session(self._engine) as session:
            session.add(
                ClientRoleRow(
                    client_id=client_id,
                    role=role,
                    agreement_id=agreement_id,
                    flow_id=flow_id,
                    created_at=_now(),
                )
            )
            _log(session, actor, "client.bind", client_id, _binding_details(binding))
            session.commit()
        return self.get_client(client_id)

    def unbind(
        self,
        client_id: str,
        role: str,
        agreement_id: str | None = None,
        flow_id: str | None = None,
        *,
        actor: str,
    ) -> Client:
        """Remove exactly this binding: the client's next request under it is refused.
        Raises InvalidInput, NotFound (no such client or binding)."""
        binding = valid_binding(role, agreement_id, flow_id)
        self.get_client(client_id)
        row = client_roles
        condition = and_(
            row.c.client_id == client_id,
            row.c.role == role,
            row.c.agreement_id.is_(None)
            if agreement_id is None
            else row.c.agreement_id == agreement_id,
            row.c.flow_id.is_(None) if flow_id is None else row.c.flow_id == flow_id,
        )
        with Session(self._engine) as session:
            removed = session.connection().execute(row.delete().where(condition)).rowcount
            if not removed:
                raise NotFound(f"client {client_id!r} is not bound to role {binding}")
            _log(session, actor, "client.unbind", client_id, _binding_details(binding))
            session.commit()
        return self.get_client(client_id)

    def set_status(self, client_id: str, status: ClientStatus, *, actor: str) -> Client:
        action = f"client.{'suspend' if status == 'suspended' else 'activate'}"
        self._change(client_id, actor, action, {}, status=status)
        return self.get_client(client_id)

    def set_scopes(self, client_id: str, scopes: list[str], *, actor: str) -> Client:
        try:
            granted = parse_scopes(scopes)
        except ValueError as e:
            raise InvalidInput(str(e), [FieldProblem("scopes", str(e))]) from e
        self._change(client_id, actor, "client.scopes", {"scopes": granted}, scopes=granted)
        return self.get_client(client_id)

    def add_key(self, client_id: str, jwk: dict[str, Any], *, actor: str) -> Client:
        """Add a key (client key rotation, step 1). The new key needs a ``kid``."""
        client = self.get_client(client_id)
        if "kid" not in jwk:
            raise InvalidInput("a new key needs a kid", [FieldProblem("jwk.kid", "missing")])
        merged = validate_jwks({"keys": [*client.keys, jwk]}, self._refused)
        self._change(client_id, actor, "client.add-key", {"kid": jwk["kid"]}, jwks=merged)
        return self.get_client(client_id)

    def remove_key(self, client_id: str, kid: str, *, actor: str) -> Client:
        """Remove a key (client key rotation, step 2). Assertions signed with it stop working."""
        client = self.get_client(client_id)
        remaining = [k for k in client.keys if k.get("kid") != kid]
        if len(remaining) == len(client.keys):
            raise NotFound(f"client {client_id!r} has no key with kid {kid!r}")
        if not remaining:
            raise Conflict("cannot remove the last key: add the new key first, or suspend")
        self._change(client_id, actor, "client.remove-key", {"kid": kid}, jwks={"keys": remaining})
        return self.get_client(client_id)

    def _change(
        self, client_id: str, actor: str, action: str, details: dict[str, Any], **values: Any
    ) -> None:
        """Set ``values`` on the client and log ``action``, in one transaction. Raises NotFound."""
        with Session(self._engine) as session:
            row = session.get(ClientRow, client_id)
            if row is None:
                raise NotFound(f"no client {client_id!r}")
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = _now()
            session.add(row)
            _log(session, actor, action, client_id, details, row.party_id)
            session.commit()


def _check_new_party(session: Session, party_id: str, ods_code: str | None) -> None:
    """Refuse an ODS code another party holds (Conflict, naming it) and an id that could be
    taken for another party's id or ODS code (InvalidInput, naming it)."""
    rows = session.exec(select_rows(PartyRow.id, PartyRow.ods_code)).all()
    if ods_code is not None:
        for other_id, other_ods in rows:
            if other_ods is not None and other_ods.casefold() == ods_code.casefold():
                raise Conflict(f"ODS code {ods_code} belongs to party {other_id!r} already")
    if any(other_id == party_id for other_id, _ in rows):
        raise Conflict(f"party {party_id!r} already exists")
    other = confusable_with(party_id, [r[0] for r in rows])
    if other is None:
        codes = {ods: other_id for other_id, ods in rows if ods is not None}
        code = confusable_with(party_id, codes)
        other = None if code is None else codes[code]
        if other is None and party_id in codes:
            other = codes[party_id]
    if other is not None:
        raise InvalidInput(
            f"party id {party_id!r} could be taken for party {other!r}",
            [FieldProblem("id", f"confusable with existing party {other!r}")],
        )


def _binding_details(binding: RoleBinding) -> dict[str, Any]:
    return {"role": binding.role, "agreement": binding.agreement_id, "flow": binding.flow_id}


def _kids(jwks: dict[str, Any]) -> list[str]:
    return [str(k.get("kid", "")) for k in jwks.get("keys", [])]
