"""``broker register`` as an officer runs it, and ``broker agreements verify`` pointing register
files to it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from broker.agreements.register_view import NOT_RECORDED, ROPA_COLUMNS, ropa_csv
from broker.cli.agreements import app as agreements_app
from broker.cli.register import app as register_app
from demo.parties import HOSPITAL
from tests.agreements.test_cli import agreements_dir  # noqa: F401 - the fixture

cli = typer.Typer()
cli.add_typer(agreements_app, name="agreements")
cli.add_typer(register_app, name="register")
runner = CliRunner()


def _entry(base: Path, dataset: str = "ccc.child-protection") -> Path:
    return base / "examples" / "register" / f"{dataset}.yaml"


def test_list_and_show(agreements_dir: Path) -> None:  # noqa: F811
    listed = runner.invoke(cli, ["register", "list", "--demo", "--json"])
    assert listed.exit_code == 0, listed.output
    ids = [e["id"] for e in json.loads(listed.output)]
    assert "ccc.child-protection" in ids
    shown = runner.invoke(cli, ["register", "show", "ccc.child-protection", "--demo"])
    assert shown.exit_code == 0, shown.output
    assert "asset owner: Director of Children's Services" in shown.output
    assert "ISA-SAFEGUARDING-CHILDREN v1" in shown.output
    overdue = runner.invoke(
        cli, ["register", "show", "ccc.child-protection", "--demo", "--at", "2027-06-01", "--json"]
    )
    assert json.loads(overdue.output)["next_review"]["overdue"] is True
    missing = runner.invoke(cli, ["register", "show", "no.such", "--demo"])
    assert missing.exit_code == 1


def test_verify_a_register_entry_and_a_tampered_one(agreements_dir: Path) -> None:  # noqa: F811
    good = runner.invoke(cli, ["register", "verify", "--demo", str(_entry(agreements_dir))])
    assert good.exit_code == 0, good.output
    assert "verified, signed by its owner calderbridge-city-council" in good.output
    path = _entry(agreements_dir)
    path.write_text(path.read_text().replace("OFFICIAL-SENSITIVE", "OFFICIAL"))
    bad = runner.invoke(cli, ["register", "verify", "--demo", str(path)])
    assert bad.exit_code == 1
    assert "counts for nothing" in bad.output


def test_agreements_verify_points_a_register_file_to_register_verify(
    agreements_dir: Path,  # noqa: F811
) -> None:
    result = runner.invoke(cli, ["agreements", "verify", "--demo", str(_entry(agreements_dir))])
    assert result.exit_code == 1
    assert "broker register verify" in result.output
    agreement = agreements_dir / "examples" / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
    wrong = runner.invoke(cli, ["register", "verify", "--demo", str(agreement)])
    assert wrong.exit_code == 1
    assert "use broker agreements verify" in wrong.output


def test_ropa_json_and_csv(agreements_dir: Path) -> None:  # noqa: F811
    out = runner.invoke(cli, ["register", "ropa", "--demo", "--party", HOSPITAL])
    assert out.exit_code == 0, out.output
    activities = json.loads(out.output)["activities"]
    assert activities
    assert all(a["categories_of_data_subjects"] == NOT_RECORDED for a in activities)
    as_csv = runner.invoke(cli, ["register", "ropa", "--demo", "--party", HOSPITAL, "--csv"])
    rows = list(csv.reader(io.StringIO(as_csv.output)))
    assert tuple(rows[0]) == ROPA_COLUMNS
    assert len(rows) == len(activities) + 1
    unknown = runner.invoke(cli, ["register", "ropa", "--demo", "--party", "no-such-party"])
    assert unknown.exit_code == 1


def test_ropa_csv_neutralises_formulas() -> None:
    rows = list(
        csv.reader(io.StringIO(ropa_csv([{"activity": "=HYPERLINK(1)", "retention": "-1"}])))
    )
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][ROPA_COLUMNS.index("retention")] == "'-1"
