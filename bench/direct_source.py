"""The "direct" path of the exchange benchmark: the council record without the broker.

    .venv/bin/python -m bench.direct_source --db PATH --port PORT

``ccc.child-protection`` lives in the council's children's social care database, which the
broker reads in process (SQLAlchemy Core, read-only SQLite). A partner without the broker has no
HTTP endpoint to that database, so the closest honest "direct" path is the smallest API a
council would put in front of it: one FastAPI route under the same uvicorn (uvloop, httptools,
no access log) that accepts the same JSON request body, runs the same read-only SQLAlchemy
SELECT of the same columns for the subject in a worker thread, and answers the record as JSON.
It does none of the broker's work: no token, no client check, no policy, no projection, no
audit log. The difference between the two is the broker's overhead.
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import column, create_engine, select, table
from sqlalchemy.pool import QueuePool
from starlette.concurrency import run_in_threadpool

#: The columns behind the fields the benchmark asks for (demo/sources/bindings.yaml).
COLUMNS = {
    "name.family": "family_name",
    "child_protection_plan.status": "cpp_status",
    "child_protection_plan.category": "cpp_category",
}


def build_app(db_path: str) -> FastAPI:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=5)
    source = table(
        "child_protection_summary", column("nhs_number"), *(column(c) for c in COLUMNS.values())
    )
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    def read(nhs_number: str) -> dict[str, Any] | None:
        statement = (
            select(source.c.nhs_number, *(source.c[c] for c in COLUMNS.values()))
            .where(source.c.nhs_number == nhs_number)
            .limit(2)
        )
        with engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(statement)]
        return rows[0] if len(rows) == 1 else None

    @app.post("/child-protection")
    async def child_protection(request: Request) -> JSONResponse:
        body = await request.json()
        row = await run_in_threadpool(read, str(body["subject"]["value"]))
        if row is None:
            raise HTTPException(404)
        return JSONResponse({field: row[col] for field, col in COLUMNS.items()})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True, help="childrens_social_care.db")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.db),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
