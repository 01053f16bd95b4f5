"""Errors of the agreements area.

::

    BrokerError
    └── AgreementError          anything about agreements, the register, signatures, keys
        ├── UnusableKeyError        an unreadable key file, or a kind of key we do not accept
        ├── DemoKeyRefusedError     a demo key outside demo mode
        ├── UnknownPartyError       a key or document names a party the registry does not know
        ├── KeyConflictError        a key already trusted for another party
        ├── DocumentInvalidError    a document fails validation (carries the problems)
        ├── NotASignatoryError      a party signing or revoking what it is not party to
        └── AgreementStoreUnavailableError   the database failed (also a core Unavailable: 503)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from broker.core.errors import BrokerError, Unavailable
from broker.core.published_keys import published_among


class AgreementError(BrokerError):
    title = "Agreement error"


class UnusableKeyError(AgreementError):
    title = "Unusable key"


class DemoKeyRefusedError(AgreementError):
    title = "Demo key refused"


def refuse_published_keys(kids: Iterable[str], *, demo: bool) -> None:
    """Raise :class:`DemoKeyRefusedError` for a published key among ``kids`` outside demo mode."""
    bad = published_among(kids, demo=demo)
    if bad:
        raise DemoKeyRefusedError(f"demo keys are refused outside demo mode: {', '.join(bad)}")


class UnknownPartyError(AgreementError):
    title = "Unknown party"


class KeyConflictError(AgreementError):
    title = "Key conflict"


class DocumentInvalidError(AgreementError):
    """A document fails validation; ``problems`` says where and why (file, place, reason)."""

    title = "Invalid document"

    def __init__(self, detail: str, problems: Sequence[object] = ()) -> None:
        super().__init__(detail)
        self.problems = tuple(problems)


class NotASignatoryError(AgreementError):
    """The party asked to sign or revoke is not entitled to (not a party, not the owner)."""

    title = "Not a signatory"


class AgreementStoreUnavailableError(AgreementError, Unavailable):
    """The trust store, revocations or versions could not be read or written: fail closed."""

    title = "Agreement store unavailable"
