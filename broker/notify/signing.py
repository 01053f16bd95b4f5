"""Signing webhook deliveries so a provider can check they came from the broker (pure).

The scheme is `Standard Webhooks <https://www.standardwebhooks.com/>`_ (v1, symmetric), chosen
because providers can verify it with a few lines of any language, or an off-the-shelf library,
without fetching broker keys:

- each registration has its own secret, ``whsec_`` + base64 of 32 random bytes, made by the
  broker when an administrator registers the webhook and handed to the provider out of band;
- every request carries ``webhook-id`` (the notification id: the same on every retry, so the
  provider can drop duplicates), ``webhook-timestamp`` (Unix seconds of this attempt) and
  ``webhook-signature: v1,<base64 HMAC-SHA256(secret, id + "." + timestamp + "." + body)>``;
- the provider recomputes the MAC over the exact body bytes, compares in constant time, and
  refuses timestamps more than five minutes from its clock (replays).

A per-webhook secret also means rotating or revoking one provider's secret touches nobody else.
The trade-off, stated: the secret is stored in the broker's database (HMAC needs it to sign), so
someone who can read that database could forge notifications to that provider; rotate it with
``broker webhooks rotate-secret``.

Provider-side example (Python, this module has no broker dependencies beyond the standard
library)::

    from broker.notify.signing import verify_webhook
    verify_webhook(secret, request.headers, await request.read(), now=time.time())
    # raises WebhookSignatureError; on success the body is the broker's, unaltered
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
TOLERANCE_SECONDS = 300
"""How far a delivery's timestamp may be from the receiver's clock."""

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class WebhookSignatureError(ValueError):
    """A delivery's signature headers are missing, malformed, stale or do not verify."""


def new_secret() -> str:
    """A fresh signing secret in ``whsec_<base64>`` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise WebhookSignatureError("the webhook secret is not base64") from e
    if len(key) < 24:
        raise WebhookSignatureError("the webhook secret is too short")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers that make a delivery verifiable."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, msg_id, timestamp, body),
    }


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> str:
    """Check a received delivery; return its ``webhook-id``.

    ``headers`` may be any mapping whose keys are lowercase, or a case-insensitive one (aiohttp,
    Starlette, httpx). Raises :class:`WebhookSignatureError`.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered[ID_HEADER]
        stamp = lowered[TIMESTAMP_HEADER]
        offered = lowered[SIGNATURE_HEADER]
    except KeyError as e:
        raise WebhookSignatureError(f"missing header {e.args[0]}") from e
    try:
        timestamp = int(stamp)
    except ValueError as e:
        raise WebhookSignatureError("webhook-timestamp is not an integer") from e
    if abs(now - timestamp) > tolerance_seconds:
        raise WebhookSignatureError("webhook-timestamp is too far from now (replayed?)")
    expected = signature(secret, msg_id, timestamp, body).encode()
    # The header may hold several space-separated signatures (during a secret rotation).
    for candidate in offered.split(" "):
        if hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookSignatureError("no signature matches")
