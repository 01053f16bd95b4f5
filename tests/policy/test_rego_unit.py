from __future__ import annotations

from pathlib import Path

from broker.policy.regorus_engine import run_rego_tests
from tests.policy.fixtures import POLICY_DIR


def test_rego_unit_tests_pass() -> None:
    results = run_rego_tests(POLICY_DIR)
    assert len(results) >= 10
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failed


def test_a_failing_rego_test_is_reported(tmp_path: Path) -> None:
    for source in POLICY_DIR.glob("*.rego"):
        (tmp_path / source.name).write_text(source.read_text())
    with (tmp_path / "sharing_test.rego").open("a") as f:
        f.write("\ntest_deliberately_wrong if {\n\tdecide({}).allow == false\n}\n")
    results = {r.name: r.passed for r in run_rego_tests(tmp_path)}
    assert results["test_deliberately_wrong"] is False
    assert results["test_role_refused"] is True
