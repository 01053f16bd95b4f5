"""``broker attestation``: check a proof-reuse attestation; export the public key.

``verify FILE`` reads a compact JWS (or the JSON the API returns, ``{"attestation": ...}``) and
checks it against the broker's attestation key: ``--key`` (a public key PEM), ``--jwks`` (the
published ``/.well-known/attestation-keys.json``), or else the key under ``BROKER_KEYS_DIR``.
Then its audience (``--audience CLIENT``: it must have been issued to that system) and its
status: the signed status list named in the attestation, fetched from its URI, or read from
``--status-list FILE`` (offline); ``--no-status`` skips it and says so.
Exit 0 valid, 1 refused (naming the check that failed: ``signature``, ``audience``, ``status``),
2 unreadable input.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from joserfc.jwk import KeySet, OKPKey

from broker.attestation.errors import AttestationError, AttestationInvalid
from broker.attestation.keys import load_attestation_key
from broker.attestation.statement import read_attestation_text, verify_attestation
from broker.attestation.status import (
    MEDIA_TYPE,
    REVOKED,
    status_reference,
    verify_status_list,
)
from broker.cli.common import settings

app = typer.Typer(
    help="Attestations signed with the broker's attestation key.", no_args_is_help=True
)


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _keys(key: Path | None, jwks: Path | None) -> list[OKPKey]:
    try:
        if key is not None:
            loaded = OKPKey.import_key(key.read_bytes())
            return [OKPKey.import_key(loaded.as_dict(private=False))]
        if jwks is not None:
            document: Any = json.loads(jwks.read_text(encoding="utf-8"))
            keyset = KeySet.import_key_set(document)
            return [k for k in keyset.keys if isinstance(k, OKPKey)]
        signer = load_attestation_key(settings().keys_dir)
        return [OKPKey.import_key(signer.public_jwk())]
    except AttestationError as e:
        raise _usage(e.detail) from e
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise _usage(f"cannot read the key: {e}") from e
    except Exception as e:  # joserfc raises several types for bad keys
        raise _usage(f"not an Ed25519 key: {e}") from e


class _Refused(Exception):
    def __init__(self, check: str, reason: str) -> None:
        super().__init__(reason)
        self.check, self.reason = check, reason


def _status_text(uri: str, status_list: Path | None) -> str:
    """The signed status list: from the file, else fetched from ``uri``."""
    if status_list is not None:
        try:
            return status_list.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise _usage(f"cannot read {status_list}: {e}") from e
    try:
        response = httpx.get(uri, headers={"Accept": MEDIA_TYPE}, timeout=10.0)
    except httpx.HTTPError as e:
        raise _Refused("status", f"the status list {uri} could not be fetched: {e}") from e
    if response.status_code != 200:
        raise _Refused("status", f"the status list {uri} answered {response.status_code}")
    return response.text


def _check(
    compact: str,
    keys: list[OKPKey],
    audience: str | None,
    status_list: Path | None,
    no_status: bool,
) -> tuple[dict[str, Any], str]:
    """The claims and what was found of the status; raises _Refused naming the failed check."""
    now = dt.datetime.now(dt.UTC)
    try:
        claims = verify_attestation(compact, keys, now=now)
    except AttestationInvalid as e:
        raise _Refused("signature", e.detail) from e
    if audience is not None and claims["aud"] != audience:
        raise _Refused(
            "audience", f"the attestation was issued to {claims['aud']!r}, not to {audience!r}"
        )
    try:
        reference = status_reference(claims)
    except AttestationInvalid as e:
        raise _Refused("status", e.detail) from e
    if no_status:
        return claims, "not checked (--no-status)"
    if reference is None:
        raise _Refused("status", "the attestation names no status list")
    idx, uri = reference
    try:
        found = verify_status_list(_status_text(uri, status_list), keys, uri=uri, now=now)
        status = found.status(idx)
    except AttestationInvalid as e:
        raise _Refused("status", e.detail) from e
    if status == REVOKED:
        raise _Refused("status", "the attestation has been revoked")
    return claims, "valid"


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The attestation (JWS, or the API's JSON).")],
    key: Annotated[Path | None, typer.Option("--key", help="The public key PEM.")] = None,
    jwks: Annotated[
        Path | None, typer.Option("--jwks", help="A saved /.well-known/attestation-keys.json.")
    ] = None,
    audience: Annotated[
        str | None,
        typer.Option("--audience", help="The client id the attestation must have been issued to."),
    ] = None,
    status_list: Annotated[
        Path | None,
        typer.Option("--status-list", help="A saved status list (offline; else it is fetched)."),
    ] = None,
    no_status: Annotated[
        bool, typer.Option("--no-status", help="Do not check the status (says so).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check one attestation: signature, completeness, expiry, audience, status."""
    if key is not None and jwks is not None:
        raise _usage("give --key or --jwks, not both")
    if no_status and status_list is not None:
        raise _usage("give --status-list or --no-status, not both")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _usage(f"cannot read {file}: {e}") from e
    keys = _keys(key, jwks)
    refused: _Refused | None = None
    try:
        compact = read_attestation_text(text)
        claims, status = _check(compact, keys, audience, status_list, no_status)
    except AttestationInvalid as e:
        refused = _Refused("signature", e.detail)
    except _Refused as e:
        refused = e
    if refused is not None:
        if as_json:
            typer.echo(
                json.dumps({"valid": False, "check": refused.check, "reason": refused.reason})
            )
        else:
            typer.echo(f"REFUSED ({refused.check}): {refused.reason}")
        raise typer.Exit(1)
    if as_json:
        out = {"valid": True, "status": status, "claims": claims}
        typer.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    doc = claims["document"]
    expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC).isoformat()
    typer.echo(
        f"VALID: {doc['type']} document (sha256 {doc['sha256']}) verified by"
        f" {doc['verified_by_party']} on {doc['verified_at']} by {doc['verification_method']};"
        f" issued to {claims['aud']}; exchange {claims['exchange_id']}; expires {expires};"
        f" status {status}"
    )


@app.command("public-key")
def public_key(
    as_jwks: Annotated[bool, typer.Option("--jwks", help="Print a JWKS instead of PEM.")] = False,
) -> None:
    """Print the broker's public attestation key, for offline verifiers."""
    try:
        signer = load_attestation_key(settings().keys_dir)
    except AttestationError as e:
        raise _usage(e.detail) from e
    if as_jwks:
        typer.echo(json.dumps(signer.jwks(), indent=2))
    else:
        typer.echo(signer.public_pem().decode().rstrip())
