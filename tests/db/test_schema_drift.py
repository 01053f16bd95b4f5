"""The migrations and the table definitions (SQLModel models and Core tables on one MetaData)
describe the same schema: Alembic's autogenerate comparison finds nothing to change."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from broker.db.migrate import upgrade
from tests.db.schema import all_metadata


def _diffs(engine: Engine, metadata: MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_a_migrated_database_matches_the_table_definitions(engine: Engine) -> None:
    upgrade(engine)
    assert _diffs(engine, all_metadata()) == []


def test_the_comparison_sees_a_changed_model_column(engine: Engine) -> None:
    """The check above can fail: a column whose length differs from the migration is reported."""
    upgrade(engine)
    metadata = MetaData(naming_convention=all_metadata().naming_convention)
    for table in all_metadata().tables.values():
        copy = table.to_metadata(metadata)
        if copy.name == "parties":
            copy.c.name.type.length = 301  # type: ignore[attr-defined]
            copy.c.ods_code.nullable = False
    diffs = _diffs(engine, metadata)
    kinds = {d[0][0] if isinstance(d, list) else d[0] for d in diffs}
    assert kinds == {"modify_type", "modify_nullable"}, diffs


@pytest.mark.parametrize("table", ["webhooks", "consents"])
def test_a_model_missing_from_the_metadata_is_a_difference(engine: Engine, table: str) -> None:
    upgrade(engine)
    metadata = MetaData(naming_convention=all_metadata().naming_convention)
    for t in all_metadata().tables.values():
        if t.name != table:
            t.to_metadata(metadata)
    assert [d for d in _diffs(engine, metadata) if d[0] == "remove_table"]
