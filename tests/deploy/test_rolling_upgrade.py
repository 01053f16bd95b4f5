"""During a rolling upgrade the newer version migrates first (``broker db upgrade``) and older
instances keep serving on the newer schema: they neither fail to start (no downgrade, no
"unknown revision") nor report not ready; a database *behind* this version still makes it not
ready (deploy/README.md, "Upgrades")."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from broker.container import _database_ready
from broker.db import migrate
from broker.db.engine import build_engine


def _engine(tmp_path: Path) -> sa.Engine:
    return build_engine(f"sqlite:///{tmp_path / 'broker.db'}", pooled=False)


def _set_revision(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_an_older_version_serves_on_a_schema_a_newer_one_migrated(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    migrate.upgrade(engine)
    assert not migrate.is_ahead(engine)
    _set_revision(engine, "9999")  # what a newer version's migration leaves behind
    assert migrate.is_ahead(engine)
    migrate.upgrade(engine)  # an older instance (re)starting: nothing to do, no error
    assert migrate.current_revision(engine) == "9999"
    assert _database_ready(engine)() is None
    engine.dispose()


def test_a_database_behind_this_version_is_not_ready(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    config = migrate._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert not migrate.is_ahead(engine)
    assert _database_ready(engine)() == "database schema is not at the newest migration"
    migrate.upgrade(engine)
    assert _database_ready(engine)() is None
    engine.dispose()
