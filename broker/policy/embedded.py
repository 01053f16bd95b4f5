"""The embedded engine: rego-cpp through PyPI ``regopy``, in process, nothing to install.

rego-cpp's plain ``query`` re-evaluates over all the data on every call; a compiled bundle
(``build`` once, then ``query_bundle_entrypoint``) does not. So the policy is compiled once per
bundle revision, when the engine is built, and each thread gets its own interpreter over the one
compiled bundle. The evaluation call releases the GIL, so threads evaluate in parallel; the many
tiny calls that build the input keep it (see ``_push``).

``decide`` evaluates ``data.sharing.compact_decision`` rather than ``data.sharing.decision``: on the
common allow it is the fast path's verdict without the parts that are copies of the matched flow's
data, which :func:`decision_from_fast_match` fills in exactly as the policy's ``fast_decision``
does (rego-cpp pays for every value it builds and returns). Anything else is the general
``full_decision``, as it is. ``evaluate`` still answers ``data.sharing.decision`` itself (the OPA
test double serves it).

Known limits of regopy 1.5 that shaped the policy (see docs/policy.md): ``with`` in Rego tests
crashes the interpreter, so Rego unit tests run on regorus; comprehensions take one iteration
variable; its JSON output leaves '"', '\\' and control characters in strings unescaped (such a
result fails closed).
"""

from __future__ import annotations

import ctypes
import json
import threading
from collections.abc import Mapping
from typing import Any

import regopy
from regopy import rego_shared as _rs

from broker.policy.bundle import PolicyBundle
from broker.policy.engine import ENTRYPOINT, Decision, decision_from_result, unavailable
from broker.policy.errors import BundleError

COMPACT_ENTRYPOINT = "sharing/compact_decision"
"""``data.sharing.compact_decision``: ``{"fast": match}`` or ``{"full": decision}``."""


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
        data_json = json.dumps(data)
        # Our own copy of exactly the data rego-cpp compiles, for decision_from_fast_match: a
        # caller changing its dict afterwards cannot make the two disagree.
        self._data: Mapping[str, Any] = json.loads(data_json)
        try:
            for path, source in sorted(modules.items()):
                builder.add_module(path, source)
            builder.add_data_json(data_json)
            self._bundle = builder.build(None, [ENTRYPOINT, COMPACT_ENTRYPOINT])
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

    def evaluate(self, policy_input: Mapping[str, Any], entrypoint: str = ENTRYPOINT) -> Any:
        """The raw JSON value of ``entrypoint`` (default ``data.sharing.decision``), or ``None``
        when undefined.

        Raises :class:`regopy.RegoError` or ``ValueError`` when evaluation fails.
        """
        interp = self._interpreter()
        handle = _input_handle(policy_input)
        try:
            if _SET_INPUT(interp._impl, handle) != 0:
                raise ValueError("rego-cpp refused the input")
        finally:
            _FREE_INPUT(handle)
        # The low-level calls, not ``Interpreter.query_bundle_entrypoint``: its ``Output`` parses
        # the JSON once more, and its length is 1 even when the result is undefined (regopy 1.5.2).
        # The evaluation releases the GIL; reading and freeing the output keep it.
        handle = _rs.rego_bundle_query_entrypoint(interp._impl, self._bundle._impl, entrypoint)
        try:
            size = _OUTPUT_JSON_SIZE(handle)
            buffer = ctypes.create_string_buffer(size)
            if _OUTPUT_JSON(handle, buffer, size) != 0:
                raise ValueError("evaluation failed: the output could not be read")
            text = buffer.value.decode("utf-8")
            if not _OUTPUT_OK(handle):
                raise ValueError(f"evaluation failed: {_first_line(text)}")
        finally:
            _FREE_OUTPUT(handle)
        if text == "undefined":
            return None
        # rego-cpp reports some evaluation errors as an ``ok`` output that is not JSON.
        parsed = json.loads(text)
        if not isinstance(parsed, dict) or len(parsed.get("expressions", ())) != 1:
            raise ValueError("unexpected output shape")
        return parsed["expressions"][0]

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        try:
            compact = self.evaluate(policy_input, COMPACT_ENTRYPOINT)
            result = expand_compact(compact, self._data, policy_input)
        except (regopy.RegoError, ValueError, KeyError, TypeError) as e:
            return unavailable(self._revision, f"evaluation failed: {_first_line(str(e))}")
        return decision_from_result(result, self._revision, policy_input)


def expand_compact(compact: Any, data: Mapping[str, Any], policy_input: Mapping[str, Any]) -> Any:
    """The value of ``data.sharing.decision`` from that of ``data.sharing.compact_decision``.

    Pure. ``None`` (undefined) stays ``None``; anything that is not one of the two shapes is
    returned as it is, for :func:`decision_from_result` to refuse (fail closed).
    """
    if isinstance(compact, dict) and len(compact) == 1:
        if "full" in compact:
            return compact["full"]
        if "fast" in compact:
            return decision_from_fast_match(compact["fast"], data, policy_input)
    return compact


def decision_from_fast_match(
    match: Mapping[str, Any], data: Mapping[str, Any], policy_input: Mapping[str, Any]
) -> dict[str, Any]:
    """What the policy's ``fast_decision`` builds from ``fast_match``: the same keys, the same
    values, copied from the matched flow of the compiled ``data``. Pure.

    Raises ``KeyError`` or ``TypeError`` when the match names a flow that is not in the data.
    """
    agreement_id = policy_input["agreement_id"]
    agreement = data["isa"]["agreements"][agreement_id]
    flow_id = match["flow_id"]
    flow = agreement["flows"][flow_id]
    return {
        "allow": True,
        "mode": "fetch",
        "basis": "agreement",
        "released_fields": match["released_fields"],
        "withheld_fields": match["withheld_fields"],
        "verified_claims": [],
        "obligations": {
            "notify_provider": flow["notify_provider"],
            "retain_days": flow["retention_days"],
            "review_break_glass": False,
            "subject_access_hold_days": flow["subject_access_hold_days"],
        },
        "reasons": [],
        "caller_reasons": [],
        "matched": {
            "agreement_id": agreement_id,
            "agreement_version": agreement["version"],
            "agreement_digest": agreement["digest"],
            "flow_id": flow_id,
            "provider": flow["provider"],
            "lawful_basis": flow["lawful_basis"],
        },
    }


def _holding_the_gil() -> Any:
    # The input is built with a few dozen calls of well under a microsecond each, set (copied,
    # about 15 us), and the output read and freed with a few more calls. Through ``ctypes.CDLL``
    # (how regopy loads rego-cpp) every call releases and re-takes the GIL, and with two threads
    # deciding at once a re-take waits for the other thread's Python work: measured, 0.6-0.8
    # waits per decision, against 0.1 when these calls go through ``ctypes.PyDLL``, which keeps
    # the GIL. The evaluation itself (about 270 us) still goes through regopy's ``CDLL`` and
    # releases it, so threads evaluate in parallel.
    lib = ctypes.PyDLL(_rs.rego._name)
    status = ctypes.c_uint32
    handle = ctypes.c_void_p
    lib.regoSetInput.restype = status
    lib.regoSetInput.argtypes = [handle, handle]
    lib.regoNewInput.restype = handle
    lib.regoNewInput.argtypes = []
    lib.regoFreeInput.restype = None
    lib.regoFreeInput.argtypes = [handle]
    lib.regoFreeOutput.restype = None
    lib.regoFreeOutput.argtypes = [handle]
    lib.regoOutputOk.restype = ctypes.c_bool
    lib.regoOutputOk.argtypes = [handle]
    lib.regoOutputJSONSize.restype = ctypes.c_uint32
    lib.regoOutputJSONSize.argtypes = [handle]
    lib.regoOutputJSON.restype = status
    lib.regoOutputJSON.argtypes = [handle, ctypes.POINTER(ctypes.c_char), ctypes.c_uint32]
    for name, args in {
        "regoInputString": [handle, ctypes.c_char_p],
        "regoInputBoolean": [handle, ctypes.c_bool],
        "regoInputInt": [handle, ctypes.c_int64],
        "regoInputFloat": [handle, ctypes.c_double],
        "regoInputNull": [handle],
        "regoInputObjectItem": [handle],
        "regoInputObject": [handle, ctypes.c_uint32],
        "regoInputArray": [handle, ctypes.c_uint32],
    }.items():
        function = getattr(lib, name)
        function.restype = status
        function.argtypes = args
    return lib


_LIB = _holding_the_gil()


_SET_INPUT = _LIB.regoSetInput
_NEW_INPUT = _LIB.regoNewInput
_FREE_INPUT = _LIB.regoFreeInput
_FREE_OUTPUT = _LIB.regoFreeOutput
_OUTPUT_OK = _LIB.regoOutputOk
_OUTPUT_JSON_SIZE = _LIB.regoOutputJSONSize
_OUTPUT_JSON = _LIB.regoOutputJSON
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_STRING = _LIB.regoInputString
_BOOLEAN = _LIB.regoInputBoolean
_INT = _LIB.regoInputInt
_FLOAT = _LIB.regoInputFloat
_NULL = _LIB.regoInputNull
_ITEM = _LIB.regoInputObjectItem
_OBJECT = _LIB.regoInputObject
_ARRAY = _LIB.regoInputArray


def _push(handle: Any, value: Any) -> None:
    # regopy's own converter (``regopy.Input``) spends most of its time in ABC isinstance checks
    # and string buffers: this one dispatches on exact JSON types and passes bytes directly. It
    # calls the same C functions in the same order, so the input rego-cpp sees is the same.
    kind = type(value)
    if kind is str:
        code = _STRING(handle, value.encode("utf-8"))
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise ValueError("object keys passed to the policy must be strings")
            # A nonzero status from any call is an error, so one test after the three suffices.
            code = _STRING(handle, key.encode("utf-8"))
            _push(handle, item)
            if code | _ITEM(handle):
                raise ValueError("rego-cpp refused an object item")
        code = _OBJECT(handle, len(value))
    elif kind is bool:
        code = _BOOLEAN(handle, value)
    elif kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            # ctypes would silently keep the low 64 bits.
            raise ValueError("cannot pass an integer beyond 64 bits to the policy")
        code = _INT(handle, value)
    elif kind is list:
        for item in value:
            _push(handle, item)
        code = _ARRAY(handle, len(value))
    elif value is None:
        code = _NULL(handle)
    elif kind is float:
        code = _FLOAT(handle, value)
    else:
        raise ValueError(f"cannot pass a {kind.__name__} to the policy")
    if code != 0:
        raise ValueError(f"rego-cpp refused an input value of type {kind.__name__}")


def _input_handle(value: Mapping[str, Any]) -> Any:
    """A rego-cpp input built from JSON-shaped ``value``; the caller frees it."""
    handle = _NEW_INPUT()
    try:
        _push(handle, dict(value))
    except ctypes.ArgumentError as e:
        _FREE_INPUT(handle)
        raise ValueError(f"cannot pass a value to the policy: {e}") from e
    except BaseException:
        _FREE_INPUT(handle)
        raise
    return handle


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
