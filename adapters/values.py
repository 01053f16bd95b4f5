"""Typing source values into catalogue values (pure). A value that does not fit its declared
type is :class:`SourceBadData` naming the catalogue field.

Catalogue types: string, date (ISO ``YYYY-MM-DD`` string), boolean, integer, decimal (exact,
as a string such as ``"112.40"``), enum (string).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.bindings import DatasetBinding
from adapters.errors import SourceBadData


def to_catalogue(binding: DatasetBinding, field: str, value: Any) -> Any:
    """``value`` as the catalogue type the binding declares for ``field`` (``options.types``)."""
    if value is None:
        return None
    declared = binding.options.get("types", {}).get(field)
    try:
        return _convert(declared, value)
    except (ValueError, TypeError, InvalidOperation) as e:
        raise SourceBadData(
            f"field {field}: source value does not fit type {declared}",
            dataset=binding.dataset,
            source=binding.source.name,
            field=field,
        ) from e


def _convert(declared: str | None, value: Any) -> Any:
    if declared is None:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value
    if declared == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return (
            date.fromisoformat(str(value)[:10]).isoformat()
            if len(str(value)) >= 10
            else (date.fromisoformat(str(value)).isoformat())
        )
    if declared == "boolean":
        if isinstance(value, bool):
            return value
        if value in (0, 1, "0", "1", "true", "false"):
            return value in (1, "1", "true")
        raise ValueError("not a boolean")
    if declared == "integer":
        if isinstance(value, bool):
            raise ValueError("a boolean is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ValueError("not an integer")
    if declared == "decimal":
        if isinstance(value, (bool, float)):
            raise ValueError("decimals must be exact")
        return str(Decimal(str(value)))
    if declared in ("string", "enum"):
        if isinstance(value, (dict, list)):
            raise ValueError("not a scalar")
        return str(value)
    raise ValueError(f"unknown catalogue type {declared!r}")
