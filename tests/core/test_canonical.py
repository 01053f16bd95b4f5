"""RFC 8785 canonical bytes: the published test vectors, and the digest of agreement documents
under reformatting (unchanged) and changes of meaning (changed)."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.agreements.model import Agreement
from broker.agreements.parsing import DocumentError, parse_document
from broker.core.canonical import (
    CanonicalisationError,
    canonical_bytes,
    digest,
    digest_bytes,
    is_digest,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "agreements" / "examples"

# Input/output pairs of cyberphone/json-canonicalization testdata (the RFC author's test suite).
CYBERPHONE = [
    pytest.param(
        '{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},\n  "10": { },\n  "": "empty",\n'
        '  "a": { },\n  "111": [ { } ],\n  "A": { }\n}',
        '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}',
        id="structures",
    ),
    pytest.param(
        '{\n  "numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],\n'
        '  "escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n'
        '  "literals": [null, true, false]\n}',
        '{"escaping":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/","literals":[null,true,false],'
        '"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}',
        id="values",
    ),
    pytest.param(
        '{\n  "\\u20ac": "Euro Sign",\n  "1": "One",\n  "\\u0080": "Control\\u007f",\n'
        '  "\\ud83d\\ude02": "Smiley",\n  "\\u00f6": "Latin Small Letter O With Diaeresis",\n'
        '  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n  "</script>": "Browser Challenge"\n}\n',
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
        id="weird",
    ),
    pytest.param(
        '{\n  "peach": "This sorting order",\n'
        '  "p\u00e9ch\u00e9": "is wrong according to French",\n'
        '  "p\u00eache": "but canonicalization MUST",\n  "sin":   "ingnore locale"\n}\n',
        '{"peach":"This sorting order","p\u00e9ch\u00e9":"is wrong according to French",'
        '"p\u00eache":"but canonicalization MUST","sin":"ingnore locale"}',
        id="french",
    ),
    pytest.param(
        '{\n  "Unnormalized Unicode":"\\u1e0d\\u0307"\n}\n',
        '{"Unnormalized Unicode":"\u1e0d\u0307"}',
        id="unicode-not-normalised",
    ),
]


@pytest.mark.parametrize(("source", "expected"), CYBERPHONE)
def test_cyberphone_vectors(source: str, expected: str) -> None:
    assert canonical_bytes(json.loads(source)) == expected.encode("utf-8")


# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisation.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B, ids=[b for b, _ in APPENDIX_B])
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_bytes(value) == expected.encode("ascii")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
        pytest.param({1: "x"}, id="non-string-key"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param(2**60, id="integer-beyond-ieee-754"),
    ],
)
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalisationError, match="cannot canonicalise"):
        canonical_bytes(value)


def test_digest_format() -> None:
    assert digest_bytes(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1})
    assert is_digest(digest([]))
    assert not is_digest("sha256:ABC")


# --- agreement documents: YAML style never matters, meaning always does ---------------------

ISA_PATH = EXAMPLES / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
ISA_TEXT = ISA_PATH.read_text()
ISA = parse_document(ISA_TEXT, str(ISA_PATH))
assert isinstance(ISA, Agreement)
# Plain data as YAML would hold it (dates as dates, every key present as written).
ISA_DATA: dict[str, Any] = yaml.safe_load(ISA_TEXT)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]  # list order is meaning: keep it
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    flow_style=st.sampled_from([None, True, False]),
    indent=st.integers(min_value=2, max_value=6),
    width=st.integers(min_value=40, max_value=200),
    explicit=st.booleans(),
    quote=st.sampled_from([None, "'", '"']),
)
def test_reformatting_and_reordering_yaml_never_changes_the_digest(
    seed: int, flow_style: bool | None, indent: int, width: int, explicit: bool, quote: str | None
) -> None:
    data = _shuffled(ISA_DATA, random.Random(seed))
    text = yaml.safe_dump(
        data,
        sort_keys=False,
        default_flow_style=flow_style,
        indent=indent,
        width=width,
        explicit_start=explicit,
        default_style=quote,
        allow_unicode=bool(seed % 2),
    )
    reparsed = parse_document(text, "reformatted.yaml")
    assert reparsed.digest() == ISA.digest()


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


CONTENT = ISA.content()
LEAVES = _leaves(CONTENT)


def _changed(value: Any) -> Any:
    if value is None:
        return "now set"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    assert isinstance(value, str)
    return value + "x" if not value[-1:].isdigit() else value[:-1] + str((int(value[-1]) + 1) % 10)


@settings(max_examples=60, deadline=None)
@given(leaf=st.sampled_from(LEAVES))
def test_any_change_of_meaning_changes_the_digest(leaf: tuple[Any, ...]) -> None:
    data = json.loads(json.dumps(CONTENT))
    target = data
    for part in leaf[:-1]:
        target = target[part]
    target[leaf[-1]] = _changed(target[leaf[-1]])
    try:
        changed = parse_document(yaml.safe_dump(data), "changed.yaml")
    except DocumentError:
        return  # the change made the document invalid: refused, which is also fine
    assert changed.digest() != ISA.digest(), leaf
