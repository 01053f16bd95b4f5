from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from broker.cli.policy import app
from broker.policy.bundle import VerificationKey, load_bundle
from tests.policy.fixtures import DEMO_DATA, POLICY_DIR

runner = CliRunner()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list | frozenset | set):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def test_policy_test_command_passes() -> None:
    result = runner.invoke(app, ["test", "--policy-dir", str(POLICY_DIR)])
    assert result.exit_code == 0, result.output
    assert "passed" in result.output


def test_policy_test_without_tests_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", "--policy-dir", str(tmp_path)])
    assert result.exit_code == 2


def test_policy_build_signed(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "sign.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    compiled = tmp_path / "compiled.json"
    compiled.write_text(json.dumps(_jsonable(DEMO_DATA)))
    out = tmp_path / "bundle.tar.gz"
    result = runner.invoke(
        app,
        ["build", "--out", str(out), "--compiled", str(compiled), "--sign-key", str(pem),
         "--policy-dir", str(POLICY_DIR)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bundle = load_bundle(out.read_bytes(), {"broker": VerificationKey(public)})
    assert bundle.revision in result.output


def test_policy_build_invalid_data_exits_1(tmp_path: Path) -> None:
    doc = _jsonable(DEMO_DATA)
    doc["agreements"][0]["flows"][0]["permitted_fields"] = ["no.such.field"]
    compiled = tmp_path / "compiled.json"
    compiled.write_text(json.dumps(doc))
    result = runner.invoke(
        app, ["build", "--out", str(tmp_path / "b.tar.gz"), "--compiled", str(compiled)]
    )
    assert result.exit_code == 1
    assert "not in the catalogue" in result.output
