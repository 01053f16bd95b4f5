"""A verified user suspended by a governance officer of their party is refused (403) and the
refusal is logged as a denied exchange (broker/identity/suspensions.py holds
the suspensions). Pure: the check reads the port's snapshot."""

from __future__ import annotations

from broker.core.errors import Refused
from broker.exchange.entries import Person
from broker.exchange.ports import SuspensionPort


class UserSuspended(Refused):
    """The verified user behind the request is suspended (logged as a denied exchange)."""

    title = "The user is suspended"


def check_not_suspended(suspensions: SuspensionPort | None, party_id: str, person: Person) -> None:
    """Raise UserSuspended when ``person`` is a verified user of ``party_id`` who is suspended.
    An asserted user names no issuer, so cannot be matched (nor suspended)."""
    if suspensions is None or not person.verified or person.issuer is None:
        return
    if suspensions.suspended(party_id, person.issuer, person.user_id):
        raise UserSuspended(f"user {person.user_id} of party {party_id} is suspended")
