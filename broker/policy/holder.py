"""The live policy: the current engine, swapped atomically when a new bundle arrives.

- :meth:`PolicyHolder.load` verifies a bundle and builds its engine *before* swapping it in, so a
  bad bundle (tampered, badly signed, not compiling) never replaces a good one; the refusal is kept
  for ``/readyz``.
- :meth:`PolicyHolder.decide` takes the engine reference once, so a request finishes on the
  revision it started with even if a swap happens meanwhile; the decision records that revision.
- Revocations are checked before the engine: a revoked agreement is denied at once, whatever the
  engine's bundle says, because rebuilding the bundle takes seconds with thousands of agreements.
- With an OPA sidecar (``max_revision_lag_seconds``), a decision made on a revision other than the
  bundle the broker serves is refused as ``policy engine unavailable`` once that bundle has been
  served for longer than the lag (OPA polls every 1 to 2 s): a revoked or changed agreement
  cannot keep deciding on an OPA that stopped fetching. :meth:`behind` tells ``/readyz``.
- An optional decision cache keyed by revision and the whole input returns exactly what the engine
  returned for that input under that revision.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from broker.policy.bundle import PolicyBundle, VerificationKey, load_bundle
from broker.policy.engine import (
    ENGINE_UNAVAILABLE,
    GENERIC_REFUSAL,
    Decision,
    PolicyEngine,
    unavailable,
)
from broker.policy.errors import BundleError

EngineFactory = Callable[[PolicyBundle], PolicyEngine]
"""Builds the engine for a verified bundle; raises ``BundleError`` when its policy does not compile.
Embedded mode: ``EmbeddedEngine.from_bundle``. OPA mode: :func:`opa_factory`."""


def opa_factory(engine: PolicyEngine, check_compiles: EngineFactory | None = None) -> EngineFactory:
    """OPA mode: every verified bundle is published for OPA to fetch (``current_bundle``) and
    decisions go to ``engine`` (an ``OpaEngine``). ``check_compiles`` (e.g.
    ``EmbeddedEngine.from_bundle``) refuses a bundle whose policy does not compile before OPA sees
    it; leave it out where compiling twice is too slow."""

    def factory(bundle: PolicyBundle) -> PolicyEngine:
        if check_compiles is not None:
            check_compiles(bundle)
        return engine

    return factory


@dataclass(frozen=True)
class HolderStatus:
    """What ``/readyz`` reports about the policy."""

    ready: bool
    revision: str | None
    last_refusal: str | None
    """Why the latest bundle offered was refused, while an older good one keeps serving."""


class DecisionCache:
    """A bounded LRU of decisions keyed by (revision, canonical JSON of the input). Thread-safe."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], Decision] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(revision: str, policy_input: Mapping[str, Any]) -> tuple[str, str]:
        return revision, json.dumps(policy_input, sort_keys=True, separators=(",", ":"))

    def get(self, key: tuple[str, str]) -> Decision | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], decision: Decision) -> None:
        with self._lock:
            self._entries[key] = decision
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class PolicyHolder:
    """Holds the engine that decides now. Thread-safe; swaps are atomic (one reference)."""

    def __init__(
        self,
        engine_factory: EngineFactory,
        keys: Mapping[str, VerificationKey] | None = None,
        *,
        require_signature: bool = True,
        cache: DecisionCache | None = None,
        max_revision_lag_seconds: float | None = None,
        probe: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_revision_lag_seconds``: OPA mode, how long the engine may decide on an older
        revision than the bundle served (None: the engine is built from the bundle, never behind).
        ``probe``: asks the engine which revision it holds now (``OpaEngine.reported_revision``).
        """
        self._max_lag = max_revision_lag_seconds
        self._probe = probe
        self._clock = clock
        self._loaded_at = clock()
        self._factory = engine_factory
        self._keys = dict(keys or {})
        self._require_signature = require_signature
        self._cache = cache
        self._engine: PolicyEngine | None = None
        self._bundle: tuple[str, bytes] | None = None
        self._revoked: frozenset[str] = frozenset()
        self._last_refusal: str | None = None
        self._lock = threading.Lock()

    def load(self, blob: bytes) -> str:
        """Verify ``blob``, build its engine and swap it in. Returns the new revision.

        Raises :class:`BundleError` (and records it for :meth:`status`) when the bundle is refused;
        the engine serving before keeps serving.
        """
        try:
            bundle = load_bundle(blob, self._keys, require_signature=self._require_signature)
            engine = self._factory(bundle)
        except BundleError as e:
            with self._lock:
                self._last_refusal = e.detail
            raise
        with self._lock:
            self._engine = engine
            if self._bundle is None or self._bundle[0] != bundle.revision:
                self._loaded_at = self._clock()
            # The bundle's own revision (an OPA engine's is the one OPA last reported).
            self._bundle = (bundle.revision, blob)
            self._last_refusal = None
        return bundle.revision

    def install(self, engine: PolicyEngine) -> None:
        """Swap in an engine already built (the OPA engine, or tests); no bundle to serve then."""
        with self._lock:
            self._engine = engine
            self._bundle = None
            self._last_refusal = None

    def close(self) -> None:
        """Release the engine's connections (an OPA engine's HTTP pool)."""
        close = getattr(self._engine, "close", None)
        if callable(close):
            close()

    @property
    def current_bundle(self) -> tuple[str, bytes] | None:
        """(revision, tar.gz bytes) of the bundle serving now, for ``GET /v1/policy/bundle``."""
        return self._bundle

    def set_revoked(self, agreement_ids: Iterable[str]) -> None:
        """Replace the set of revoked agreement ids, consulted before any engine."""
        self._revoked = frozenset(agreement_ids)

    def revoke(self, agreement_id: str) -> None:
        with self._lock:
            self._revoked = self._revoked | {agreement_id}

    @property
    def revoked(self) -> frozenset[str]:
        """The agreement ids denied before any engine."""
        return self._revoked

    @property
    def engine(self) -> PolicyEngine | None:
        return self._engine

    def status(self) -> HolderStatus:
        engine = self._engine
        return HolderStatus(
            ready=engine is not None,
            revision=None if engine is None else engine.revision,
            last_refusal=self._last_refusal,
        )

    def behind(self, now: float | None = None) -> str | None:
        """Why the engine is not deciding on the bundle served (it has held an older revision
        for longer than the lag), or None. Asks the engine afresh (``probe``) before saying so."""
        if self._max_lag is None or self._engine is None or self._bundle is None:
            return None
        late = self._late(self._engine.revision, now)
        if late is not None and self._probe is not None:
            self._probe()
            late = self._late(self._engine.revision, now)
        return late

    def _late(self, revision: str, now: float | None) -> str | None:
        current, max_lag = self._bundle, self._max_lag
        if max_lag is None or current is None or revision == current[0]:
            return None
        waited = (self._clock() if now is None else now) - self._loaded_at
        if waited <= max_lag:
            return None
        return (
            f"the policy engine holds revision {revision}, behind the bundle served "
            f"({current[0]}) for {waited:.1f} s (more than {max_lag:g} s)"
        )

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        """Decide with the engine current when the call starts. Never raises: no engine, or a
        failing
        one, denies with ``policy engine unavailable``."""
        engine = self._engine  # one read: a concurrent swap does not affect this request
        if engine is None:
            return unavailable("none", "no policy bundle loaded")
        revision = engine.revision
        agreement_id = policy_input.get("agreement_id")
        if isinstance(agreement_id, str) and agreement_id in self._revoked:
            return _revoked(agreement_id, engine.decide(policy_input))
        if self._cache is None:
            return self._in_time(engine.decide(policy_input))
        key = DecisionCache.key(revision, policy_input)
        cached = self._cache.get(key)
        if cached is not None:
            return self._in_time(cached)
        decision = engine.decide(policy_input)
        if decision.revision == revision:
            self._cache.put(key, decision)
        return self._in_time(decision)

    def _in_time(self, decision: Decision) -> Decision:
        """The decision, unless it was made on a revision behind the served bundle for too long."""
        if self._max_lag is None or (not decision.allow and ENGINE_UNAVAILABLE in decision.reasons):
            return decision
        late = self._late(decision.revision, None)
        return decision if late is None else unavailable(decision.revision, late)


def _revoked(agreement_id: str, decision: Decision) -> Decision:
    """Deny whatever the engine said. The engine still runs, only to learn whether the caller is a
    party to the agreement (and so may see the specific reason) or gets the generic refusal."""
    reason = f"agreement '{agreement_id}' has been revoked"
    reasons = (reason, *(r for r in decision.reasons if r != reason))
    caller = (GENERIC_REFUSAL,) if GENERIC_REFUSAL in decision.caller_reasons else reasons
    return Decision(
        allow=False,
        revision=decision.revision,
        mode=decision.mode,
        reasons=reasons,
        caller_reasons=caller,
        matched=decision.matched,
    )
