"""The pseudonym key file: the hex secret ``secrets init`` once wrote, or the versioned format."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.core.errors import ConfigurationError
from broker.core.pseudonym import format_key, generate_key, parse_pseudonym_keys
from broker.notify.sealing import load_sealer
from broker.pseudonym_keys import load_pseudonym_keys
from broker.secrets_check import check_secrets, init_secrets
from broker.settings import Settings


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


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("cd" * 32 + "\n", id="older-hex"),
        pytest.param(f"# keys\n{format_key(generate_key('v1'))}\n", id="versioned"),
    ],
)
def test_every_user_of_the_key_file_gets_the_same_keyring(tmp_path: Path, text: str) -> None:
    """The pipeline, the subjects' services and the console load the file with
    ``load_pseudonym_keys``; the sealer and the start-up check must agree with it."""
    path = tmp_path / "pseudonym.key"
    path.write_text(text, encoding="utf-8")
    ring = load_pseudonym_keys(path)
    assert ring == parse_pseudonym_keys(text)
    assert load_sealer(path).keyring == ring
    settings = Settings(keys_dir=tmp_path / "keys", pseudonym_key_file=path)
    created = init_secrets(settings)  # the other secrets; the key file is left as it is
    assert not any("pseudonym" in c for c in created)
    check_secrets(settings)
    assert path.read_text(encoding="utf-8") == text
