"""Errors of the agreements area.

::

    BrokerError
    └── AgreementError              anything about agreements, the register, signatures, keys
        ├── UnusableKeyError             a key file that is unreadable or of a kind we do not accept
        ├── DemoKeyRefusedError          a demo key outside demo mode (ConfigurationError semantics)
        ├── UnknownPartyError            a key or document names a party the registry does not know
        └── KeyConflictError             a key already trusted for another party
"""

from __future__ import annotations

from broker.core.errors import BrokerError


class AgreementError(BrokerError):
    title = "Agreement error"


class UnusableKeyError(AgreementError):
    title = "Unusable key"


class DemoKeyRefusedError(AgreementError):
    title = "Demo key refused"


class UnknownPartyError(AgreementError):
    title = "Unknown party"


class KeyConflictError(AgreementError):
    title = "Key conflict"
