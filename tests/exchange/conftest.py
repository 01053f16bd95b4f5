"""A demo broker (parties, clients, agreements) wired to the demo sources, once per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from demo.identity import register_demo_identity_provider
from demo.notify import register_demo_webhook
from tests.support import LiveBroker, live_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, demo_sources: Any) -> Iterator[LiveBroker]:
    tmp = tmp_path_factory.mktemp("exchange")
    with live_broker(
        tmp,
        f"sqlite:///{tmp / 'broker.db'}",
        demo=True,
        bindings=demo_sources.bindings,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
        customise=lambda services: register_demo_webhook(
            services.notifications.webhooks,
            demo_sources.webhook_receiver.url,
            demo_sources.webhook_receiver.secret,
        ),
    ) as live:
        yield live


@pytest.fixture(scope="module")
def hospital_idp(broker: LiveBroker) -> Iterator[None]:
    """The demo hospital's identity provider registered, for the tests of one module."""
    register_demo_identity_provider(broker.services.identity.store)
    yield
    broker.services.identity.store.remove("R9Z", actor="test")
