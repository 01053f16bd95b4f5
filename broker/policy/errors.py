"""Errors of the policy area.

::

    BrokerError
    └── PolicyError                 anything the policy layer refuses
        ├── PolicyCompileError      compiled agreements the policy could not decide on safely
        ├── BundleError             a bundle that is malformed, tampered, badly signed or does not compile
        └── EngineUnavailable       the engine could not give a decision (also an ``Unavailable``: 503)

Engines never raise on a normal request: a failing engine yields a *deny* decision with the reason
``policy engine unavailable``. ``EngineUnavailable`` is raised only where a caller asked to be told,
for example when loading the first bundle at start-up.
"""

from __future__ import annotations

from broker.core.errors import BrokerError, ConfigurationError, Unavailable


class PolicyError(BrokerError):
    title = "Policy error"


class PolicyCompileError(PolicyError, ConfigurationError):
    title = "Agreements cannot be compiled into policy"


class BundleError(PolicyError):
    title = "Policy bundle refused"


class EngineUnavailable(PolicyError, Unavailable):
    title = "Policy engine unavailable"
