"""Who looked at audit data: every read of the log is itself recorded.

Routes that return audit data (exchange searches, single entries, access reports, exports) call
:meth:`AuditReadLog.record` before answering; if the record cannot be written the read fails
(fail closed: no unrecorded look at the log).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from broker.core.errors import Unavailable
from broker.db.tables import audit_reads


@dataclass(frozen=True)
class AuditRead:
    at: datetime
    client_id: str
    party_id: str
    resource: str
    query: dict[str, Any]


class AuditReadLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self, client_id: str, party_id: str, resource: str, query: Mapping[str, Any]
    ) -> None:
        """Record one read. ``query`` must already be free of personal identifiers
        (pseudonymise subject identifiers before calling). Raises Unavailable."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(audit_reads).values(
                        at=datetime.now(UTC),
                        client_id=client_id,
                        party_id=party_id,
                        resource=resource,
                        query=json.dumps(dict(query), sort_keys=True, default=str),
                    )
                )
        except SQLAlchemyError as e:
            raise Unavailable("the read of audit data could not be recorded") from e

    def recent(self, limit: int = 100) -> list[AuditRead]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(audit_reads).order_by(audit_reads.c.id.desc()).limit(limit)
            ).all()
        return [
            AuditRead(r.at, r.client_id, r.party_id, r.resource, json.loads(r.query)) for r in rows
        ]
