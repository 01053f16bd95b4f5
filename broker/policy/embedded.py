"""The embedded engine: rego-cpp through PyPI ``regopy``, in process, nothing to install.

rego-cpp's plain ``query`` re-evaluates over all the data on every call; a compiled bundle
(``build`` once, then ``query_bundle_entrypoint``) does not. So the policy is compiled once per
bundle revision, when the engine is built, and each thread gets its own interpreter over the one
compiled bundle (rego-cpp releases the GIL, so threads run in parallel).

Known limits of regopy 1.5 that shaped the policy (see docs/policy.md): ``with`` in Rego tests
crashes the interpreter, so Rego unit tests run on regorus; comprehensions take one iteration
variable.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import regopy

from broker.policy.engine import ENTRYPOINT, Decision, decision_from_result, unavailable
from broker.policy.errors import BundleError


class EmbeddedEngine:
    """Decides with one compiled revision of the policy. Immutable after construction;
    thread-safe."""

    def __init__(self, modules: Mapping[str, str], data: Mapping[str, Any], revision: str) -> None:
        """Compile ``modules`` (path -> Rego source) over ``data``.

        Raises :class:`BundleError` when the policy does not parse or compile.
        """
        self._revision = revision
        self._local = threading.local()
        builder = regopy.Interpreter()
        try:
            for path, source in sorted(modules.items()):
                builder.add_module(path, source)
            builder.add_data_json(json.dumps(data))
            self._bundle = builder.build(None, [ENTRYPOINT])
        except regopy.RegoError as e:
            raise BundleError(f"policy does not compile: {_first_line(str(e))}") from e
        if not self._bundle.ok:
            raise BundleError("policy does not compile")
        self._builder = builder  # keeps the compiled bundle's owner alive

    @property
    def revision(self) -> str:
        return self._revision

    def _interpreter(self) -> Any:
        interp = getattr(self._local, "interp", None)
        if interp is None:
            interp = regopy.Interpreter()
            self._local.interp = interp
        return interp

    def evaluate(self, policy_input: Mapping[str, Any]) -> Any:
        """The raw JSON value of ``data.sharing.decision``, or ``None`` when undefined.

        Raises :class:`regopy.RegoError` or ``ValueError`` when evaluation fails.
        """
        interp = self._interpreter()
        interp.set_input_term(json.dumps(policy_input))
        output = interp.query_bundle_entrypoint(self._bundle, ENTRYPOINT)
        if not output.ok():
            raise ValueError(f"evaluation failed: {_first_line(str(output))}")
        if len(output) == 0:
            return None
        return json.loads(output.expressions().json())[0]

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        try:
            result = self.evaluate(policy_input)
        except (regopy.RegoError, ValueError) as e:
            return unavailable(self._revision, f"evaluation failed: {_first_line(str(e))}")
        return decision_from_result(result, self._revision)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
