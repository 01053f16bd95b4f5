"""The console's errors, under the broker's tree::

BrokerError
└── ConsoleError
    ├── SignInRefused       wrong username or password, locked, or disabled (the page says
    │                       only "not signed in", never which)
    ├── SessionRequired     no session or an expired one: sign in again
    ├── CsrfRefused         a POST without this session's CSRF token
    └── RoleRefused         signed in, but the role may not do this
"""

from __future__ import annotations

from broker.core.errors import BrokerError


class ConsoleError(BrokerError):
    title = "Console error"


class SignInRefused(ConsoleError):
    title = "Sign-in refused"


class SessionRequired(ConsoleError):
    title = "Sign-in required"


class CsrfRefused(ConsoleError):
    title = "Request refused"


class RoleRefused(ConsoleError):
    title = "Not permitted"
