"""``broker attestation``: check a proof-reuse attestation offline; export the public key.

``verify FILE`` reads a compact JWS (or the JSON the API returns, ``{"attestation": ...}``) and
checks it against the broker's attestation key: ``--key`` (a public key PEM), ``--jwks`` (the
published ``/.well-known/attestation-keys.json``), or else the key under ``BROKER_KEYS_DIR``.
Exit 0 valid, 1 refused (altered, another key, expired, not an attestation), 2 unreadable input.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from joserfc.jwk import KeySet, OKPKey

from broker.attestation.errors import AttestationError, AttestationInvalid
from broker.attestation.keys import load_attestation_key
from broker.attestation.statement import read_attestation_text, verify_attestation
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


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The attestation (JWS, or the API's JSON).")],
    key: Annotated[Path | None, typer.Option("--key", help="The public key PEM.")] = None,
    jwks: Annotated[
        Path | None, typer.Option("--jwks", help="A saved /.well-known/attestation-keys.json.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check one attestation offline: signature, completeness, expiry."""
    if key is not None and jwks is not None:
        raise _usage("give --key or --jwks, not both")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _usage(f"cannot read {file}: {e}") from e
    keys = _keys(key, jwks)
    try:
        claims = verify_attestation(read_attestation_text(text), keys, now=dt.datetime.now(dt.UTC))
    except AttestationInvalid as e:
        if as_json:
            typer.echo(json.dumps({"valid": False, "reason": e.detail}))
        else:
            typer.echo(f"REFUSED: {e.detail}")
        raise typer.Exit(1) from e
    if as_json:
        typer.echo(json.dumps({"valid": True, "claims": claims}, indent=2, sort_keys=True))
        return
    doc = claims["document"]
    expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC).isoformat()
    typer.echo(
        f"VALID: {doc['type']} document (sha256 {doc['sha256']}) verified by"
        f" {doc['verified_by_party']} on {doc['verified_at']} by {doc['verification_method']};"
        f" exchange {claims['exchange_id']}; expires {expires}"
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
