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
from regopy import rego_shared as _rs

from broker.policy.bundle import PolicyBundle
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

    @classmethod
    def from_bundle(cls, bundle: PolicyBundle) -> EmbeddedEngine:
        """The engine for a verified bundle: the ``engine_factory`` of
        :class:`broker.policy.holder.PolicyHolder` in embedded mode."""
        return cls(bundle.modules, bundle.data, bundle.revision)

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
        handle = _input_handle(policy_input)
        try:
            _rs.rego_set_input(interp._impl, handle)
        finally:
            _rs.rego_free_input(handle)
        # The low-level calls, not ``Interpreter.query_bundle_entrypoint``: its ``Output`` parses
        # the JSON once more, and its length is 1 even when the result is undefined (regopy 1.5.2).
        handle = _rs.rego_bundle_query_entrypoint(interp._impl, self._bundle._impl, ENTRYPOINT)
        try:
            text = _rs.rego_output_string(handle)
            if not _rs.rego_output_ok(handle):
                raise ValueError(f"evaluation failed: {_first_line(text)}")
        finally:
            _rs.rego_free_output(handle)
        if text == "undefined":
            return None
        parsed = json.loads(text)
        if not isinstance(parsed, dict) or len(parsed.get("expressions", ())) != 1:
            raise ValueError("unexpected output shape")
        return parsed["expressions"][0]

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        try:
            result = self.evaluate(policy_input)
        except (regopy.RegoError, ValueError) as e:
            return unavailable(self._revision, f"evaluation failed: {_first_line(str(e))}")
        return decision_from_result(result, self._revision, policy_input)


_LIB = _rs.rego


def _push(handle: Any, value: Any) -> None:
    # regopy's own converter (``regopy.Input``) spends most of its time in ABC isinstance checks
    # and string buffers: this one dispatches on exact JSON types and passes bytes directly. It
    # calls the same C functions in the same order, so the input rego-cpp sees is the same.
    kind = type(value)
    if kind is str:
        code = _LIB.regoInputString(handle, value.encode("utf-8"))
    elif kind is bool:
        code = _LIB.regoInputBoolean(handle, value)
    elif kind is int:
        code = _LIB.regoInputInt(handle, value)
    elif kind is dict:
        for key, item in value.items():
            _push(handle, key)
            _push(handle, item)
            if _LIB.regoInputObjectItem(handle) != 0:
                raise ValueError("rego-cpp refused an object item")
        code = _LIB.regoInputObject(handle, len(value))
    elif kind is list:
        for item in value:
            _push(handle, item)
        code = _LIB.regoInputArray(handle, len(value))
    elif value is None:
        code = _LIB.regoInputNull(handle)
    elif kind is float:
        code = _LIB.regoInputFloat(handle, value)
    else:
        raise ValueError(f"cannot pass a {kind.__name__} to the policy")
    if code != 0:
        raise ValueError(f"rego-cpp refused an input value of type {kind.__name__}")


def _input_handle(value: Mapping[str, Any]) -> Any:
    """A rego-cpp input built from JSON-shaped ``value``; the caller frees it."""
    handle = _rs.rego_new_input()
    try:
        _push(handle, dict(value))
    except BaseException:
        _rs.rego_free_input(handle)
        raise
    return handle


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
