"""Console password rules, after the NCSC's password guidance: length over complexity, no
expiry, and a deny list.

A password is refused when it is shorter than ``MIN_PASSWORD_CHARS``; when it, or its core
(what is left once digits, symbols and spaces around the letters are taken off, so
``Password123!`` and ``!!qwertyuiop99`` count), is on the shipped list of common passwords
(``broker/console/data/common-passwords.txt``); when it is one character repeated or a run such
as ``abcdefghijkl``; or when it contains the account's username or its party's id or name.
"""

from __future__ import annotations

import itertools
import re
from functools import cache
from importlib import resources

from broker.core.errors import InvalidInput

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1000
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\s._@-]+")


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("broker.console").joinpath("data/common-passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _is_run(text: str) -> bool:
    """One character repeated, or each character one after the previous (``abcd``, ``4321``)."""
    if len(set(text)) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return steps in ({1}, {-1})


def password_problem(password: str, *, username: str = "", context: tuple[str, ...] = ()) -> str:
    """Why ``password`` is refused, or ``""`` when it may be used. ``context`` holds other words
    it must not contain (the party's id and name)."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a console password needs at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"a console password has at most {MAX_PASSWORD_CHARS} characters"
    lowered = password.lower()
    core = _EDGES.sub("", lowered)
    deny = common_passwords()
    if lowered in deny or core in deny or _SEPARATORS.sub("", core) in deny:
        return "this password is a common one (or one with digits added): choose another"
    if _is_run(lowered) or (core and _is_run(core)):
        return "this password is a repeated character or a run: choose another"
    squeezed = _SEPARATORS.sub("", lowered)
    for word in (username, *context):
        bare = _SEPARATORS.sub("", word.lower())
        if len(bare) >= 3 and bare in squeezed:
            return "a console password may not contain the username or the party's name"
    return ""


def check_password(password: str, *, username: str = "", context: tuple[str, ...] = ()) -> None:
    """Raises InvalidInput when :func:`password_problem` finds one."""
    problem = password_problem(password, username=username, context=context)
    if problem:
        raise InvalidInput(problem)
