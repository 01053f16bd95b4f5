"""The person behind a request: from the caller's user-restricted token (token exchange,
broker/identity/token_exchange.py), else as the partner system asserts it in ``requested_by`` or,
where the party has an identity provider and an ID token is sent (or required), as verified; with
neither, the system asks for itself (``assurance: system``). Which of these a flow accepts is
the agreement's ``identity`` (the policy refuses the rest, break-glass included).

With a user-restricted token the user and role come from the token, never from the body:

``requested_by`` may be left out; where it is sent it must agree with the token (else
:class:`UserMismatch`, a 422 the exchange logs as a denied exchange). A user with several roles
names one in ``requested_by.role``, and it must be among them.
"""

from __future__ import annotations

import datetime as dt

from broker.core.errors import FieldProblem, InvalidInput
from broker.core.identifiers import Caller, CallerUser
from broker.exchange.entries import Person
from broker.exchange.ports import IdentityPort
from broker.exchange.request import ExchangeRequest, RequestedBy, asserted_user


class UserMismatch(InvalidInput):
    """``requested_by`` disagrees with the user-restricted token (logged as a denied exchange)."""

    title = "The request disagrees with the token's user"


def token_person(user: CallerUser, asserted: RequestedBy | None) -> Person:
    """The verified person of the token, with the one role that applies. Raises UserMismatch."""
    problems: list[FieldProblem] = []
    role: str | None = None
    if asserted is not None and asserted.id_token is not None:
        problems.append(
            FieldProblem(
                "requested_by.id_token",
                "the access token names the user already: send no ID token with it",
            )
        )
    if asserted is not None and asserted.user_id not in (None, user.subject):
        problems.append(
            FieldProblem(
                "requested_by.user_id",
                f"the token's user is {user.subject!r}, not {asserted.user_id!r}",
            )
        )
    wanted = None if asserted is None else asserted.role
    if wanted is not None:
        if wanted in user.roles:
            role = wanted
        else:
            problems.append(
                FieldProblem(
                    "requested_by.role",
                    f"{wanted!r} is not among the token's roles ({', '.join(user.roles)})",
                )
            )
    elif len(user.roles) == 1:
        role = user.roles[0]
    else:
        problems.append(
            FieldProblem(
                "requested_by.role",
                f"the token's user has several roles ({', '.join(user.roles)}): name one",
            )
        )
    if problems or role is None:
        raise UserMismatch("requested_by disagrees with the user-restricted token", problems)
    return Person(user_id=user.subject, role=role, assurance="verified", issuer=user.issuer)


def person_of(
    caller: Caller, request: ExchangeRequest, identity: IdentityPort | None, now: dt.datetime
) -> Person:
    """The person behind ``request``. Raises UserMismatch, and what the identity check raises
    (an ID token required and absent, or refused)."""
    if caller.user is not None:
        return token_person(caller.user, request.requested_by)
    asserted = asserted_user(request)
    if asserted is None:
        # No requested_by and no user token: the system asks for itself. A party that requires
        # ID tokens still refuses (IdTokenRequired); the policy decides whether the flow allows
        # a request with no person (identity: system).
        if identity is not None:
            identity.check_request(
                caller.party_id,
                caller.client_id,
                None,
                break_glass=request.break_glass,
                now=now.timestamp(),
            )
        return Person(user_id=caller.client_id, role="", assurance="system")
    user_id, role, id_token = asserted
    if identity is None:
        return Person(user_id=user_id, role=role, assurance="asserted")
    verified = identity.check_request(
        caller.party_id,
        caller.client_id,
        id_token,
        break_glass=request.break_glass,
        now=now.timestamp(),
        asserted_role=role,
    )
    if verified is None:
        return Person(user_id=user_id, role=role, assurance="asserted")
    return Person(
        user_id=verified.user_id, role=verified.role, assurance="verified", issuer=verified.issuer
    )
