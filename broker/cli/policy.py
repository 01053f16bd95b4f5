"""``broker policy``: run the Rego unit tests and build OPA bundles.

The lead registers this with ``main.add_typer(policy.app, name="policy")``. ``build`` reads the
compiled agreements from a JSON file for now (:func:`broker.policy.compiled.policy_data_from_json`);
wired to the verified agreements later through :func:`build_bundle_file`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
import yaml

from broker.core.signing_key import SigningKey
from broker.policy.bundle import build_bundle, policy_modules, write_bundle_file
from broker.policy.compiled import PolicyData, compile_data, policy_data_from_json
from broker.policy.errors import BundleError, PolicyError
from broker.policy.opa_config import HEADER, SidecarSettings, check, opa_config
from broker.settings import Settings

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


# ------------------------------------------------------------------ OPA sidecars and OPA servers


def _sidecar_settings(
    config: Settings, client_id: str, key_file: Path, broker_url: str | None, token_url: str | None
) -> SidecarSettings:
    from broker.auth.client_assertion import default_alg, load_private_key
    from broker.policy.setup import bundle_keys

    key = load_private_key(key_file)
    signing, verification = bundle_keys(config)
    return SidecarSettings(
        broker_url=broker_url or config.public_url,
        token_url=token_url or config.token_url,
        client_id=client_id,
        client_key_pem=key.as_pem(private=True).decode("ascii"),
        client_key_algorithm=default_alg(key),
        bundle_key_id=signing.kid,
        bundle_key_algorithm=signing.algorithm,
        bundle_public_key_pem=verification[signing.kid].pem.decode("ascii"),
    )


def _check_client(config: Settings, sidecar: SidecarSettings) -> str | None:
    """Why OPA could not get a token as this client (unknown, not bundle-only, key not its)."""
    from broker.auth.assertion import is_bundle_only
    from broker.auth.client_assertion import import_pem_key
    from broker.auth.jose import import_public_jwk
    from broker.cli.common import registry

    with registry(config) as clients:
        client = clients.find_client(sidecar.client_id)
    if client is None:
        return f"no client {sidecar.client_id!r} is registered"
    if not is_bundle_only(client):
        return (
            f"client {client.id!r} has scopes {', '.join(client.scopes)}: an OPA sidecar's "
            "client must have the bundle scope only (the token endpoint relaxes its checks "
            "for such clients alone)"
        )
    key = import_pem_key(sidecar.client_key_pem.encode())
    thumbprints = {import_public_jwk(jwk).thumbprint() for jwk in client.keys}
    if key is None or key.thumbprint() not in thumbprints:
        return f"the key is not one registered for {client.id!r}"
    return None


@app.command("opa-config")
def opa_config_command(
    key_file: Annotated[
        Path, typer.Option("--key-file", help="OPA's own private key (PEM), registered.")
    ],
    client_id: Annotated[
        str, typer.Option("--client-id", help="The client OPA is (scope bundle only).")
    ] = "opa-sidecar",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (mode 0600); default: stdout.")
    ] = None,
    broker_url: Annotated[
        str | None, typer.Option("--broker-url", help="Default: BROKER_PUBLIC_URL.")
    ] = None,
    token_url: Annotated[
        str | None, typer.Option("--token-url", help="Default: the broker's token URL.")
    ] = None,
    check_registry: Annotated[
        bool,
        typer.Option(
            "--check-registry/--no-check-registry",
            help="Check the client is registered, bundle-only, with this key.",
        ),
    ] = True,
) -> None:
    """Write the OPA sidecar configuration for the bundle this broker serves."""
    from broker.cli.common import EXIT_USAGE, fail, handled, settings

    config = settings()
    with handled():
        try:
            sidecar = _sidecar_settings(config, client_id, key_file, broker_url, token_url)
        except (OSError, ValueError) as e:
            fail(str(e), EXIT_USAGE)
        problems = check(sidecar)
        if problems:
            fail("; ".join(problems), EXIT_USAGE)
        if check_registry:
            problem = _check_client(config, sidecar)
            if problem:
                fail(problem)
    text = HEADER + "\n" + yaml.dump(opa_config(sidecar), Dumper=_BlockDumper, sort_keys=False)
    if out is None:
        typer.echo(text, nl=False)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    typer.echo(f"wrote {out} (bundle key {sidecar.bundle_key_id}, {sidecar.bundle_key_algorithm})")


class _BlockDumper(yaml.SafeDumper):
    """PEM blocks as YAML literal blocks, everything else as usual."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)

OpaUrl = Annotated[
    str, typer.Option("--opa-url", help="OPA's base URL, e.g. http://127.0.0.1:8181")
]


@app.command("push")
def push_command(
    opa_url: OpaUrl,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="A bearer token OPA requires, if any.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 5.0,
) -> None:
    """Push the policy and data of the bundle this broker serves to an OPA that pulls none."""
    from broker.cli.common import EXIT_USAGE, fail, handled, registry, settings
    from broker.db.engine import build_engine
    from broker.policy.opa_push import OpaPushError, opa_client, push
    from broker.policy.setup import build_policy, bundle_keys

    config = settings()
    with handled():
        engine = build_engine(config.database_url, pooled=False)
        try:
            with registry(config) as clients:
                holder, _ = build_policy(config, engine, clients)
        finally:
            engine.dispose()
        current = holder.current_bundle
        if current is None:
            fail("no policy bundle could be built (see `broker agreements status`)")
        try:
            token = token_file.read_text().strip() if token_file else None
            client = opa_client(opa_url, timeout_seconds=timeout, token=token)
        except (OSError, ValueError) as e:
            fail(str(e), EXIT_USAGE)
        try:
            result = push(client, current[1], bundle_keys(config)[1])
        except (OpaPushError, BundleError) as e:
            fail(str(e))
        finally:
            client.close_connection()
    typer.echo(
        f"pushed revision {result.revision} to {opa_url}: policies "
        f"{', '.join(result.policies)}; data {', '.join(result.data_paths)}"
    )


@app.command("opa-health")
def opa_health_command(
    opa_url: OpaUrl,
    bundles: Annotated[
        bool, typer.Option("--bundles", help="Also require every bundle to be activated.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds.")] = 2.0,
) -> None:
    """Check an OPA server's health (GET /health). Exit 0 healthy, 1 not."""
    from broker.cli.common import EXIT_USAGE, fail
    from broker.policy.opa_push import healthy, opa_client

    try:
        client = opa_client(opa_url, timeout_seconds=timeout)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    try:
        ok = healthy(client, bundles=bundles)
    finally:
        client.close_connection()
    typer.echo(f"{opa_url}: {'healthy' if ok else 'not healthy'}")
    raise typer.Exit(0 if ok else 1)
