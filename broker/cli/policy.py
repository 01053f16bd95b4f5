"""``broker policy``: run the Rego unit tests and build OPA bundles.

The lead registers this with ``main.add_typer(policy.app, name="policy")``. ``build`` reads the
compiled agreements from a JSON file for now (:func:`broker.policy.compiled.policy_data_from_json`);
wired to the verified agreements later through :func:`build_bundle_file`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from broker.core.signing_key import SigningKey
from broker.policy.bundle import build_bundle, policy_modules, write_bundle_file
from broker.policy.compiled import PolicyData, compile_data, policy_data_from_json
from broker.policy.errors import BundleError, PolicyError

app = typer.Typer(help="Rego policy: unit tests and OPA bundles.", no_args_is_help=True)

PolicyDir = Annotated[Path, typer.Option("--policy-dir", help="Folder of the .rego files.")]


def build_bundle_file(
    out: Path, data: PolicyData, policy_dir: Path, key: SigningKey | None = None
) -> str:
    """Compile ``data``, build the bundle (signed with ``key`` when given) and write it atomically
    to
    ``out``. Returns the revision. Raises ``PolicyCompileError`` or ``BundleError``."""
    _, blob = build_bundle(policy_modules(policy_dir), compile_data(data), key)
    write_bundle_file(out, blob)
    return _revision_of(blob)


def _revision_of(blob: bytes) -> str:
    from broker.policy.bundle import MANIFEST, unpack

    return str(json.loads(unpack(blob)[MANIFEST])["revision"])


@app.command("test")
def rego_tests_command(
    policy_dir: PolicyDir = Path("policies"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Run the Rego unit tests (policies/*_test.rego). Exit 0 all pass, 1 a failure, 2 no tests."""
    from broker.policy.regorus_engine import run_rego_tests

    try:
        results = run_rego_tests(policy_dir)
    except PolicyError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(2) from e
    if not results:
        typer.echo(f"error: no Rego tests in {policy_dir}", err=True)
        raise typer.Exit(2)
    failed = [r for r in results if not r.passed]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"package": r.package, "name": r.name, "passed": r.passed, "detail": r.detail}
                    for r in results
                ],
                indent=2,
            )
        )
    else:
        for r in results:
            typer.echo(f"{'PASS' if r.passed else 'FAIL'} {r.package}.{r.name}")
            if not r.passed:
                typer.echo(f"     {r.detail}")
        typer.echo(f"{len(results) - len(failed)}/{len(results)} passed")
    raise typer.Exit(1 if failed else 0)


@app.command("build")
def build_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the bundle (tar.gz).")],
    compiled: Annotated[
        Path, typer.Option("--compiled", help="Compiled agreements and register (JSON).")
    ],
    sign_key: Annotated[
        Path | None, typer.Option("--sign-key", help="PEM private key (RSA or P-256).")
    ] = None,
    kid: Annotated[str, typer.Option("--kid", help="Key id OPA trusts the key under.")] = "broker",
    algorithm: Annotated[str, typer.Option("--alg", help="RS256, PS256 or ES256.")] = "RS256",
    policy_dir: PolicyDir = Path("policies"),
) -> None:
    """Build an OPA bundle of the policy and the compiled agreements."""
    try:
        data = policy_data_from_json(json.loads(compiled.read_text(encoding="utf-8")))
        key = None
        if sign_key is not None:
            key = SigningKey(sign_key.read_bytes(), kid=kid, algorithm=algorithm)
        revision = build_bundle_file(out, data, policy_dir, key)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    except BundleError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(2) from e
    except PolicyError as e:
        typer.echo(f"invalid: {e.detail}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"wrote {out} revision {revision}{' signed by ' + kid if key else ''}")
