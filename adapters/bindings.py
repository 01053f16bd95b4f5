"""Bindings: which source system serves each dataset and how its fields map.

Loaded only from files an administrator configured (never from a request). A file names the
source systems (adapter kind, endpoint or DSN, timeouts, retries, breaker) and the datasets each
serves (field mapping catalogue name -> source path, identifier mapping subject type -> source
path of that identifier in a record, kind-specific options)::

    sources:
      r9z-fhir:
        kind: fhir
        endpoint: ${r9z_fhir_url}
        timeouts: {connect_seconds: 1.0, read_seconds: 3.0}
    datasets:
      r9z.patient-demographics:
        source: r9z-fhir
        identifiers: {nhs_number: "Patient.identifier.where(system='...').value"}
        fields: {name.family: "Patient.name.first().family"}
        key: Patient.id        # optional: the record's stable key at the source

A dataset's ``key`` is the source path of the record's stable key (a primary key column, a FHIR
resource id, a REST record id). The verification limits count answers per record by it, whatever
identifier the caller used; without one the key is every identifier the record holds.

``${name}`` in an endpoint is replaced from ``variables`` given by the operator's code (the demo
passes the loopback ports it started); an unknown variable is a :class:`BindingError`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.errors import BindingError
from broker.core.identifiers import SubjectType


class Timeouts(BaseModel):
    """Per-attempt limits, in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    connect_seconds: float = Field(default=1.0, gt=0, le=30)
    read_seconds: float = Field(default=3.0, gt=0, le=120)


class RetryPolicy(BaseModel):
    """Bounded retries of idempotent reads after ``SourceUnavailable`` (refused, 5xx)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_attempts: int = Field(default=3, ge=1, le=6)
    backoff_base_seconds: float = Field(default=0.05, ge=0, le=5)
    backoff_max_seconds: float = Field(default=1.0, ge=0, le=30)


class BreakerPolicy(BaseModel):
    """Open after ``failure_threshold`` consecutive failures; try again after the reset time."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    failure_threshold: int = Field(default=5, ge=1, le=100)
    reset_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)


class _SourceEntry(BaseModel):
    """A source as written in the bindings file, under its name."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    endpoint: str
    timeouts: Timeouts = Timeouts()
    retries: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    options: dict[str, Any] = Field(default_factory=dict)


class SourceConfig(_SourceEntry):
    """One source system. Its adapter instance, connection pool and circuit breaker are shared
    by every dataset it serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str


#: Internal field names (never catalogue names, which have no ``@``) for the stable key.
KEY_FIELD = "@key"
IDENTIFIER_FIELD = "@identifier:"


class DatasetBinding(BaseModel):
    """How one dataset is read from its source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dataset: str
    source: SourceConfig
    fields: dict[str, str]
    """Catalogue field -> source path (column, JSON pointer, FHIRPath-like path, metadata key)."""
    identifiers: dict[SubjectType, str]
    """Subject identifier type -> source path of that identifier in a returned record."""
    options: dict[str, Any] = Field(default_factory=dict)
    key: str | None = None
    """Source path of the record's stable key; None: every identifier the record holds."""

    def key_fields(self) -> tuple[str, ...]:
        """The internal field names :meth:`source_path` maps to the stable key's path(s)."""
        if self.key is not None:
            return (KEY_FIELD,)
        return tuple(f"{IDENTIFIER_FIELD}{t}" for t in sorted(self.identifiers))

    def source_path(self, field: str) -> str:
        """The source path of catalogue ``field``; :class:`BindingError` if the binding lacks it."""
        if field == KEY_FIELD and self.key is not None:
            return self.key
        for subject_type, path in self.identifiers.items():
            if field == f"{IDENTIFIER_FIELD}{subject_type}":
                return path
        try:
            return self.fields[field]
        except KeyError:
            raise BindingError(
                f"dataset {self.dataset} has no mapping for field {field!r}"
            ) from None


class BindingSet:
    """The bindings an administrator configured, by dataset id."""

    def __init__(self, bindings: Mapping[str, DatasetBinding]) -> None:
        self._bindings = dict(bindings)

    def __contains__(self, dataset: object) -> bool:
        return dataset in self._bindings

    def __iter__(self) -> Any:
        return iter(self._bindings.values())

    def __len__(self) -> int:
        return len(self._bindings)

    def get(self, dataset: str) -> DatasetBinding:
        """The binding of ``dataset``; :class:`BindingError` if none is configured."""
        try:
            return self._bindings[dataset]
        except KeyError:
            raise BindingError(f"no source is bound to dataset {dataset!r}") from None

    def with_source(self, name: str, **updates: Any) -> BindingSet:
        """A copy in which source ``name`` has ``updates`` (e.g. tighter ``timeouts``)."""
        if name not in self.sources:
            raise BindingError(f"no source named {name!r}")
        changed = self.sources[name].model_copy(update=updates)
        return BindingSet(
            {
                d: (b.model_copy(update={"source": changed}) if b.source.name == name else b)
                for d, b in self._bindings.items()
            }
        )

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(sorted(self._bindings))

    @property
    def sources(self) -> dict[str, SourceConfig]:
        return {b.source.name: b.source for b in self._bindings.values()}


class _DatasetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    fields: dict[str, str]
    identifiers: dict[SubjectType, str]
    options: dict[str, Any] = Field(default_factory=dict)
    key: str | None = Field(default=None, min_length=1)


class _BindingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: dict[str, _SourceEntry]
    datasets: dict[str, _DatasetEntry]


def parse_bindings(
    document: Mapping[str, Any], *, variables: Mapping[str, str] | None = None, origin: str = ""
) -> BindingSet:
    """Bindings from a parsed YAML/JSON document; :class:`BindingError` names what is wrong."""
    where = f"{origin}: " if origin else ""
    try:
        parsed = _BindingsFile.model_validate(document)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise BindingError(f"{where}{problems}") from e
    sources: dict[str, SourceConfig] = {}
    for name, entry in parsed.sources.items():
        try:
            endpoint = string.Template(entry.endpoint).substitute(variables or {})
        except (KeyError, ValueError) as e:
            raise BindingError(f"{where}sources.{name}.endpoint: unknown variable {e}") from e
        sources[name] = SourceConfig(**{**dict(entry), "name": name, "endpoint": endpoint})
    bindings: dict[str, DatasetBinding] = {}
    for dataset, d in parsed.datasets.items():
        if d.source not in sources:
            raise BindingError(f"{where}datasets.{dataset}.source: no source named {d.source!r}")
        if not d.identifiers:
            raise BindingError(f"{where}datasets.{dataset}.identifiers: at least one is needed")
        bindings[dataset] = DatasetBinding(
            dataset=dataset,
            source=sources[d.source],
            fields=d.fields,
            identifiers=d.identifiers,
            options=d.options,
            key=d.key,
        )
    return BindingSet(bindings)


def load_bindings(path: Path, *, variables: Mapping[str, str] | None = None) -> BindingSet:
    """Bindings from an administrator's YAML file; :class:`BindingError` if unreadable/wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise BindingError(f"{path}: cannot read bindings: {e}") from e
    if not isinstance(document, Mapping):
        raise BindingError(f"{path}: a bindings file is a mapping with sources and datasets")
    return parse_bindings(document, variables=variables, origin=str(path))
