"""Property: any change to any byte of any stored column is detected by verify.

Coverage (see docs/audit.md): leaf bytes are hashed into the tree; search columns are compared with
their values re-derived from the leaf; personal values and their salts must open the leaf's salted
commitments (only removing both, on an entry a logged redaction covers, passes); tree nodes, the
head row and checkpoint rows are compared with the recomputed tree and the signed notes. The one
column whose bytes are NOT checkable by the log is ``record_salt`` (the released record is never
stored, so nothing can re-derive its digest); removing it counts as a redaction.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from broker.audit.log import AuditLog, LogSigner
from broker.audit.store import CheckpointPolicy
from broker.audit.verify import verify_log
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from tests.audit.conftest import make_entry

TABLES = {
    "audit_entries": "idx",
    "audit_nodes": "pos",
    "audit_head": "id",
    "audit_checkpoints": "tree_size",
}
#: Changing these bytes cannot be detected by design (see the module docstring).
UNCHECKABLE = {("audit_entries", "record_salt")}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LogSigner]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path_factory.mktemp("template") / "audit.db"
    engine = build_engine(f"sqlite:///{path}")
    upgrade(engine)
    signer = LogSigner("broker.test.example/audit", Ed25519PrivateKey.generate())
    log = AuditLog(engine, signer, policy=CheckpointPolicy(every_entries=4, every_seconds=3600))
    for i in range(13):
        log.append(make_entry(i))
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path, signer


def _cells(engine: Engine) -> list[tuple[str, str, Any, str, Any]]:
    cells = []
    with engine.connect() as conn:
        for table, key in TABLES.items():
            result = conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            columns = list(result.keys())
            for row in result.all():
                for column, value in zip(columns, row, strict=True):
                    if (table, column) not in UNCHECKABLE:
                        cells.append((table, key, row._mapping[key], column, value))
    return cells


def _mutate(value: Any, data: st.DataObject) -> Any:
    if value is None:
        return data.draw(st.sampled_from([b"x" * 16, "x", 1]))
    if data.draw(st.integers(0, 9), label="one-in-ten-to-null") == 0:
        return None
    if isinstance(value, bool | int):
        return value + data.draw(st.sampled_from([-1, 1])) * data.draw(st.integers(1, 1000))
    if isinstance(value, bytes):
        if not value:
            return b"\x00"
        at = data.draw(st.integers(0, len(value) - 1))
        flip = data.draw(st.integers(1, 255))
        return value[:at] + bytes([value[at] ^ flip]) + value[at + 1 :]
    assert isinstance(value, str)
    if not value:
        return "x"
    at = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.characters(min_codepoint=32, max_codepoint=126))
    if replacement == value[at]:
        replacement = "#" if value[at] != "#" else "$"
    return value[:at] + replacement + value[at + 1 :]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_change_to_any_stored_column_is_detected(
    template: tuple[Path, LogSigner], tmp_path: Path, data: st.DataObject
) -> None:
    source, signer = template
    copy = tmp_path / f"copy-{data.draw(st.integers(0, 10**9))}.db"
    shutil.copy(source, copy)
    engine = build_engine(f"sqlite:///{copy}")
    try:
        cells = _cells(engine)
        table, key, key_value, column, value = data.draw(st.sampled_from(cells))
        new = _mutate(value, data)
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"),  # noqa: S608
                    {"v": new, "k": key_value},
                )
        except IntegrityError:
            assume(False)  # the database itself refused the change (NOT NULL, unique key)
        report = verify_log(engine, signer.public_key, origin=signer.origin)
        assert not report.ok, f"undetected: {table}.{column} {value!r} -> {new!r}"
    finally:
        engine.dispose()
        copy.unlink()
