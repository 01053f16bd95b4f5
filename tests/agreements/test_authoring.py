"""Signing and revoking files: who may sign what, and refusals before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.agreements.authoring import infer_root, sign_file
from broker.agreements.errors import DemoKeyRefusedError, DocumentInvalidError, NotASignatoryError
from broker.agreements.loader import read_signatures, signature_path
from tests.agreements.conftest import KNOWN_PARTIES, demo_key


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        pytest.param("isa/ISA-A.yaml", ".", id="isa"),
        pytest.param("register/x.yaml", ".", id="register"),
        pytest.param("revocations/r.yaml", ".", id="revocations"),
        pytest.param("elsewhere/ISA-A.yaml", "DEFAULT", id="elsewhere"),
    ],
)
def test_infer_root(tmp_path: Path, relative: str, expected: str) -> None:
    default = Path("DEFAULT")
    want = default if expected == "DEFAULT" else tmp_path
    assert infer_root(tmp_path / relative, default) == want


def test_only_the_owner_signs_a_dataset_entry(root: Path) -> None:
    entry = root / "register" / "r9z.discharge-summary.yaml"
    with pytest.raises(NotASignatoryError, match="'calderbridge-city-council' cannot sign"):
        sign_file(
            entry,
            "calderbridge-city-council",
            demo_key("calderbridge-city-council"),
            root=root,
            known_parties=KNOWN_PARTIES,
            demo=True,
        )


def test_an_invalid_document_is_not_signed(root: Path) -> None:
    path = root / "isa" / "ISA-SPD-FRAUD.yaml"
    path.write_text(path.read_text().replace("article_6: e", "article_6: f"))
    before = signature_path(path).read_text()
    with pytest.raises(DocumentInvalidError, match="fix it before signing") as caught:
        sign_file(
            path,
            "calderbridge-city-council",
            demo_key("calderbridge-city-council"),
            root=root,
            known_parties=KNOWN_PARTIES,
            demo=True,
        )
    assert any("Article 6(1)(f)" in str(p) for p in caught.value.problems)
    assert signature_path(path).read_text() == before


def test_demo_key_refused_for_signing_outside_demo(root: Path) -> None:
    path = root / "isa" / "ISA-SPD-FRAUD.yaml"
    with pytest.raises(DemoKeyRefusedError):
        sign_file(
            path,
            "calderbridge-city-council",
            demo_key("calderbridge-city-council"),
            root=root,
            known_parties=KNOWN_PARTIES,
            demo=False,
        )


def test_signing_replaces_only_that_partys_signature(root: Path) -> None:
    path = root / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
    before = read_signatures(path)
    sign_file(path, "R9Z", demo_key("R9Z"), root=root, known_parties=KNOWN_PARTIES, demo=True)
    after = read_signatures(path)
    assert after == before  # Ed25519 is deterministic: the same content signs the same
    assert sorted(after) == [
        "R9Z",
        "Y99901",
        "Y99902",
        "calderbridge-city-council",
        "west-calder-police",
    ]
