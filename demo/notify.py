"""The demo's webhook: the council's children's services system hears of ED checks.

``broker serve --demo`` calls :func:`register_demo_webhook` with the receiver the demo sources
started (``DemoSources.webhook_receiver``): its URL and the secret it verifies with.
"""

from __future__ import annotations

from broker.notify.webhooks import Webhook, WebhookRegistry
from demo.parties import COUNCIL

ACTOR = "demo-bootstrap"


def register_demo_webhook(
    registry: WebhookRegistry, url: str, secret: str, *, party_id: str = COUNCIL
) -> Webhook:
    """(Re)register ``party_id``'s webhook at ``url`` with ``secret`` (the demo receiver's port
    changes on every start, so an earlier registration is replaced). Logged as admin actions."""
    if registry.get(party_id) is not None:
        registry.remove(party_id, actor=ACTOR)
    return registry.add(party_id, url, actor=ACTOR, secret=secret)
