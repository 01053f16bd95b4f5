"""A TEST DOUBLE of OPA's REST Data API, backed by the embedded engine. It is not OPA.

No OPA binary can be installed on our machines, so the OPA engine's leg of the decision table runs
against this small server over real loopback HTTP. It speaks the part of OPA's API the broker uses:
``POST /v1/data/sharing/decision[?provenance]`` with ``{"input": ...}`` -> ``{"result": ...}`` (no
``result`` when undefined) plus ``provenance.bundles.<name>.revision``, and ``GET /health``
(``?bundles``: 500 until its bundles are activated). For ``broker policy push`` it also takes
``PUT /v1/policies/{id}`` (Rego text; 200 ``{}``, 400 when it is not a module) and
``PUT /v1/data/{path}`` (a JSON document; 204), as OPA's REST API does, and keeps what it got.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from broker.policy.embedded import EmbeddedEngine


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected in the timeout test


class OpaRestDouble:
    def __init__(self, engine: EmbeddedEngine, bundle_name: str = "broker") -> None:
        self.engine = engine
        self.bundle_name = bundle_name
        self.fail_with: int | None = None
        self.delay_seconds = 0.0
        self.reported_revision: str | None = None
        """The revision it reports, when not its engine's (an OPA that stopped fetching)."""
        self.bundles_activated = True
        self.policies: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.requests = 0
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                double.requests += 1
                url = urlsplit(self.path)
                if url.path == "/health":
                    if "bundles" in url.query and not double.bundles_activated:
                        self._send(500, {"error": "not all bundles have been activated"})
                        return
                    self._send(200, {})
                else:
                    self._send(404, {"code": "resource_not_found"})

            def do_PUT(self) -> None:
                double.requests += 1
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if url.path.startswith("/v1/policies/"):
                    text = raw.decode("utf-8")
                    code = [line for line in text.splitlines() if line.strip() and line[0] != "#"]
                    if not code or not code[0].startswith("package "):
                        self._send(400, {"code": "invalid_parameter", "message": "error(s)"})
                        return
                    double.policies[url.path.removeprefix("/v1/policies/")] = text
                    self._send(200, {})
                elif url.path.startswith("/v1/data/"):
                    double.data[url.path.removeprefix("/v1/data/")] = json.loads(raw)
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(404, {"code": "resource_not_found"})

            def do_POST(self) -> None:
                double.requests += 1
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if double.delay_seconds:
                    threading.Event().wait(double.delay_seconds)
                if double.fail_with is not None:
                    self._send(double.fail_with, {"code": "internal_error"})
                    return
                if url.path != "/v1/data/sharing/decision":
                    self._send(200, {})  # OPA: an undefined document has no result
                    return
                answer: dict[str, Any] = {}
                result = double.engine.evaluate(body.get("input", {}))
                if result is not None:
                    answer["result"] = result
                if "provenance" in url.query:
                    answer["provenance"] = {
                        "version": "test-double",
                        "bundles": {
                            double.bundle_name: {
                                "revision": double.reported_revision or double.engine.revision
                            }
                        },
                    }
                self._send(200, answer)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OpaRestDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
