"""Errors of the attestation area.

::

    BrokerError
    └── AttestationError            (500: the broker's own key or statement failed)
        ├── AttestationKeyError     the attestation key is missing or unreadable (503)
        └── AttestationInvalid      a statement does not verify: altered, wrong key, expired (422)
"""

from __future__ import annotations

from broker.core.errors import BrokerError, ConfigurationError, InvalidInput


class AttestationError(BrokerError):
    title = "Attestation error"


class AttestationKeyError(AttestationError, ConfigurationError):
    title = "Attestation key unavailable"


class AttestationInvalid(AttestationError, InvalidInput):
    title = "Attestation refused"
