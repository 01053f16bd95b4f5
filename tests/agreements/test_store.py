"""The trust store, recorded revocations and versions in the database (SQLite, and PostgreSQL
when BROKER_TEST_DATABASE_URL is set), and the logged import of party keys."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text

from broker.agreements.authoring import revoke
from broker.agreements.errors import (
    DemoKeyRefusedError,
    KeyConflictError,
    UnknownPartyError,
    UnusableKeyError,
)
from broker.agreements.loader import load_directory, signature_path
from broker.agreements.status import AgreementState, RevocationRecord, VersionSeen
from broker.agreements.store import MemoryAgreementStore, SqlAgreementStore, import_party_keys
from broker.cli.keys import generate_key_pair
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.db.tables import admin_events, parties
from demo.parties import DEMO_PARTIES
from tests.agreements.conftest import EXAMPLES, KNOWN_PARTIES, NOW, demo_key, status_of


def _add_parties(engine: Engine) -> None:
    with engine.begin() as conn:
        for p in DEMO_PARTIES:
            conn.execute(
                insert(parties).values(
                    id=p.id, name=p.name, kind=p.kind, ods_code=p.ods_code, created_at=NOW
                )
            )


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str | None]:
    url = os.environ.get("BROKER_TEST_DATABASE_URL")
    if not url:
        yield None
        return
    schema = f"agreements_{uuid.uuid4().hex[:10]}"
    admin = build_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str | None
) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = build_engine("sqlite:///" + str(tmp_path / "t.db"))
    else:
        url = os.environ.get("BROKER_TEST_DATABASE_URL")
        if not url or pg_schema is None:
            pytest.skip("BROKER_TEST_DATABASE_URL is not set (PostgreSQL tests)")
        # A fresh schema per test inside the session schema's database: reset its tables.
        from sqlalchemy import create_engine

        from broker.db.engine import normalise_url

        eng = create_engine(
            normalise_url(url), connect_args={"options": f"-csearch_path={pg_schema}"}
        )
        with eng.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{pg_schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{pg_schema}"'))
    upgrade(eng)
    _add_parties(eng)
    yield eng
    eng.dispose()


def _keys_dir(tmp_path: Path, *party_ids: str) -> Path:
    out = tmp_path / "keys"
    for party in party_ids:
        generate_key_pair(party, tmp_path / "private")
        out.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "private" / f"{party}.jwks.json", out)
    return out


def test_import_party_keys_writes_trust_store_and_admin_events(
    engine: Engine, tmp_path: Path
) -> None:
    keys = _keys_dir(tmp_path, "R9Z", "west-calder-police")
    added = import_party_keys(engine, keys, "admin@ccc", known_parties=KNOWN_PARTIES, now=NOW)
    assert sorted((k.party_id, k.outcome) for k in added) == [
        ("R9Z", "added"),
        ("west-calder-police", "added"),
    ]
    snapshot = SqlAgreementStore(engine).trust_snapshot()
    assert {k.party_id for k in snapshot.keys.values()} == {"R9Z", "west-calder-police"}
    with engine.connect() as conn:
        events = conn.execute(select(admin_events).order_by(admin_events.c.target)).all()
    assert [(e.actor, e.action, e.target) for e in events] == [
        ("admin@ccc", "parties.import-key", "R9Z"),
        ("admin@ccc", "parties.import-key", "west-calder-police"),
    ]
    assert events[0].details["kid"] in snapshot.keys
    again = import_party_keys(engine, keys, "admin@ccc", known_parties=KNOWN_PARTIES, now=NOW)
    assert {k.outcome for k in again} == {"unchanged"}
    with engine.connect() as conn:
        assert len(conn.execute(select(admin_events)).all()) == 2


def test_a_key_cannot_move_to_another_party(engine: Engine, tmp_path: Path) -> None:
    keys = _keys_dir(tmp_path, "R9Z")
    import_party_keys(engine, keys, "admin", now=NOW)
    (keys / "R9Z.jwks.json").rename(keys / "Y99901.jwks.json")
    with pytest.raises(KeyConflictError, match="already trusted for 'R9Z'"):
        import_party_keys(engine, keys, "admin", now=NOW)


def test_unknown_party_is_refused(engine: Engine, tmp_path: Path) -> None:
    keys = _keys_dir(tmp_path, "nobody")
    with pytest.raises(UnknownPartyError, match="unknown party 'nobody'"):
        import_party_keys(engine, keys, "admin", known_parties=KNOWN_PARTIES, now=NOW)


def test_private_key_material_is_refused(engine: Engine, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    jwk = demo_key("R9Z").as_dict(private=True)
    (keys / "R9Z.jwks.json").write_text(json.dumps({"keys": [jwk]}))
    with pytest.raises(UnusableKeyError, match="private key material"):
        import_party_keys(engine, keys, "admin", now=NOW)


def test_demo_keys_are_refused_outside_demo_mode_wherever_copied(
    engine: Engine, tmp_path: Path
) -> None:
    copied = tmp_path / "innocent-looking"
    shutil.copytree(EXAMPLES / "keys", copied)
    with pytest.raises(DemoKeyRefusedError, match="demo keys are refused outside demo mode"):
        import_party_keys(engine, copied, "admin", now=NOW)
    with engine.connect() as conn:
        assert conn.execute(select(admin_events)).all() == []
    assert len(import_party_keys(engine, copied, "admin", demo=True, now=NOW)) == len(DEMO_PARTIES)


def test_versions_only_go_up_and_keep_the_first_digest(engine: Engine) -> None:
    store = SqlAgreementStore(engine)
    store.record_version(VersionSeen("ISA-A", 2, "sha256:" + "2" * 64), NOW)
    store.record_version(VersionSeen("ISA-A", 1, "sha256:" + "1" * 64), NOW)
    store.record_version(VersionSeen("ISA-A", 2, "sha256:" + "f" * 64), NOW)
    assert store.highest_versions()["ISA-A"] == VersionSeen("ISA-A", 2, "sha256:" + "2" * 64)
    store.record_version(VersionSeen("ISA-A", 3, "sha256:" + "3" * 64), NOW)
    assert store.highest_versions()["ISA-A"].version == 3


def test_revocations_are_recorded_once(engine: Engine) -> None:
    store = SqlAgreementStore(engine)
    record = RevocationRecord("ISA-A", 1, "R9Z", "ended", NOW, "sha256:" + "a" * 64)
    assert store.record_revocation(record, {"kind": "revocation"}, "h..s", NOW)
    assert not store.record_revocation(record, {"kind": "revocation"}, "h..s", NOW)
    assert store.revocations() == [record]


def test_recorded_revocation_survives_file_deletion_and_restart(
    engine: Engine, tmp_path: Path
) -> None:
    root = tmp_path / "agreements"
    shutil.copytree(EXAMPLES, root)
    import_party_keys(engine, root / "keys", "admin", demo=True, now=NOW)

    def load() -> str:
        store = SqlAgreementStore(engine)  # a fresh store object each time: state is in the DB
        result = load_directory(root, store, known_parties=KNOWN_PARTIES, now=NOW, demo=True)
        return status_of(result, "ISA-HOSPITAL-DISCHARGE")[0]

    assert load() == "active"
    path = revoke(
        root, "ISA-HOSPITAL-DISCHARGE", "R9Z", demo_key("R9Z"), "Service ended", now=NOW, demo=True
    )
    assert load() == "revoked"
    path.unlink()
    signature_path(path).unlink()
    assert load() == "revoked"


def test_sql_timestamps_come_back_aware(engine: Engine) -> None:
    store = SqlAgreementStore(engine)
    when = dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)
    store.record_revocation(
        RevocationRecord("ISA-B", 1, "R9Z", "r", when, "sha256:" + "b" * 64), {}, "h..s", NOW
    )
    [back] = store.revocations()
    assert back.revoked_at == when


def test_migration_matches_the_table_definitions(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import broker.agreements.tables as ours
    from broker.db.tables import metadata

    names = {ours.party_keys.name, ours.agreement_revocations.name, ours.agreement_versions.name}
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)

    def table_of(diff: object) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item if isinstance(item, tuple) else ():
            name = getattr(part, "name", None) if not isinstance(part, str) else None
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None) in names:
                return str(table.name)
            if name in names:
                return str(name)
            if isinstance(part, str) and part in names:
                return part
        return None

    assert [d for d in diffs if table_of(d)] == []


def test_unknown_party_is_refused_from_the_parties_table_by_default(
    engine: Engine, tmp_path: Path
) -> None:
    keys = _keys_dir(tmp_path, "Y99999")
    with pytest.raises(UnknownPartyError, match="unknown party 'Y99999'"):
        import_party_keys(engine, keys, "admin", now=NOW)


def test_database_failures_are_translated(tmp_path: Path) -> None:
    from broker.agreements.errors import AgreementStoreUnavailableError
    from broker.core.errors import Unavailable

    bare = build_engine("sqlite:///" + str(tmp_path / "not-migrated.db"))
    store = SqlAgreementStore(bare)
    with pytest.raises(AgreementStoreUnavailableError, match="run the migrations") as caught:
        store.trust_snapshot()
    assert isinstance(caught.value, Unavailable)
    with pytest.raises(AgreementStoreUnavailableError):
        store.record_version(VersionSeen("ISA-A", 1, "sha256:" + "1" * 64), NOW)
    with pytest.raises(AgreementStoreUnavailableError):
        import_party_keys(bare, _keys_dir(tmp_path, "R9Z"), "admin", now=NOW)


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_the_state_names_recorded_revocations_and_highest_versions(
    engine: Engine, kind: str
) -> None:
    store = SqlAgreementStore(engine) if kind == "sql" else MemoryAgreementStore()
    assert store.state() == AgreementState()
    store.record_version(VersionSeen("ISA-A", 1, "d1"), NOW)
    store.record_version(VersionSeen("ISA-A", 2, "d2"), NOW)
    record = RevocationRecord("ISA-A", 2, "R9Z", "ends", NOW, "rev-digest")
    store.record_revocation(record, {"kind": "revocation"}, "sig", NOW)
    assert store.state() == AgreementState(frozenset({"rev-digest"}), frozenset({("ISA-A", 2)}))
    assert store.state() == AgreementState.of(store.revocations(), store.highest_versions())


def test_instances_importing_the_same_keys_at_once_all_start(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances started together import the same files: the one whose insert loses the
    race (a unique violation) reads the keys again, finds them trusted, and carries on."""
    from sqlalchemy.exc import IntegrityError

    from broker.agreements import store

    keys = _keys_dir(tmp_path, "R9Z")
    real = store._import
    calls = []

    def racing(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:  # the other instance commits first; this insert then fails
            real(*args, **kwargs)  # type: ignore[arg-type]
            raise IntegrityError("INSERT INTO party_keys", {}, Exception("duplicate key"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_import", racing)
    again = import_party_keys(engine, keys, "demo-bootstrap", known_parties=KNOWN_PARTIES, now=NOW)
    assert [k.outcome for k in again] == ["unchanged"]
    assert len(calls) == 2
    with engine.connect() as conn:
        assert len(conn.execute(select(admin_events)).all()) == 1  # imported once
