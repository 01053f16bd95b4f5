"""regorus (Microsoft's Rust Rego engine, PyPI ``gordon-to-regorus``): tests and Rego unit tests
only.

Two things live here, both needing the ``dev`` extra:

- :class:`RegorusEngine`, a third, independently written engine that the decision table also runs
  on: two engines written apart agreeing is our evidence that the policy means what OPA would make
  of it, since no OPA binary runs here. It is not offered as a production engine.
- :func:`run_rego_tests`, the runner behind ``broker policy test``. Rego unit tests need ``with``
  (to set ``input`` and ``data``), which crashes regopy 1.5, so they run on regorus.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.policy.engine import Decision, decision_from_result, unavailable
from broker.policy.errors import BundleError, PolicyError

_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]+)\s+if\b", re.MULTILINE)
_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)


def _regorus() -> Any:
    try:
        import regorus
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PolicyError("regorus is not installed: install the dev extra") from e
    return regorus


class RegorusEngine:
    """The policy on regorus. One engine per thread (regorus engines are not shared across
    threads)."""

    def __init__(self, modules: Mapping[str, str], data: Mapping[str, Any], revision: str) -> None:
        regorus = _regorus()
        self._revision = revision
        self._lock = threading.Lock()
        engine = regorus.Engine()
        try:
            for path, source in sorted(modules.items()):
                engine.add_policy(path, source)
            engine.add_data_json(json.dumps(data))
        except RuntimeError as e:
            raise BundleError(f"policy does not compile: {e}") from e
        self._engine = engine

    @property
    def revision(self) -> str:
        return self._revision

    def evaluate(self, policy_input: Mapping[str, Any]) -> Any:
        """The raw value of ``data.sharing.decision`` or ``None`` when undefined."""
        with self._lock:
            self._engine.set_input_json(json.dumps(policy_input))
            text = self._engine.eval_rule_as_json("data.sharing.decision")
        value = json.loads(text)
        # regorus gives an undefined rule as the string "<undefined>".
        return None if value == "<undefined>" else value

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        try:
            result = self.evaluate(policy_input)
        except (RuntimeError, ValueError) as e:
            return unavailable(self._revision, f"evaluation failed: {e}")
        return decision_from_result(result, self._revision, policy_input)


@dataclass(frozen=True)
class RegoTestResult:
    package: str
    name: str
    passed: bool
    detail: str = ""


def run_rego_tests(policy_dir: Path) -> list[RegoTestResult]:
    """Run every ``test_*`` rule of the ``*_test.rego`` files in ``policy_dir`` over all its
    modules.

    A test passes when its rule evaluates to ``true``. Raises :class:`BundleError` when a module
    does
    not compile.
    """
    regorus = _regorus()
    engine = regorus.Engine()
    files = sorted(policy_dir.glob("*.rego"))
    try:
        for path in files:
            engine.add_policy(path.name, path.read_text(encoding="utf-8"))
    except RuntimeError as e:
        raise BundleError(f"policy does not compile: {e}") from e
    results: list[RegoTestResult] = []
    for path in files:
        if not path.name.endswith("_test.rego"):
            continue
        source = path.read_text(encoding="utf-8")
        package_match = _PACKAGE.search(source)
        if package_match is None:
            raise BundleError(f"{path.name}: no package")
        package = package_match.group(1)
        for name in sorted(set(_TEST_RULE.findall(source))):
            try:
                value = json.loads(engine.eval_rule_as_json(f"data.{package}.{name}"))
                results.append(RegoTestResult(package, name, value is True, f"value {value!r}"))
            except RuntimeError as e:
                results.append(RegoTestResult(package, name, False, str(e).splitlines()[0]))
    return results
