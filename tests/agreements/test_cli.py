"""``broker keys`` and ``broker agreements`` as a governance officer runs them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import typer
from sqlalchemy import insert
from typer.testing import CliRunner

from broker.agreements.store import import_party_keys
from broker.cli.agreements import app as agreements_app
from broker.cli.keys import app as keys_app
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.db.tables import parties
from demo.parties import DEMO_PARTIES
from tests.agreements.conftest import DEMO_KEYS, EXAMPLES, NOW

cli = typer.Typer()
cli.add_typer(agreements_app, name="agreements")
cli.add_typer(keys_app, name="keys")
runner = CliRunner()
AT = ["--at", "2026-11-29T12:00:00+00:00"]


@pytest.fixture
def agreements_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BROKER_AGREEMENTS_DIR with a copy of the examples, and a migrated SQLite database."""
    base = tmp_path / "agreements"
    shutil.copytree(EXAMPLES, base / "examples")
    db = "sqlite:///" + str(tmp_path / "broker.db")
    engine = build_engine(db)
    upgrade(engine)
    with engine.begin() as conn:
        for p in DEMO_PARTIES:
            conn.execute(insert(parties).values(id=p.id, name=p.name, kind=p.kind, created_at=NOW))
    engine.dispose()
    monkeypatch.setenv("BROKER_AGREEMENTS_DIR", str(base))
    monkeypatch.setenv("BROKER_DATABASE_URL", db)
    monkeypatch.delenv("BROKER_DEMO", raising=False)
    return base


def test_verify_examples_in_demo_mode_exits_0(agreements_dir: Path) -> None:
    files = sorted(str(p) for p in (agreements_dir / "examples" / "isa").glob("*.yaml"))
    result = runner.invoke(cli, ["agreements", "verify", "--demo", *AT, *files])
    assert result.exit_code == 0, result.output
    assert "ISA-SAFEGUARDING-CHILDREN v1: active" in result.output
    assert "ISA-SPD-FRAUD v1: active (review due)" in result.output


def test_verify_a_tampered_copy_exits_1_naming_it(agreements_dir: Path) -> None:
    path = agreements_dir / "examples" / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
    path.write_text(path.read_text().replace("      - looked_after.status\n", ""))
    result = runner.invoke(cli, ["agreements", "verify", "--demo", *AT, str(path)])
    assert result.exit_code == 1
    assert "ISA-SAFEGUARDING-CHILDREN v1: invalid" in result.output
    assert "signature of 'R9Z': the signature no longer matches the content" in result.output


def test_verify_examples_outside_demo_mode_exits_1(agreements_dir: Path) -> None:
    path = agreements_dir / "examples" / "isa" / "ISA-PROOF-REUSE.yaml"
    result = runner.invoke(cli, ["agreements", "verify", *AT, str(path)])
    assert result.exit_code == 1
    assert "not in the trust store" in result.output or "demo key" in result.output


def test_validate_names_file_place_and_reason(agreements_dir: Path, tmp_path: Path) -> None:
    path = agreements_dir / "examples" / "isa" / "ISA-SCHOOL-ADMISSIONS.yaml"
    path.write_text(path.read_text().replace("verification_only: true", "verify_only: true"))
    result = runner.invoke(cli, ["agreements", "validate", "--demo", str(path)])
    assert result.exit_code == 1
    assert f"{path}:" in result.output
    assert "flows[0].conditions.verify_only: unknown key" in result.output


def test_list_json(agreements_dir: Path) -> None:
    result = runner.invoke(cli, ["agreements", "list", "--demo", "--json", *AT])
    assert result.exit_code == 0, result.output
    rows = {a["id"]: a for a in json.loads(result.output)["agreements"]}
    assert rows["ISA-SPD-FRAUD"]["review_due"] is True
    assert rows["ISA-HOSPITAL-DISCHARGE"]["parties"] == ["R9Z", "calderbridge-city-council"]
    assert rows["ISA-HOSPITAL-DISCHARGE"]["expires_on"] == "2029-03-31"


def test_keys_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    args = ["keys", "generate", "--party", "R9Z", "--out", str(tmp_path)]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "R9Z.pem").stat().st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "R9Z.jwks.json").read_text())["keys"][0]["alg"] == "Ed25519"
    again = runner.invoke(cli, args)
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output


def test_signing_with_a_demo_key_outside_demo_mode_exits_2(agreements_dir: Path) -> None:
    path = agreements_dir / "examples" / "isa" / "ISA-PROOF-REUSE.yaml"
    result = runner.invoke(
        cli,
        [
            "agreements",
            "sign",
            str(path),
            "--party",
            "calderbridge-city-council",
            "--key",
            str(DEMO_KEYS / "calderbridge-city-council.pem"),
        ],
    )
    assert result.exit_code == 2
    assert "demo keys are refused outside demo mode" in result.output


def test_real_keys_sign_verify_and_revoke(agreements_dir: Path, tmp_path: Path) -> None:
    """The whole governance journey outside demo mode, with the trust store in the database."""
    root = agreements_dir / "live"
    shutil.copytree(agreements_dir / "examples", root)
    for sig in root.rglob("*.sig.json"):
        sig.unlink()
    shutil.rmtree(root / "keys")
    private = tmp_path / "private"
    gen = runner.invoke(
        cli, ["keys", "generate", "--party", "calderbridge-city-council", "--out", str(private)]
    )
    assert gen.exit_code == 0, gen.output
    (root / "keys").mkdir()
    shutil.copy(private / "calderbridge-city-council.jwks.json", root / "keys")
    engine = build_engine(os.environ["BROKER_DATABASE_URL"])
    import_party_keys(
        engine, root / "keys", "ig-admin", known_parties={"calderbridge-city-council"}
    )
    engine.dispose()
    key = str(private / "calderbridge-city-council.pem")
    isa = root / "isa" / "ISA-PROOF-REUSE.yaml"

    verify = ["agreements", "verify", "--root", str(root), *AT, str(isa)]
    unsigned = runner.invoke(cli, verify)
    assert unsigned.exit_code == 1
    assert "counts for nothing: not signed by 'calderbridge-city-council'" in unsigned.output

    for entry in ("ccc.proof-documents", "ccc.benefit-claims"):
        path = root / "register" / f"{entry}.yaml"
        signed = runner.invoke(
            cli,
            ["agreements", "sign", str(path), "--party", "calderbridge-city-council", "--key", key],
        )
        assert signed.exit_code == 0, signed.output
    wrong_party = runner.invoke(
        cli, ["agreements", "sign", str(isa), "--party", "R9Z", "--key", key]
    )
    assert wrong_party.exit_code == 2
    assert "'R9Z' cannot sign" in wrong_party.output
    signed = runner.invoke(
        cli, ["agreements", "sign", str(isa), "--party", "calderbridge-city-council", "--key", key]
    )
    assert signed.exit_code == 0, signed.output

    active = runner.invoke(cli, verify)
    assert active.exit_code == 0, active.output
    assert "ISA-PROOF-REUSE v1: active" in active.output

    revoked = runner.invoke(
        cli,
        [
            "agreements",
            "revoke",
            "ISA-PROOF-REUSE",
            "--root",
            str(root),
            "--party",
            "calderbridge-city-council",
            "--key",
            key,
            "--reason",
            "Housing Options moved to a new case system",
        ],
    )
    assert revoked.exit_code == 0, revoked.output
    assert "ISA-PROOF-REUSE v1: revoked" in revoked.output
    for path in (root / "revocations").iterdir():  # deleted at once: it was recorded already
        path.unlink()
    after = runner.invoke(cli, verify)
    assert after.exit_code == 1
    assert "ISA-PROOF-REUSE v1: revoked" in after.output


def test_demo_mode_trusts_only_the_published_demo_keys(
    agreements_dir: Path, tmp_path: Path
) -> None:
    examples = agreements_dir / "examples"
    path = examples / "isa" / "ISA-PROOF-REUSE.yaml"
    # Someone swaps the council's demo public key for their own and re-signs.
    gen = runner.invoke(
        cli,
        [
            "keys",
            "generate",
            "--party",
            "calderbridge-city-council",
            "--out",
            str(tmp_path / "mine"),
        ],
    )
    assert gen.exit_code == 0
    shutil.copy(tmp_path / "mine" / "calderbridge-city-council.jwks.json", examples / "keys")
    result = runner.invoke(cli, ["agreements", "verify", "--demo", *AT, str(path)])
    assert result.exit_code == 1
    assert "not in the trust store" in result.output


@pytest.mark.parametrize(
    ("alg", "code", "kty"),
    [pytest.param("ES256", 0, "EC", id="es256"), pytest.param("RS256", 2, None, id="rsa-refused")],
)
def test_keys_generate_algorithms(tmp_path: Path, alg: str, code: int, kty: str | None) -> None:
    result = runner.invoke(
        cli, ["keys", "generate", "--party", "R9Z", "--out", str(tmp_path), "--alg", alg]
    )
    assert result.exit_code == code, result.output
    if kty:
        jwk = json.loads((tmp_path / "R9Z.jwks.json").read_text())["keys"][0]
        assert (jwk["kty"], jwk["alg"]) == (kty, alg)
