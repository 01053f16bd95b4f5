"""The live policy: agreements directory -> verified agreements -> signed bundle -> engine.

:class:`PolicyRuntime` owns the reload loop. :meth:`refresh` re-reads the agreements directory,
compiles and signs a bundle, and hands it to the :class:`~broker.policy.holder.PolicyHolder`,
which verifies it like any other bundle before swapping engines (a refused bundle leaves the
previous revision serving). :meth:`poll` is called about twice a second: when the directory
changed it first applies new revocations on their own (one file verified, no rebuild: a
revocation denies within a second whatever the number of agreements) and records them in the
agreement state store at once, then rebuilds. It also rebuilds when the agreement state store
(shared by every instance on one database) records a revocation or a version the serving revision
was not judged against; a revocation recorded there is applied first on its own
(:meth:`apply_recorded_revocations`), so it denies on every instance within one poll of its own
whatever either rebuild costs (docs/policy.md, "Every instance").

:meth:`readiness` tells the truth about the revision serving: not ready while none is loaded or
while it is behind the agreements (the directory changed since it was read, or the store moved
on), so a load balancer sends no request to an instance deciding on an old state.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import structlog

from broker.agreements.errors import AgreementStoreUnavailableError
from broker.agreements.loader import (
    Layout,
    LoadResult,
    SignatureFileError,
    load_directory,
    read_signatures,
)
from broker.agreements.model import Revocation
from broker.agreements.parsing import DocumentError, parse_document_with_lines
from broker.agreements.signing import verify_detached
from broker.agreements.status import AgreementState, RevocationRecord
from broker.agreements.store import AgreementStateStore
from broker.core.errors import BrokerError
from broker.core.signing_key import SigningKey
from broker.policy.bundle import build_bundle, policy_modules
from broker.policy.compiled import compile_data
from broker.policy.from_agreements import policy_data, revoked_ids
from broker.policy.holder import PolicyHolder

log = structlog.get_logger("broker.policy")


@dataclass(frozen=True)
class RefreshOutcome:
    revision: str | None
    active: int
    problems: int
    error: str | None = None


def _fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    layout = Layout(root)
    entries = []
    for directory in (layout.isa_dir, layout.register_dir, layout.revocations_dir):
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class PolicyRuntime:
    def __init__(
        self,
        *,
        root: Path,
        policy_dir: Path,
        store: AgreementStateStore,
        holder: PolicyHolder,
        signing_key: SigningKey,
        known_parties: Callable[[], Collection[str]],
        demo: bool,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_in_force: Callable[[int], None] | None = None,
    ) -> None:
        """``on_in_force`` is told the number of agreements in force after every load and
        revocation (the ``broker_agreements_in_force`` gauge)."""
        self.root = root
        self.policy_dir = policy_dir
        self.store = store
        self.holder = holder
        self.signing_key = signing_key
        self.known_parties = known_parties
        self.demo = demo
        self.now = now
        self.on_in_force = on_in_force
        self.last: LoadResult | None = None
        self._state_tried: AgreementState | None = None
        """The store's state the latest rebuild was judged against (successful or not)."""
        self.last_error: str | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._seen_revocations: set[str] = set()
        self._lock = threading.Lock()

    def refresh(self) -> RefreshOutcome:
        """Rebuild from the directory. Never raises: a failure keeps the previous revision."""
        with self._lock:
            self._fingerprint = _fingerprint(self.root)
            try:
                result = load_directory(
                    self.root,
                    self.store,
                    known_parties=set(self.known_parties()),
                    now=self.now(),
                    demo=self.demo,
                )
                self._state_tried = result.state
                data = compile_data(policy_data(result))
                _, blob = build_bundle(policy_modules(self.policy_dir), data, self.signing_key)
                revision = self.holder.load(blob)
                self.holder.set_revoked(revoked_ids(result))
            except (BrokerError, OSError) as e:
                self.last_error = str(e)
                log.error("policy refresh refused", error=type(e).__name__, detail=str(e))
                return RefreshOutcome(self.holder.status().revision, 0, 0, str(e))
            self.last = result
            self.last_error = None
            active = len(result.active())
            problems = len(result.problems) + sum(
                1 for a in result.agreements if a.status.status == "invalid"
            )
            log.info("policy loaded", revision=revision, active=active, problems=problems)
            self._seen_revocations = {str(p) for p in self._revocation_files()}
        self._report_in_force()
        return RefreshOutcome(revision, active, problems)

    def agreements_in_force(self) -> int:
        """Agreements the serving revision may allow exchanges under: active when loaded and not
        revoked since. 0 while no revision serves."""
        last = self.last
        if last is None or not self.holder.status().ready:
            return 0
        ids = {v.agreement.id for v in last.active() if v.agreement is not None}
        return len(ids - self.holder.revoked)

    def _report_in_force(self) -> None:
        if self.on_in_force is not None:
            self.on_in_force(self.agreements_in_force())

    def _revocation_files(self) -> list[Path]:
        directory = Layout(self.root).revocations_dir
        return sorted(directory.glob("*.yaml")) if directory.is_dir() else []

    def apply_new_revocations(self) -> list[str]:
        """Verify revocation files not seen yet and deny their agreements at once.

        A revocation counts only when signed by a party to the agreement with a trusted key and
        when it covers the version that is compiled now. Returns the agreement ids revoked.
        """
        last = self.last
        if last is None:
            return []
        compiled_version = {
            v.agreement.id: (v.agreement.version, {p.id for p in v.agreement.parties})
            for v in last.agreements
            if v.agreement is not None and v.status.status in ("active", "pending")
        }
        trust = self.store.trust_snapshot()
        revoked = []
        for path in self._revocation_files():
            if str(path) in self._seen_revocations:
                continue
            self._seen_revocations.add(str(path))
            try:
                doc, _ = parse_document_with_lines(path.read_text(encoding="utf-8"), str(path))
                signatures = read_signatures(path)
            except (DocumentError, SignatureFileError, OSError, ValueError) as e:
                # Counts for nothing here; the full rebuild that follows reports it.
                log.warning("revocation unreadable", file=str(path), error=type(e).__name__)
                continue
            if not isinstance(doc, Revocation) or doc.agreement_id not in compiled_version:
                continue
            version, parties = compiled_version[doc.agreement_id]
            if doc.revoked_by not in parties or doc.version < version:
                continue
            token = signatures.get(doc.revoked_by, "")
            if not verify_detached(doc.canonical_bytes(), token, doc.revoked_by, trust).valid:
                continue
            self.holder.revoke(doc.agreement_id)
            revoked.append(doc.agreement_id)
            log.warning("agreement revoked", agreement_id=doc.agreement_id)
            self._record(doc, token)
        if revoked:
            self._report_in_force()
        return revoked

    def _record(self, doc: Revocation, token: str) -> None:
        """Record a verified revocation in the store at once, as the rebuild would: the other
        instances deny at their next poll instead of after this instance's rebuild."""
        revoked_at = doc.revoked_at
        if revoked_at.tzinfo is None:
            revoked_at = revoked_at.replace(tzinfo=dt.UTC)
        record = RevocationRecord(
            doc.agreement_id, doc.version, doc.revoked_by, doc.reason, revoked_at, doc.digest()
        )
        try:
            self.store.record_revocation(record, doc.content(), token, self.now())
        except AgreementStoreUnavailableError as e:  # the rebuild that follows records it
            log.error("revocation not recorded", agreement_id=doc.agreement_id, error=str(e))

    def apply_recorded_revocations(self) -> list[str]:
        """Deny at once the agreements a revocation recorded in the store covers (recorded, after
        its signature was verified, by any instance or command on the same database), before the
        rebuild that follows: a slow or refused rebuild never leaves a revoked agreement allowed.
        A revocation covers the compiled version when it names that version or a later one.
        Returns the agreement ids newly denied."""
        last = self.last
        if last is None:
            return []
        compiled = {
            v.agreement.id: v.agreement.version
            for v in last.agreements
            if v.agreement is not None and v.status.status in ("active", "pending")
        }
        try:
            records = self.store.revocations()
        except AgreementStoreUnavailableError:
            return []  # the rebuild that follows reports it; readiness says the state is unreadable
        revoked = []
        for record in records:
            version = compiled.get(record.agreement_id)
            if version is None or version > record.version:
                continue
            if record.agreement_id in self.holder.revoked:
                continue
            self.holder.revoke(record.agreement_id)
            revoked.append(record.agreement_id)
            log.warning("agreement revoked", agreement_id=record.agreement_id, by="store")
        if revoked:
            self._report_in_force()
        return revoked

    def _store_state(self) -> AgreementState | None:
        """The store's state now; None when it cannot be read."""
        try:
            return self.store.state()
        except AgreementStoreUnavailableError:
            return None

    def poll(self) -> bool:
        """Reload when the directory changed, or when the store records a revocation or version
        the latest rebuild was not judged against. Returns True when it reloaded."""
        if _fingerprint(self.root) != self._fingerprint:
            self.apply_new_revocations()
        else:
            state = self._store_state()
            if state is None or self._state_tried is None or state == self._state_tried:
                return False
            self.apply_recorded_revocations()
        self.refresh()
        return True

    def readiness(self) -> str | None:
        """None when a policy revision is serving, is not behind the agreements and its engine
        (an OPA sidecar) is not deciding on an older revision than the bundle served for too long
        (:meth:`engine_behind`); else why."""
        status = self.holder.status()
        if not status.ready:
            return f"no policy loaded: {self.last_error or status.last_refusal or 'not built'}"
        return self.behind(status.revision) or self.engine_behind()

    def engine_behind(self, now: float | None = None) -> str | None:
        """Why the engine is behind the bundle served (OPA mode, longer than the allowed lag),
        or None. ``now``: a ``time.monotonic()`` reading (default: now)."""
        return self.holder.behind(now)

    def behind(self, revision: str | None = None) -> str | None:
        """Why the serving revision is behind the agreements, or None when it is not: the
        directory changed since it was read, or the agreement state store records a revocation
        or version it was not built from (recorded by another instance or a command)."""
        revision = revision or self.holder.status().revision
        if _fingerprint(self.root) != self._fingerprint:
            return f"policy revision {revision} is behind: the agreements directory changed"
        last = self.last
        if last is None:
            return None
        state = self._store_state()
        if state is None:
            return "agreement state unreadable"
        if state != last.state:
            return (
                f"policy revision {revision} is behind: the agreement state records "
                "revocations or versions it was not built from"
            )
        return None

    def in_force_note(self) -> str | None:
        """While a revision serves with no agreement in force: every exchange is refused (a
        fresh install stays ready, to draft its first agreement)."""
        if self.holder.status().ready and self.agreements_in_force() == 0:
            return "no agreement in force: every exchange is refused until one is"
        return None

    def note(self) -> str | None:
        """What an operator should know while the broker still serves: a refused rebuild."""
        status = self.holder.status()
        refusal = status.last_refusal or self.last_error
        if refusal:
            return f"serving revision {status.revision}; the last rebuild was refused: {refusal}"
        return None
