"""The console's errors, under the broker's tree. Each also sits under the core error that gives
its status (:mod:`broker.api.problems` maps both the API's and the console's errors)::

BrokerError
└── ConsoleError
    ├── SignInRefused       wrong username or password, locked, or disabled (the page says
    │                       only "not signed in", never which); an AuthError (401)
    ├── SessionRequired     no session or an expired one: sign in again; an AuthError (401,
    │                       a GET is sent to the sign-in page instead)
    ├── CsrfRefused         a POST without this session's CSRF token; Forbidden (403)
    └── RoleRefused         signed in, but the role may not do this; Forbidden (403)
"""

from __future__ import annotations

from broker.core.errors import AuthError, BrokerError, Forbidden


class ConsoleError(BrokerError):
    title = "Console error"


class SignInRefused(ConsoleError, AuthError):
    title = "Sign-in refused"


class SessionRequired(ConsoleError, AuthError):
    title = "Sign-in required"


class CsrfRefused(ConsoleError, Forbidden):
    title = "Request refused"


class RoleRefused(ConsoleError, Forbidden):
    title = "Not permitted"
