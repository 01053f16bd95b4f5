"""The same decisions as OPA itself: the embedded engine against OPA's own evaluator (Go).

OPA v1.20.2's ``rego`` package, loaded from PyPI's ``opa-golib-python-bindings`` wheel
(tests/policy/opa_golib.py; test-only), is given the files of the bundle the broker serves (its
policy and its data). Both engines decide the same inputs, built by ``build_input`` as every
exchange's are: 5,000 generated requests and the edge cases where the engines once differed.
The full decisions must be equal: the raw ``data.sharing.decision`` and the typed
:class:`Decision` the broker acts on (allow, released and withheld fields with reasons,
obligations, reasons, matched flow).

Then each of the five fixes of broker/core/names.py is reverted in turn (the checks ``build_input``
makes before any engine): each reversion must bring a difference back, so this test can fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from broker.core import names
from broker.core.errors import InvalidInput
from broker.policy import input as input_module
from broker.policy.bundle import PolicyBundle, build_bundle
from broker.policy.compiled import compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.engine import ENGINE_UNAVAILABLE, decision_from_result
from broker.policy.input import PolicyRequest, build_input
from tests.policy import differential
from tests.policy.fixtures import policy_modules
from tests.policy.opa_golib import OpaEvaluator, Unavailable, load_module

GENERATED = 5_000

#: Every reason of docs/policy.md ("Reasons", and the withheld fields' reasons) but the
#: fail-closed one, which no well-formed input may give.
REASONS = (
    r"no agreement was named and the dataset is not open data",
    r"agreement '.*' is not in force \(unknown, unsigned or invalid\)",
    r"agreement '.*' has been revoked",
    r"agreement '.*' takes effect on \d{4}-\d\d-\d\d",
    r"agreement '.*' expired on \d{4}-\d\d-\d\d",
    r"dataset '.*' is not in the information asset register",
    r"dataset '.*' is not covered by agreement '.*'",
    r"purpose '.*' is not covered by agreement '.*'",
    r"purpose '.*' is not a purpose of dataset '.*' under agreement '.*'",
    r"party '.*' is not a recipient of dataset '.*' for purpose '.*' under agreement '.*'",
    r"role '.*' may not make requests under flow '.*' of agreement '.*'",
    r"agreement '.*' requires a case reference for dataset '.*'",
    r"agreement '.*' requires recorded consent and none is on record",
    r"agreement '.*' requires consent and the subject has withdrawn it",
    r"agreement '.*' requires consent and the subject's consent covers document types .+",
    r"break-glass is not allowed under flow '.*' of agreement '.*'",
    r"role '.*' may not use break-glass under agreement '.*'",
    r"break-glass needs a justification",
    r"break-glass needs a verified user",
    r"this flow needs a verified user",
    r"flow '.*' of agreement '.*' needs a user named by the requesting system",
    r"agreement '.*' allows requests for dataset '.*' only in office hours \(.+\); it is .+ in the "
    r"UK",
    r"flow '.*' of agreement '.*' is verification-only: .+",
    r"flow '.*' of agreement '.*' does not answer verification questions",
    r"a verification request needs at least one claim",
    r"claim '.*' cannot be verified under agreement '.*'",
    r"dataset '.*' is open data: fetch it instead of verifying claims",
    r"none of the requested fields is permitted by agreement '.*'",
    r"none of the requested fields is in the catalogue of dataset '.*'",
    r"mode '.*' is not known",
)  # fmt: skip
WITHHELD = (
    r"not in the catalogue of dataset '.*'",
    r"opened only by break-glass",
    r"not permitted by agreement '.*'",
    r"the request was refused",
)


def _opa_bindings() -> Any:
    """The ``opa_bindings`` module; skips where it cannot be fetched, except in CI (CI=true),
    where the differential leg must run."""
    try:
        return load_module()
    except Unavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: OPA's evaluator must run here: {e}")
        pytest.skip(f"OPA's evaluator (opa-golib-python-bindings) is not available: {e}")


@pytest.fixture(scope="module")
def served() -> PolicyBundle:
    bundle, _ = build_bundle(policy_modules(), compile_data(differential.DATA))
    return bundle


@pytest.fixture(scope="module")
def opa(served: PolicyBundle) -> Iterator[OpaEvaluator]:
    module = _opa_bindings()
    evaluator = OpaEvaluator(module, dict(served.modules), dict(served.data))
    yield evaluator
    evaluator.close()


@pytest.fixture(scope="module")
def ours(served: PolicyBundle) -> EmbeddedEngine:
    return EmbeddedEngine.from_bundle(served)


@dataclasses.dataclass
class Outcome:
    refused: bool = False
    """``build_input`` refused the request: no engine saw it."""
    difference: str | None = None
    decision: Any = None


def _raw(evaluate: Any, policy_input: dict[str, Any]) -> Any:
    try:
        return evaluate(policy_input)
    except Exception as e:  # an engine error is an answer to compare
        return f"error: {type(e).__name__}"


def compare(
    ours: EmbeddedEngine, opa: OpaEvaluator, request: PolicyRequest, now: dt.datetime
) -> Outcome:
    try:
        policy_input = build_input(request, now)
    except InvalidInput:
        return Outcome(refused=True)
    except (OverflowError, ValueError):
        return Outcome(refused=True)  # only with a fix reverted: Python cannot even build it
    their_raw = _raw(opa.decision, policy_input)
    our_raw = _raw(ours.evaluate, policy_input)
    theirs = decision_from_result(their_raw, ours.revision, policy_input)
    mine = ours.decide(policy_input)
    if mine != theirs or our_raw != their_raw:
        return Outcome(difference=f"{policy_input!r}\n ours: {mine}\n OPA:  {theirs}")
    return Outcome(decision=mine)


def _base(served: PolicyBundle) -> PolicyRequest:
    return PolicyRequest(
        client_id="generated-client",
        party="R9Z",
        user_id="nurse@example.org",
        user_role="safeguarding-nurse",
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        agreement_id="ISA-SAFEGUARDING-CHILDREN",
        fields=("name.family", "social_worker.name"),
        case_reference="CASE-1",
        user_assurance="verified",
    )


def test_generated_requests_decide_as_opa_does(
    ours: EmbeddedEngine, opa: OpaEvaluator, served: PolicyBundle
) -> None:
    allows = 0
    reasons: Counter[str] = Counter()
    withheld: Counter[str] = Counter()
    differences = []
    requests = list(differential.generated(dict(served.data), GENERATED))
    # A mode no exchange sends (build_input refuses it), put straight into a few inputs.
    for request, now in requests:
        outcome = compare(ours, opa, request, now)
        assert not outcome.refused, request
        if outcome.difference is not None:
            differences.append(outcome.difference)
            continue
        decision = outcome.decision
        allows += decision.allow
        assert ENGINE_UNAVAILABLE not in decision.reasons, request
        reasons.update(_kind(REASONS, r) for r in decision.reasons)
        withheld.update(_kind(WITHHELD, w.reason) for w in decision.withheld_fields)
    policy_input = build_input(requests[0][0], requests[0][1])
    odd = {**policy_input, "mode": "attest"}
    assert ours.decide(odd) == decision_from_result(opa.decision(odd), ours.revision, odd)
    reasons.update(_kind(REASONS, r) for r in ours.decide(odd).reasons)

    assert not differences, f"{len(differences)} differences, the first:\n{differences[0]}"
    assert allows >= 0.3 * GENERATED, f"only {allows} allows"
    assert set(reasons) == set(REASONS), f"reasons never given: {set(REASONS) - set(reasons)}"
    assert set(withheld) == set(WITHHELD), f"never withheld: {set(WITHHELD) - set(withheld)}"


def _kind(patterns: tuple[str, ...], text: str) -> str:
    matching = [p for p in patterns if re.fullmatch(p, text)]
    assert len(matching) == 1, f"{text!r} matches {matching}"
    return matching[0]


def test_edge_inputs_decide_as_opa_does_or_never_reach_an_engine(
    ours: EmbeddedEngine, opa: OpaEvaluator, served: PolicyBundle
) -> None:
    base = _base(served)
    assert compare(ours, opa, base, differential.BASE_NOW).decision.allow
    seen: Counter[tuple[str, bool]] = Counter()
    for kind, request, now in differential.edges(base):
        outcome = compare(ours, opa, request, now)
        assert outcome.difference is None, outcome.difference
        seen[kind, outcome.refused] += 1
    # Whitespace around a case reference is decided (and stripped alike), as are quotes in text
    # (which no reason quotes); every other edge never reaches an engine.
    decided = {kind for (kind, refused), n in seen.items() if n and not refused}
    refused = {kind for (kind, refused), n in seen.items() if n and refused}
    assert decided == {"whitespace", "quote in text"}
    assert refused == {"whitespace", "quote", "control", "backslash", "time"} | {
        "control in text",
        "backslash in text",
    }


def _allowing(extra: str) -> Any:
    """An identifier check that also lets the characters of class ``extra`` through."""

    def check(value: str) -> bool:
        if extra == "control":
            value = "".join("a" if unicodedata.category(c) in ("Cc", "Cf") else c for c in value)
        else:
            value = value.replace({"quote": '"', "backslash": "\\"}[extra], "a")
        return names.is_identifier(value)

    return check


REVERSIONS = {
    "whitespace": {
        "trim_space": lambda text: text,
        "free_text_problem": lambda text: None,
    },
    "quote": {"is_identifier": _allowing("quote")},
    "control": {"is_identifier": _allowing("control")},
    "backslash": {"is_identifier": _allowing("backslash")},
    "time": {"instant_problem": lambda when: None},
}


@pytest.mark.parametrize("fix", sorted(REVERSIONS))
def test_reverting_a_fix_brings_a_difference_back(
    ours: EmbeddedEngine,
    opa: OpaEvaluator,
    served: PolicyBundle,
    fix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, replacement in REVERSIONS[fix].items():
        monkeypatch.setattr(input_module, name, replacement)
    found = [
        outcome.difference
        for kind, request, now in differential.edges(_base(served))
        if kind == fix and (outcome := compare(ours, opa, request, now)).difference is not None
    ]
    assert found, f"without the {fix} fix the engines still agree on every edge input"


def test_trim_space_strips_what_opas_trim_space_strips() -> None:
    engine = _opa_bindings().OpaEngine()
    engine.add_policy("t.rego", "package t\n\nstripped := [trim_space(s) | some s in input]\n")
    candidates = [
        chr(c)
        for c in range(0x3100)
        if chr(c).isspace() or unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp", "Cc", "Cf")
    ]
    texts = [f"{c}a{c}" for c in candidates if c != "\x00"]
    assert engine.eval_document("t.stripped", texts) == [names.trim_space(t) for t in texts]
    engine.close()
