"""The exchange ports are plain interfaces: importing them loads no database or HTTP library."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("sqlalchemy", "sqlmodel", "aiohttp", "httpx", "fastapi", "starlette")


def test_the_exchange_ports_import_no_sql_or_http_library() -> None:
    code = (
        "import json, sys\n"
        "import broker.exchange.ports\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []
