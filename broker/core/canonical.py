"""Canonical bytes (RFC 8785, JSON Canonicalization Scheme) and SHA-256 digests. Pure, no I/O.

Every signed document in the broker (agreements, dataset entries, revocations) is signed over
:func:`canonical_bytes` of its content, and cited by :func:`digest` of the same bytes. Two values
with the same meaning (same keys and values, any key order, any formatting) give the same bytes;
any change of a key or value gives different bytes.

Digests are written ``sha256:<64 lowercase hex digits>``: the algorithm travels with the value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import rfc8785

from broker.core.errors import InvalidInput

JSONValue: TypeAlias = (
    bool | int | float | str | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)

DIGEST_PREFIX = "sha256:"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class CanonicalisationError(InvalidInput):
    """The value has no RFC 8785 form (NaN, infinity, a non-string key, a lone surrogate, ...)."""

    title = "Value cannot be canonicalised"


def canonical_bytes(value: JSONValue) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON-compatible value.

    Raises :class:`CanonicalisationError` for values JSON cannot represent exactly.
    """
    try:
        result: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError) as e:
        raise CanonicalisationError(f"cannot canonicalise value: {e}") from e
    return result


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of raw bytes."""
    return DIGEST_PREFIX + sha256_hex(data)


def digest(value: JSONValue) -> str:
    """``sha256:<hex>`` of the canonical bytes of ``value``: the digest documents are cited by."""
    return digest_bytes(canonical_bytes(value))


def is_digest(text: str) -> bool:
    """True when ``text`` is a well-formed ``sha256:<64 hex>`` digest."""
    return bool(_DIGEST_RE.fullmatch(text))
