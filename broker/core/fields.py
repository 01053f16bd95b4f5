"""Field patterns: the catalogue names an agreement's field list stands for. Pure.

A pattern is an exact catalogue name, or ``prefix.*``: every catalogue name under ``prefix.``, at
any depth. That is the only wildcard (``docs/agreements.md``, ``docs/policy.md``); a ``*``
anywhere else is refused, and ``prefix`` alone names only a field called ``prefix``.

The rule is strict: a pattern that matches no catalogue name is an error, never an empty
contribution. Agreement validation (``broker/agreements/validation.py``) reports each such pattern
and the policy compiler (``broker/policy/compiled.py``) refuses it, so the agreement a party signed
and the policy the broker runs always mean the same fields. Ignoring it instead would let a typo
(``adress.*``) silently narrow what the parties agreed, and a field that a later catalogue adds
under that name would silently widen it; refusing also means an expansion can only ever name
fields that the register lists, so ``address.*`` never releases more than the register holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

WILDCARD = ".*"


class FieldPatternError(ValueError):
    """A pattern that is malformed or matches no catalogue name; ``str()`` says which and why."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(reason)
        self.pattern = pattern


def _matches(pattern: str, name: str) -> bool:
    if pattern.endswith(WILDCARD):
        return name.startswith(pattern[:-1])
    return name == pattern


def check_pattern(pattern: str, catalogue: Iterable[str]) -> None:
    """Raise :class:`FieldPatternError` unless ``pattern`` is well formed and matches a name."""
    names = list(catalogue)
    if pattern.endswith(WILDCARD):
        if "*" in pattern[:-1]:
            raise FieldPatternError(pattern, f"{pattern!r}: only a trailing '.*' is a wildcard")
        if not any(_matches(pattern, n) for n in names):
            raise FieldPatternError(pattern, f"wildcard {pattern!r} matches no catalogue field")
    elif "*" in pattern:
        raise FieldPatternError(pattern, f"{pattern!r}: only a trailing '.*' is a wildcard")
    elif pattern not in names:
        raise FieldPatternError(pattern, f"field {pattern!r} is not in the catalogue")


def expand_fields(patterns: Iterable[str], catalogue: Sequence[str]) -> tuple[str, ...]:
    """The catalogue names ``patterns`` stand for, in catalogue order.

    Raises :class:`FieldPatternError` for the first pattern that is malformed or matches nothing.
    """
    wanted = list(patterns)
    for pattern in wanted:
        check_pattern(pattern, catalogue)
    return fields_matching(wanted, catalogue)


def fields_matching(patterns: Iterable[str], catalogue: Iterable[str]) -> tuple[str, ...]:
    """The catalogue names matched by any of ``patterns``, in catalogue order, unchecked: what
    :func:`expand_fields` returns once every pattern has passed :func:`check_pattern`."""
    wanted = list(patterns)
    return tuple(n for n in catalogue if any(_matches(p, n) for p in wanted))
