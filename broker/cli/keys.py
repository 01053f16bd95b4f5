"""``broker keys``: signing key pairs for parties (private key PEM, public JWKS)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from joserfc.jwk import ECKey, OKPKey

from broker.agreements.signing import public_jwk

app = typer.Typer(help="Signing keys for parties.", no_args_is_help=True)


def generate_key_pair(party: str, out: Path, alg: Literal["Ed25519", "ES256"] = "Ed25519") -> str:
    """Write ``out/<party>.pem`` (private, mode 0600) and ``out/<party>.jwks.json``; return the kid.

    Raises FileExistsError rather than overwrite an existing private key.
    """
    out.mkdir(parents=True, exist_ok=True)
    pem_path = out / f"{party}.pem"
    jwks_path = out / f"{party}.jwks.json"
    if pem_path.exists():
        raise FileExistsError(str(pem_path))
    key = OKPKey.generate_key("Ed25519") if alg == "Ed25519" else ECKey.generate_key("P-256")
    fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.as_pem(private=True))
    jwks_path.write_text(json.dumps({"keys": [public_jwk(key)]}, indent=2) + "\n", encoding="utf-8")
    return key.thumbprint()


@app.command("generate")
def generate(
    party: Annotated[str, typer.Option("--party", help="Party id the key signs for.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the key pair to.")],
    alg: Annotated[str, typer.Option("--alg", help="Ed25519 (default) or ES256.")] = "Ed25519",
) -> None:
    """Generate a signing key pair: <out>/<party>.pem (private) and <out>/<party>.jwks.json."""
    if alg not in ("Ed25519", "ES256"):
        typer.echo("--alg must be Ed25519 or ES256", err=True)
        raise typer.Exit(2)
    try:
        kid = generate_key_pair(party, out, "Ed25519" if alg == "Ed25519" else "ES256")
    except FileExistsError as e:
        typer.echo(f"refusing to overwrite an existing private key: {e}", err=True)
        raise typer.Exit(2) from e
    except OSError as e:
        typer.echo(f"cannot write the key pair: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"private key: {out / (party + '.pem')} (keep it secret)")
    typer.echo(f"public JWKS: {out / (party + '.jwks.json')} (copy to agreements/keys/)")
    typer.echo(f"kid: {kid}")
