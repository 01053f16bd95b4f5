from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from broker.core.errors import ConfigurationError, InvalidInput
from broker.core.pseudonym import (
    PseudonymKey,
    normalise_identifier,
    parse_key_file,
    pseudonymise,
)
from broker.pseudonym_keys import add_key_version, generate_key_file, load_pseudonym_keys

KEY = PseudonymKey("v1", b"k" * 32)


@pytest.mark.parametrize(
    ("id_type", "value", "expected"),
    [
        ("nhs_number", "999 000 0018", ("nhs_number", "9990000018")),
        ("NHS-Number", " 999-000-0018 ", ("nhs_number", "9990000018")),
        ("email", " Jo.Bloggs@Example.org ", ("email", "jo.bloggs@example.org")),
        ("uprn", "100070000001", ("uprn", "100070000001")),
    ],
    ids=["spaced-nhs", "hyphenated-type-and-value", "email-casefolded", "uprn"],
)
def test_identifiers_normalise(id_type: str, value: str, expected: tuple[str, str]) -> None:
    assert normalise_identifier(id_type, value) == expected


@pytest.mark.parametrize(
    ("id_type", "value"),
    [("nhs_number", "99900000AB"), ("", "1"), ("email", "  ")],
    ids=["letters-in-nhs", "no-type", "blank-value"],
)
def test_bad_identifiers_are_refused(id_type: str, value: str) -> None:
    with pytest.raises(InvalidInput, match="identifier"):
        normalise_identifier(id_type, value)


def test_pseudonym_is_the_hmac_of_type_and_value() -> None:
    want = hmac.new(b"k" * 32, b"nhs_number\x009990000018", hashlib.sha256).hexdigest()
    assert pseudonymise(KEY, "nhs_number", "999 000 0018").value == want
    assert pseudonymise(KEY, "nhs_number", "9990000018").key_version == "v1"


def test_type_is_part_of_the_pseudonym() -> None:
    assert pseudonymise(KEY, "nhs_number", "1").value != pseudonymise(KEY, "uprn", "1").value


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        PseudonymKey("v1", b"short")


def test_key_repr_hides_the_secret() -> None:
    assert "kkkk" not in repr(KEY)


def test_key_file_generate_load_and_rotate(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pseudonym.key"
    ring = generate_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_pseudonym_keys(path)
    assert loaded.current.secret == ring.current.secret
    with pytest.raises(ConfigurationError, match="exists already"):
        generate_key_file(path)
    rotated = add_key_version(path, "v2")
    assert load_pseudonym_keys(path).current.version == "v2"
    both = rotated.all_pseudonyms("nhs_number", "9990000018")
    assert [p.key_version for p in both] == ["v1", "v2"]
    assert both[0] == loaded.pseudonymise("nhs_number", "9990000018")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("v1 no colon", "VERSION:KEY"),
        ("v1:" + "a" * 10, "at least 32"),
        ("v1:" + "a" * 43 + "\nv1:" + "b" * 43, "repeats"),
        ("bad version!:" + "a" * 43, "not valid"),
    ],
    ids=["empty", "no-separator", "short", "repeated-version", "bad-version"],
)
def test_bad_key_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_key_file(text)


def test_missing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_pseudonym_keys(tmp_path / "absent.key")
