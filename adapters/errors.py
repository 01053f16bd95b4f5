"""Errors of source adapters. Every foreign exception (aiohttp, SQLAlchemy, pydantic, OS) is
translated into one of these at the adapter's edge; nothing else escapes a fetch.

::

    BrokerError
    ├── ConfigurationError
    │   └── BindingError          a bindings file or binding is wrong (startup, exit 2)
    ├── NotFound
    │   └── SubjectNotFound       the source holds no record for the subject (404)
    └── SourceError               the source failed us; nothing is released
        ├── SourceUnavailable     refused connection, 5xx after retries (502)
        │   └── CircuitOpen       the breaker is open: the source was not even asked (502)
        ├── SourceTimeout         connect or read timeout (504)
        ├── SourceBadData         unparseable/invalid answer, or a field that cannot map (502)
        │   └── DocumentAltered   a document's content no longer matches its SHA-256 (502)
        └── WrongSubject          the answer is about someone else (wrong-person guard) (502)
            └── MultipleMatches   the search matched several people: never take the first (502)

``SubjectNotFound`` is also a :class:`SourceError` so a caller can catch every source outcome at
once, but it maps to 404 (it is a :class:`broker.core.errors.NotFound`).
"""

from __future__ import annotations

from broker.core.errors import BrokerError, ConfigurationError, NotFound


class BindingError(ConfigurationError):
    """A bindings file is missing, malformed, or names an unknown adapter kind or dataset."""

    title = "Adapter binding error"


class SourceError(BrokerError):
    """A source system did not give us a usable record. ``dataset`` and ``source`` name where."""

    title = "Source system error"
    http_status = 502

    def __init__(self, detail: str, *, dataset: str = "", source: str = "") -> None:
        super().__init__(detail)
        self.dataset = dataset
        self.source = source


class SourceUnavailable(SourceError):
    title = "Source system unavailable"


class CircuitOpen(SourceUnavailable):
    title = "Source system unavailable (circuit open)"


class SourceTimeout(SourceError):
    title = "Source system timed out"
    http_status = 504


class SourceBadData(SourceError):
    """The answer could not be parsed, failed validation, or a field could not be mapped.

    ``field`` names the catalogue field when the problem is one field's mapping.
    """

    title = "Source system sent bad data"

    def __init__(
        self, detail: str, *, dataset: str = "", source: str = "", field: str | None = None
    ) -> None:
        super().__init__(detail, dataset=dataset, source=source)
        self.field = field


class DocumentAltered(SourceBadData):
    """A stored document's content no longer hashes to the SHA-256 it was verified under
    (``sha256``): the broker revokes every attestation over it."""

    def __init__(self, detail: str, *, sha256: str, dataset: str = "", source: str = "") -> None:
        super().__init__(detail, dataset=dataset, source=source)
        self.sha256 = sha256


class WrongSubject(SourceError):
    """The record returned is not for the subject asked about. Nothing from it is released."""

    title = "Source returned another person's record"


class MultipleMatches(WrongSubject):
    title = "Source matched several people"


class SubjectNotFound(SourceError, NotFound):
    title = "Subject not found at the source"
    http_status = 404


#: Failures that say the source itself is unhealthy (they count against its circuit breaker).
SOURCE_FAILURES: tuple[type[SourceError], ...] = (SourceUnavailable, SourceTimeout, SourceBadData)
