from __future__ import annotations

import pytest

from broker.audit.errors import AuditUnavailableError
from broker.audit.log import AuditLog
from broker.audit.memory import AuditSink, MemoryAuditLog
from tests.audit.conftest import make_entry


def test_memory_log_numbers_entries_and_can_fail() -> None:
    sink: AuditSink = MemoryAuditLog()
    assert sink.append(make_entry(0)).leaf_index == 0
    assert sink.append(make_entry(1)).leaf_index == 1
    memory = sink
    assert isinstance(memory, MemoryAuditLog)
    memory.failing = True
    with pytest.raises(AuditUnavailableError, match="set to fail"):
        sink.append(make_entry(2))
    assert len(memory.entries) == 2


def test_the_sql_log_is_an_audit_sink(log: AuditLog) -> None:
    sink: AuditSink = log
    assert sink.append(make_entry(0)).leaf_index == 0
