"""Errors of ID token checks. The exchange pipeline maps them (all name ``requested_by.id_token``).

::

    InvalidInput (422)
    └── IdTokenError               reason: a short machine label for metrics
        ├── IdTokenRejected        malformed, bad signature, wrong issuer or audience,
        │                          expired, too old, no usable role...
        ├── IdTokenRequired        the party (or break-glass) requires one and none was sent
        └── NoIdentityProvider     a token was sent but the party registered no provider
    Unavailable (503)
    └── IdentityProviderUnavailable  the provider's keys could not be fetched (fail closed)
"""

from __future__ import annotations

from broker.core.errors import FieldProblem, InvalidInput, Unavailable

LOCATION = "requested_by.id_token"


class IdTokenError(InvalidInput):
    title = "ID token not accepted"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(
            f"the ID token was not accepted: {detail}", [FieldProblem(LOCATION, detail)]
        )
        self.reason = reason


class IdTokenRejected(IdTokenError):
    """The token fails a check."""


class IdTokenRequired(IdTokenError):
    """No token, where one is required."""

    def __init__(self, detail: str) -> None:
        super().__init__("required", detail)


class NoIdentityProvider(IdTokenError):
    """A token, but no provider to check it against."""

    def __init__(self, party_id: str) -> None:
        super().__init__("no-provider", f"party {party_id} has registered no identity provider")


class IdentityProviderUnavailable(Unavailable):
    """The provider's key set could not be fetched and none is cached."""
