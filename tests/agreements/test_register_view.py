"""The register entry's optional review date, and the next review shown for a dataset."""

from __future__ import annotations

import datetime as dt

from broker.agreements.authoring import read_document
from broker.agreements.register import DatasetEntry
from broker.agreements.register_view import NOT_RECORDED, next_review
from tests.agreements.conftest import EXAMPLES


def _entry() -> DatasetEntry:
    doc = read_document(EXAMPLES / "register" / "ccc.child-protection.yaml")
    assert isinstance(doc, DatasetEntry)
    return doc


def test_an_entry_without_a_review_date_keeps_its_digest() -> None:
    entry = _entry()
    assert "review_by" not in entry.content()
    dated = entry.model_copy(update={"review_by": dt.date(2027, 1, 31)})
    dated = DatasetEntry.model_validate(dated.model_dump())
    assert dated.content()["review_by"] == "2027-01-31"
    assert dated.digest() != entry.digest()


def test_next_review_from_the_entry_else_not_recorded() -> None:
    entry = DatasetEntry.model_validate({**_entry().model_dump(), "review_by": "2027-01-31"})
    before = next_review(entry, [], dt.date(2027, 1, 31))
    assert before == {"date": "2027-01-31", "source": "register entry", "overdue": False}
    assert next_review(entry, [], dt.date(2027, 2, 1))["overdue"] is True
    assert next_review(_entry(), [], dt.date(2027, 2, 1)) == {
        "date": None,
        "source": NOT_RECORDED,
        "overdue": False,
    }
