"""Bad files never crash the loader: each is reported and counts for nothing (fail closed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.agreements.loader import signature_path
from broker.agreements.parsing import parse_document
from tests.agreements.conftest import EXAMPLES, Loader, status_of

SAFEGUARDING = "ISA-SAFEGUARDING-CHILDREN"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"\xff\xfe\x00binary", "cannot read", id="not-utf8"),
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(b"- just\n- a list\n", "must be a mapping", id="list"),
        pytest.param(b"kind: treaty\n", "kind must be one of", id="wrong-kind"),
        pytest.param(b"kind: agreement\nid: [unclosed\n", "not valid YAML", id="bad-yaml"),
        pytest.param(None, "expected kind: agreement", id="dataset-in-isa"),
    ],
)
def test_unreadable_agreement_files_are_invalid(
    root: Path, load: Loader, content: bytes | None, reason: str
) -> None:
    if content is None:
        content = (root / "register" / "ccc.council-tax.yaml").read_bytes()
    (root / "isa" / "ISA-ZZZ.yaml").write_bytes(content)
    result = load()
    [bad] = [a for a in result.agreements if a.status.file.endswith("ISA-ZZZ.yaml")]
    assert bad.status.status == "invalid"
    assert reason in " ".join(bad.status.reasons)
    assert status_of(result, SAFEGUARDING)[0] == "active"  # the others are unaffected


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"signatures": 3}', id="not-a-list"),
        pytest.param('{"signatures": [{"party": "R9Z"}]}', id="missing-jws"),
        pytest.param(
            '{"signatures": [{"party": "R9Z", "jws": "a..b"}, {"party": "R9Z", "jws": "a..b"}]}',
            id="two-for-one-party",
        ),
    ],
)
def test_malformed_signature_files_make_the_agreement_invalid(
    root: Path, load: Loader, content: str
) -> None:
    signature_path(root / "isa" / f"{SAFEGUARDING}.yaml").write_text(content)
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert "sig.json" in reasons


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_signature_file_never_verify(root: Path, load: Loader, blob: bytes) -> None:
    signature_path(root / "isa" / f"{SAFEGUARDING}.yaml").write_bytes(blob)
    assert status_of(load(), SAFEGUARDING)[0] in ("invalid", "draft")


ISA_TEXT = (EXAMPLES / "isa" / f"{SAFEGUARDING}.yaml").read_text()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    position=st.integers(min_value=0, max_value=len(ISA_TEXT) - 1),
    replacement=st.characters(min_codepoint=32, max_codepoint=126),
)
def test_no_edit_of_the_text_is_active_unless_the_meaning_is_unchanged(
    root: Path, load: Loader, position: int, replacement: str
) -> None:
    original = parse_document(ISA_TEXT, "original.yaml").digest()
    (root / "isa" / f"{SAFEGUARDING}.yaml").write_text(
        ISA_TEXT[:position] + replacement + ISA_TEXT[position + 1 :]
    )
    [item] = [a for a in load().agreements if a.status.file.endswith(f"{SAFEGUARDING}.yaml")]
    if item.status.status == "active":
        assert item.status.digest == original  # only comments, quoting or spacing changed
