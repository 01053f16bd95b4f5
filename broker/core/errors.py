"""The broker's error tree. Domain code raises these; ``broker.api.problems`` maps them to HTTP.

::

    BrokerError
    ├── InvalidInput            bad input the caller can fix (422)
    ├── NotFound                a named thing does not exist (404)
    ├── Conflict                it exists already / state forbids it (409)
    ├── ConfigurationError      the operator must fix settings or files (startup, exit 2)
    ├── Unavailable             a dependency we need is down: fail closed (503)
    ├── Refused                 the policy denied a sharing request (403, logged)
    ├── TooManyRequests         the caller is over a limit: wait and try again (429)
    └── AuthError               authentication and authorisation
        ├── OAuthError          token endpoint errors, RFC 6749 §5.2 (400/401)
        ├── InvalidToken        a bad, expired or revoked access token (401)
        └── Forbidden           authenticated but lacking a scope or right (403)

Later areas (agreements, policy, audit, adapters) hang their own subtrees off ``BrokerError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class BrokerError(Exception):
    """Base of every error the broker raises on purpose."""

    title = "Broker error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = {}
        """Members added to the problem response (e.g. the ``exchange_id`` of a logged refusal)."""

    def with_extra(self, **members: Any) -> BrokerError:
        self.extra.update(members)
        return self


@dataclass(frozen=True)
class FieldProblem:
    """One bad input field: where it is (dotted path) and what is wrong with it."""

    location: str
    message: str


class InvalidInput(BrokerError):
    title = "Invalid request"

    def __init__(self, detail: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(detail)
        self.problems = list(problems)


class NotFound(BrokerError):
    title = "Not found"


class Conflict(BrokerError):
    title = "Conflict"


class ConfigurationError(BrokerError):
    title = "Configuration error"


class Unavailable(BrokerError):
    title = "Service unavailable"
    retry_after_seconds: int | None = None
    """When set, the 503 carries ``Retry-After`` (e.g. the rate limit store is unreachable)."""


class Refused(BrokerError):
    title = "Refused"


class TooManyRequests(BrokerError):
    """Over a limit. ``retry_after_seconds`` (at least 1) becomes the ``Retry-After`` header."""

    title = "Too many requests"

    def __init__(self, detail: str, retry_after_seconds: int = 60) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class AuthError(BrokerError):
    title = "Authentication failed"


@dataclass
class OAuthError(AuthError):
    """An RFC 6749 §5.2 error from the token endpoint.

    ``error`` is one of the RFC's codes (``invalid_request``, ``invalid_client``,
    ``invalid_grant``, ``unauthorized_client``, ``unsupported_grant_type``, ``invalid_scope``).
    ``reason`` is a short machine label for metrics; ``detail`` is safe to show the caller.
    """

    error: str
    detail: str
    reason: str = "other"
    status_code: int = 400
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        BrokerError.__init__(self, self.detail)


class InvalidToken(AuthError):
    title = "Invalid access token"


class Forbidden(AuthError):
    title = "Forbidden"
