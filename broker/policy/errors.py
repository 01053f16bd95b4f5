"""Errors of the policy area.

::

    BrokerError
    └── PolicyError                 anything the policy layer refuses
        ├── PolicyCompileError      compiled agreements the policy could not decide on safely
        └── BundleError             malformed, tampered, badly signed or not compiling

Engines never raise on a normal request: a failing engine yields a *deny* decision with the reason
``policy engine unavailable``.
"""

from __future__ import annotations

from broker.core.errors import BrokerError, ConfigurationError


class PolicyError(BrokerError):
    title = "Policy error"


class PolicyCompileError(PolicyError, ConfigurationError):
    title = "Agreements cannot be compiled into policy"


class BundleError(PolicyError):
    title = "Policy bundle refused"
