"""One exchange, traced: the project modules it enters are the ones docs/architecture.md lists
(section "One exchange, in the order it runs"), from at most 12 packages.

A profile hook is installed for every thread the broker starts (the server's event loop and the
worker threads of its blocking work). It records a Python function entry only while the traced
request's context is current: a small ASGI layer in front of the application marks the requests
that carry ``X-Trace``, and that mark travels (as a context variable) into every worker-thread
hand-off the request makes. Background jobs (checkpoints, notification delivery, the agreements
watch) run in contexts of their own and so are never recorded, nor are the test client's frames.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from broker.app import create_app
from broker.container import build_services
from demo.notify import register_demo_webhook
from tests.exchange.helpers import post, safeguarding
from tests.support import Clock, LiveBroker, free_port, make_settings, serve_app

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("broker", "adapters")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_PACKAGES = 12
"""``broker.<package>`` (a top-level module such as ``broker.container`` counts as one) and
``adapters``."""

_TRACED: ContextVar[bool] = ContextVar("traced", default=False)
_entered: set[str] = set()


def _hook(frame: FrameType, event: str, arg: Any) -> None:
    if event == "call" and _TRACED.get():
        _entered.add(frame.f_code.co_filename)


class _MarkTraced:
    """Marks the context of a request that carries ``X-Trace`` (outermost, before the broker)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(k == b"x-trace" for k, _ in scope["headers"]):
            _TRACED.set(True)  # the request's own task context: gone with the request
        await self.app(scope, receive, send)


def _module(filename: str) -> str | None:
    try:
        relative = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if relative.parts[0] not in PACKAGES or relative.suffix != ".py":
        return None
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def documented_modules() -> list[str]:
    """The modules listed between the ``exchange-modules`` markers of docs/architecture.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    found = re.search(r"<!-- exchange-modules -->(.*?)<!-- /exchange-modules -->", text, re.S)
    assert found, "docs/architecture.md has no <!-- exchange-modules --> list"
    return re.findall(r"^\s*\d+\.\s+`([\w.]+)`", found.group(1), re.M)


@pytest.fixture(scope="module")
def traced_broker(
    tmp_path_factory: pytest.TempPathFactory, demo_sources: Any
) -> Iterator[LiveBroker]:
    """The demo broker (as tests/exchange/conftest.py starts it), its threads profiled."""
    from demo import bootstrap

    tmp = tmp_path_factory.mktemp("trace")
    port = free_port()
    config = make_settings(
        tmp,
        f"sqlite:///{tmp / 'broker.db'}",
        port=port,
        demo=True,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )
    bootstrap.prepare(config, tmp / "demo-keys")
    clock = Clock()
    services = build_services(config, clock=clock, bindings=demo_sources.bindings)
    register_demo_webhook(
        services.notifications.webhooks,
        demo_sources.webhook_receiver.url,
        demo_sources.webhook_receiver.secret,
    )
    app = create_app(config, services)
    app.add_middleware(_MarkTraced)
    # Every thread started from here on (the server's, its worker threads) runs the hook; it
    # records nothing outside a traced request.
    threading.setprofile(_hook)
    try:
        with serve_app(app, port) as url:
            live = LiveBroker(config, services, url, clock)
            try:
                yield live
            finally:
                live.http.close()
                services.close()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]


def test_one_exchange_enters_the_documented_modules(traced_broker: LiveBroker) -> None:
    warm = post(traced_broker, "r9z-ed-safeguarding", safeguarding())  # token, caches, pools
    assert warm.status_code == 200, warm.text
    _entered.clear()
    sys.setprofile(_hook)  # this thread too (it is never marked: the client is not recorded)
    try:
        response = post(traced_broker, "r9z-ed-safeguarding", safeguarding(), **{"X-Trace": "1"})
    finally:
        sys.setprofile(None)
    assert response.status_code == 200, response.text
    assert response.json()["decision"]["allow"] is True

    entered = {m for m in map(_module, _entered) if m is not None}
    documented = documented_modules()
    assert len(documented) == len(set(documented)), "a module is listed twice"
    packages = {
        m.split(".")[0] if m.startswith("adapters") else ".".join(m.split(".")[:2]) for m in entered
    }
    assert len(packages) <= MAX_PACKAGES, sorted(packages)
    assert entered == set(documented), (
        f"not in docs/architecture.md: {sorted(entered - set(documented))}; "
        f"listed but not entered: {sorted(set(documented) - entered)}"
    )
