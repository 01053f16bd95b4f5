"""The pseudonym key file: the hex secret ``secrets init`` writes, or the versioned format."""

from __future__ import annotations

import pytest

from broker.core.errors import ConfigurationError
from broker.core.pseudonym import format_key, generate_key
from broker.subjects.pseudonyms import parse_pseudonym_keys


def test_the_hex_secret_is_key_version_v1() -> None:
    ring = parse_pseudonym_keys("ab" * 32 + "\n")
    assert ring.current.version == "v1"
    assert ring.current.secret == bytes.fromhex("ab" * 32)


def test_the_versioned_format_keeps_every_version() -> None:
    one, two = generate_key("v1"), generate_key("v2")
    ring = parse_pseudonym_keys(f"# keys\n{format_key(one)}\n{format_key(two)}\n")
    assert [k.version for k in ring.keys] == ["v1", "v2"]
    assert len(ring.all_pseudonyms("person_id", "P0001234")) == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("abcd\n", "at least 32", id="short-hex"),
        pytest.param("v1:AAAA\n", "at least 32", id="short-versioned"),
        pytest.param("\n", "no key", id="empty"),
    ],
)
def test_weak_or_missing_keys_are_refused(text: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        parse_pseudonym_keys(text)
