"""The party side of signing an agreement held by the broker (``broker agreements sign --draft``).

Runs on the party's own machine with the party's own private key, which never leaves it: fetch
the statement the broker shows for the draft, canonicalise the YAML the officer reviewed (or the
fetched one), rebuild the statement from it, sign only when both agree byte for byte, and submit
the detached signature. The only value taken on the broker's word is the digest of the version
the draft replaces (printed, so the officer can compare it with the version in force).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer

from broker.agreements.errors import AgreementError, refuse_published_keys
from broker.agreements.model import Agreement
from broker.agreements.parsing import DocumentError, parse_document
from broker.agreements.signing import PartyKey, public_jwk, sign_detached
from broker.agreements.statements import ACTIONS, Action, statement_for
from broker.agreements.trust_root import rotation_statement
from broker.cli.common import EXIT_CHECK_FAILED, EXIT_USAGE, fail

ClientFactory = Callable[[str, str], httpx.Client]


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    )


CLIENT: ClientFactory = _client
"""How the command reaches the broker (a test may point it at an app in process)."""


def _json(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
            detail = body.get("detail") or body
            errors = body.get("errors") or []
        except ValueError:
            detail, errors = response.text[:300], []
        for item in errors:
            typer.echo(f"  {item}", err=True)
        fail(f"{what} refused ({response.status_code}): {detail}", EXIT_CHECK_FAILED)
    return response.json()


def _agreement(text: str, where: str) -> Agreement:
    try:
        doc = parse_document(text, where)
    except DocumentError as e:
        fail(f"{where}: {e}", EXIT_CHECK_FAILED)
    if not isinstance(doc, Agreement):
        fail(f"{where}: not an agreement", EXIT_CHECK_FAILED)
    return doc


def sign_draft(
    *,
    url: str,
    token: str,
    draft_id: str,
    party: str,
    key: PartyKey,
    reviewed: Path | None,
    action: str | None,
    demo: bool,
) -> dict[str, Any]:
    """Sign ``draft_id`` for ``party`` (see the module docstring); returns the broker's answer."""
    try:
        refuse_published_keys([key.thumbprint()], demo=demo)
    except AgreementError as e:
        fail(e.detail, EXIT_USAGE)
    with CLIENT(url.rstrip("/"), token) as http:
        try:
            if action is None:
                draft = _json(http.get(f"/v1/agreements/drafts/{draft_id}"), "reading the draft")
                action = str(draft["signing_action"])
            if action not in ACTIONS:
                fail(f"--action must be one of {list(ACTIONS)}", EXIT_USAGE)
            shown = _json(
                http.get(
                    f"/v1/agreements/drafts/{draft_id}/statement",
                    params={"party": party, "action": action},
                ),
                "reading the statement",
            )
            if reviewed is not None:
                try:
                    text = reviewed.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    fail(f"cannot read {reviewed}: {e}", EXIT_USAGE)
                where = str(reviewed)
            else:
                text, where = str(shown["yaml"]), f"draft {draft_id}"
            agreement = _agreement(text, where)
            if agreement.digest() != shown["digest"]:
                fail(
                    f"not signed: the broker shows digest {shown['digest']}, but {where} has "
                    f"{agreement.digest()}; review the draft as it stands",
                    EXIT_CHECK_FAILED,
                )
            act: Action = action
            statement = statement_for(
                agreement, party, act, shown["statement"].get("previous_digest")
            )
            if statement.content() != shown["statement"]:
                fail(
                    "not signed: the statement the broker shows differs from the one built "
                    "from the reviewed YAML",
                    EXIT_CHECK_FAILED,
                )
            token_jws = sign_detached(statement.canonical_bytes(), key)
            typer.echo(
                f"{action}: {agreement.id} v{agreement.version} digest {statement.digest} "
                f"(replaces {statement.previous_digest or 'nothing'}) as {party}, "
                f"{statement.signatory_name} ({statement.signatory_role})"
            )
            return dict(
                _json(
                    http.post(
                        f"/v1/agreements/drafts/{draft_id}/signatures",
                        json={"party": party, "action": action, "jws": token_jws},
                    ),
                    "submitting the signature",
                )
            )
        except httpx.HTTPError as e:
            fail(f"cannot reach the broker at {url}: {e}", EXIT_USAGE)
        except ValueError as e:
            fail(str(e), EXIT_CHECK_FAILED)


def rotate_key(
    *, url: str, token: str, party: str, current: PartyKey, new: PartyKey, demo: bool
) -> dict[str, Any]:
    """Make ``new`` the party's signing key: a rotation statement signed with ``current``."""
    try:
        refuse_published_keys([new.thumbprint()], demo=demo)
    except AgreementError as e:
        fail(e.detail, EXIT_USAGE)
    statement = rotation_statement(party, new.thumbprint(), current.thumbprint())
    body = {"jwk": public_jwk(new), "jws": sign_detached(statement, current)}
    with CLIENT(url.rstrip("/"), token) as http:
        try:
            return dict(_json(http.post("/v1/agreements/keys/rotations", json=body), "rotation"))
        except httpx.HTTPError as e:
            fail(f"cannot reach the broker at {url}: {e}", EXIT_USAGE)
