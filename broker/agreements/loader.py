"""Read an agreements directory and return every agreement with its verified status (the I/O shell).

Layout of a directory (``BROKER_AGREEMENTS_DIR``, or ``agreements/examples`` in the demo)::

    register/<dataset-id>.yaml       + <dataset-id>.sig.json      signed by the dataset's owner
    isa/<agreement-id>.yaml          + <agreement-id>.sig.json    signed by every party
    revocations/<name>.yaml          + <name>.sig.json            signed by the revoking party
    keys/<party-id>.jwks.json        public keys, imported into the trust store by an admin

A ``.sig.json`` file is ``{"signatures": [{"party": "<party id>", "jws": "<header>..<sig>"}]}``.

Loading records, in the store, every verified revocation and the highest fully signed version of
each agreement, then computes statuses from the store (so deleted revocation files and older
versions put back change nothing).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker.agreements.model import Agreement, Flow, Revocation
from broker.agreements.parsing import (
    DocumentError,
    Problem,
    parse_document_with_lines,
    with_lines,
)
from broker.agreements.register import DatasetEntry, Register
from broker.agreements.signing import TrustSnapshot, verify_detached
from broker.agreements.statements import signing_action, statement_for
from broker.agreements.status import (
    AgreementState,
    AgreementStatus,
    RevocationRecord,
    SignedBytes,
    VersionSeen,
    evaluate,
)
from broker.agreements.store import AgreementStateStore, StoredAgreement
from broker.agreements.validation import (
    check_agreement,
    check_dataset,
    check_unique_datasets,
    check_unique_versions,
)
from broker.core.fields import FieldPatternError, expand_fields
from broker.core.published_keys import PUBLISHED_KEY_REFUSAL, published_among


@dataclass(frozen=True)
class Layout:
    """Where the parts of an agreements directory live."""

    root: Path

    @property
    def register_dir(self) -> Path:
        return self.root / "register"

    @property
    def isa_dir(self) -> Path:
        return self.root / "isa"

    @property
    def revocations_dir(self) -> Path:
        return self.root / "revocations"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"


def signature_path(document: Path) -> Path:
    """``x/ISA-A.yaml`` -> ``x/ISA-A.sig.json``: signatures are kept beside the document."""
    return document.with_name(document.name.rsplit(".", 1)[0] + ".sig.json")


class SignatureFileError(Exception):
    pass


def read_signatures(document: Path) -> dict[str, str]:
    """The JWS of each party filed beside ``document`` (empty when there is no signature file).

    Raises :class:`SignatureFileError` for a malformed file or two signatures of one party.
    """
    path = signature_path(document)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["signatures"]
        out: dict[str, str] = {}
        for item in items:
            party, token = item["party"], item["jws"]
            if not isinstance(party, str) or not isinstance(token, str):
                raise TypeError("party and jws must be strings")
            if party in out:
                raise SignatureFileError(f"{path}: two signatures filed for {party!r}")
            out[party] = token
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SignatureFileError(f"{path}: not a signature file ({e})") from e
    return out


def write_signature(document: Path, party_id: str, token: str) -> Path:
    """Add (or replace) ``party_id``'s signature in the file beside ``document``."""
    path = signature_path(document)
    current = read_signatures(document)
    current[party_id] = token
    items = [{"party": p, "jws": current[p]} for p in sorted(current)]
    path.write_text(json.dumps({"signatures": items}, indent=2) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class LoadedRegister:
    register: Register
    problems: tuple[Problem, ...]
    unverified: Mapping[str, str]
    """Dataset ids whose entry counts for nothing, with the reason."""


@dataclass(frozen=True)
class VerifiedAgreement:
    """One agreement file with its computed status; ``agreement`` is None when unreadable."""

    agreement: Agreement | None
    status: AgreementStatus
    datasets: Mapping[str, DatasetEntry] = field(default_factory=dict)
    """The verified register entries its flows rely on, by dataset id."""

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary: id, version, digest, status, reasons, parties, dates, signatures
        (what ``agreements list --json`` prints and ``GET /v1/agreements`` can return)."""
        s, a = self.status, self.agreement
        return {
            "file": s.file,
            "id": s.agreement_id,
            "version": s.version,
            "title": a.title if a else None,
            "digest": s.digest,
            "status": s.status,
            "review_due": s.review_due,
            "reasons": list(s.reasons),
            "parties": [p.id for p in a.parties] if a else [],
            "effective_from": a.validity.effective_from.isoformat() if a else None,
            "expires_on": a.validity.expires_on.isoformat() if a else None,
            "review_by": a.validity.review_by.isoformat() if a else None,
            "signatures": [
                {"party": c.party_id, "kid": c.kid, "valid": c.valid, "reason": c.reason}
                for c in s.signatures
            ],
        }

    def permitted_fields(self, flow: Flow) -> tuple[str, ...]:
        """The catalogue names ``flow.permitted_fields`` stands for (``prefix.*`` expanded over
        the signed register entry the agreement pins). Empty if the entry is not verified."""
        entry = self.datasets.get(flow.dataset)
        return _expanded(flow.permitted_fields, entry)

    def break_glass_fields(self, flow: Flow) -> tuple[str, ...]:
        """The extra catalogue names break-glass opens on ``flow`` (empty without break-glass)."""
        entry = self.datasets.get(flow.dataset)
        bg = flow.conditions.break_glass
        if entry is None or bg is None or not bg.allowed:
            return ()
        return _expanded(bg.extra_fields, entry)


def agreement_ids_of_party(party_id: str, agreements: Iterable[VerifiedAgreement]) -> list[str]:
    """The ids of ``agreements`` that ``party_id`` is a party to, sorted, each once."""
    ids = {
        a.agreement.id
        for a in agreements
        if a.agreement is not None and a.agreement.party(party_id) is not None
    }
    return sorted(ids)


def _expanded(patterns: Sequence[str], entry: DatasetEntry | None) -> tuple[str, ...]:
    """``patterns`` expanded by the one rule of ``broker/core/fields.py``; empty when the entry is
    not verified or a pattern matches nothing (validation refuses such an agreement, so it stands
    for no field at all rather than for the patterns that happen to match)."""
    if entry is None:
        return ()
    try:
        return expand_fields(patterns, entry.field_names())
    except FieldPatternError:
        return ()


@dataclass(frozen=True)
class LoadResult:
    register: Register
    agreements: tuple[VerifiedAgreement, ...]
    problems: tuple[Problem, ...]
    """Problems outside agreements: register entries and revocations that count for nothing."""
    state: AgreementState = field(default_factory=AgreementState)
    """The recorded revocations and versions the statuses were judged against."""

    def active(self) -> tuple[VerifiedAgreement, ...]:
        """Agreements with status ``active``: the only ones policy may be compiled from."""
        return tuple(a for a in self.agreements if a.status.status == "active")


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))


def _read(path: Path) -> tuple[Agreement | DatasetEntry | Revocation, dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DocumentError([Problem(str(path), "", f"cannot read: {e}")]) from e
    return parse_document_with_lines(text, str(path))


def _signed_by(document: Path, party_id: str, content: bytes, trust: TrustSnapshot) -> str | None:
    """None when ``party_id``'s signature over ``content`` is filed and valid, else the reason."""
    try:
        signatures = read_signatures(document)
    except SignatureFileError as e:
        return str(e)
    token = signatures.get(party_id)
    if token is None:
        return f"not signed by {party_id!r}"
    check = verify_detached(content, token, party_id, trust)
    return None if check.valid else f"signature of {party_id!r}: {check.reason}"


def load_register(
    directory: Path, trust: TrustSnapshot, known_parties: Collection[str]
) -> LoadedRegister:
    """Every register entry under ``directory``; only valid entries signed by their owner count."""
    problems: list[Problem] = []
    parsed: list[tuple[Path, DatasetEntry]] = []
    lines_of: dict[Path, dict[str, int]] = {}
    for path in _files(directory):
        try:
            doc, lines_of[path] = _read(path)
        except DocumentError as e:
            problems.extend(e.problems)
            continue
        if not isinstance(doc, DatasetEntry):
            problems.append(Problem(str(path), "kind", "the register holds only kind: dataset"))
            continue
        parsed.append((path, doc))
    duplicates = check_unique_datasets([(str(p), e) for p, e in parsed])
    problems.extend(duplicates)
    duplicate_files = {d.file for d in duplicates}
    entries: dict[str, DatasetEntry] = {}
    digests: dict[str, str] = {}
    unverified: dict[str, str] = {}
    for path, entry in parsed:
        entry_problems = with_lines(check_dataset(entry, str(path), known_parties), lines_of[path])
        reason: str | None
        if str(path) in duplicate_files:
            reason = "its id appears in more than one register file"
        elif entry_problems:
            problems.extend(entry_problems)
            reason = "the entry is invalid: " + "; ".join(p.reason for p in entry_problems)
        else:
            reason = _signed_by(path, entry.owner, entry.canonical_bytes(), trust)
        if reason is None:
            entries[entry.id] = entry
            digests[entry.id] = entry.digest()
        else:
            unverified[entry.id] = reason
            problems.append(
                Problem(str(path), "", f"dataset entry {entry.id!r} counts for nothing: {reason}")
            )
    return LoadedRegister(Register(entries, digests), tuple(problems), unverified)


def trust_of(store: AgreementStateStore, *, demo: bool = False) -> TrustSnapshot:
    """The store's trusted keys, with the published (demo) keys refused outside demo mode."""
    base = store.trust_snapshot()
    return TrustSnapshot(
        base.keys,
        {
            **base.refused,
            **{k: PUBLISHED_KEY_REFUSAL for k in published_among(base.keys, demo=demo)},
        },
    )


def load_directory(
    root: Path,
    store: AgreementStateStore,
    *,
    known_parties: Collection[str],
    now: dt.datetime,
    demo: bool = False,
    agreement_files: Sequence[Path] | None = None,
) -> LoadResult:
    """Load, verify and evaluate the agreements under ``root`` (see the module docstring).

    ``agreement_files`` limits the agreements evaluated (the register and revocations still come
    from ``root``). Outside demo mode, demo keys count for nothing. Never raises for bad
    documents: each is reported with file, place and reason. Raises what the store raises
    (:class:`~broker.agreements.errors.AgreementStoreUnavailableError` for the SQL store).
    """
    layout = Layout(root)
    trust = trust_of(store, demo=demo)
    loaded = load_register(layout.register_dir, trust, known_parties)
    problems = list(loaded.problems)

    files = list(agreement_files) if agreement_files is not None else _files(layout.isa_dir)
    files = list({path.resolve(): path for path in files}.values())  # the same file named twice
    docs: list[tuple[str, Agreement | None, list[Problem]]] = []
    parsed: list[tuple[str, Agreement | DatasetEntry | Revocation, dict[str, int]]] = []
    for path in files:
        try:
            doc, lines = _read(path)
        except DocumentError as e:
            docs.append((str(path), None, list(e.problems)))
            continue
        parsed.append((str(path), doc, lines))
    # Agreements signed through the API are held in the database (not when files are named).
    stored = store.stored_agreements() if agreement_files is None else []
    stored_by_label: dict[str, StoredAgreement] = {}
    for item in stored:
        label = stored_label(item.draft_id)
        stored_by_label[label] = item
        try:
            doc, lines = parse_document_with_lines(item.yaml, label)
        except DocumentError as e:
            docs.append((label, None, list(e.problems)))
            continue
        parsed.append((label, doc, lines))
    for label, doc, lines in parsed:
        if isinstance(doc, DatasetEntry):
            reason = (
                "expected kind: agreement, this is a register entry (kind: dataset): "
                "verify it with `broker register verify`"
            )
            docs.append((label, None, [Problem(label, "kind", reason)]))
            continue
        if not isinstance(doc, Agreement):
            docs.append((label, None, [Problem(label, "kind", "expected kind: agreement")]))
            continue
        found = check_agreement(
            doc,
            label,
            register=loaded.register,
            unverified_datasets=loaded.unverified,
            known_parties=known_parties,
        )
        docs.append((label, doc, with_lines(found, lines)))
    for dup in check_unique_versions([(f, a) for f, a, _ in docs if a is not None]):
        for label, _, found in docs:
            if label == dup.file:
                found.append(dup)

    parties_of: dict[str, set[str]] = {}
    for _, a, _ in docs:
        if a is not None:
            parties_of.setdefault(a.id, set()).update(p.id for p in a.parties)
    now_utc = now.astimezone(dt.UTC)
    problems.extend(_record_revocations(layout.revocations_dir, store, trust, parties_of, now_utc))

    signatures: dict[str, Mapping[str, str]] = {}
    signed_bytes: dict[str, SignedBytes | None] = {}
    for label, a, found in docs:
        held = stored_by_label.get(label)
        if held is not None:
            signatures[label] = held.signatures
            signed_bytes[label] = _statements_of(a, held.previous_digest)
            continue
        signed_bytes[label] = None
        try:
            signatures[label] = read_signatures(Path(label))
        except SignatureFileError as e:
            signatures[label] = {}
            found.append(Problem(label, "", str(e)))

    revocations = store.revocations()

    def run(highest: Mapping[str, VersionSeen]) -> list[AgreementStatus]:
        return [
            evaluate(
                file=label,
                agreement=a,
                problems=found,
                signatures=signatures[label],
                trust=trust,
                revocations=revocations,
                highest_seen=highest,
                now=now,
                signed_bytes=signed_bytes[label],
            )
            for label, a, found in docs
        ]

    # Record every fully signed version, then evaluate again only if that raised a version seen
    # (an older version loaded alongside a newer one is then superseded).
    before = store.highest_versions()
    statuses = run(before)
    by_file = {label: a for label, a, _ in docs}
    for status in statuses:
        signed = by_file.get(status.file)
        if status.fully_signed and signed is not None and status.digest:
            seen = VersionSeen(signed.id, signed.version, status.digest, signed.content())
            if before.get(signed.id) != seen:
                store.record_version(seen, now_utc)
    after = store.highest_versions()
    if after != before:
        statuses = run(after)
    results = []
    for (_, a, _), status in zip(docs, statuses, strict=True):
        datasets: dict[str, DatasetEntry] = {}
        for flow in a.flows if a is not None else ():
            entry = loaded.register.get(flow.dataset)
            if entry is not None:
                datasets[flow.dataset] = entry
        results.append(VerifiedAgreement(a, status, datasets))
    state = AgreementState.of(revocations, after, frozenset(i.draft_id for i in stored))
    return LoadResult(loaded.register, tuple(results), tuple(problems), state)


STORED_PREFIX = "database:"


def stored_label(draft_id: str) -> str:
    """Where an agreement held in the database is said to come from (``database:<draft id>``)."""
    return STORED_PREFIX + draft_id


def _statements_of(agreement: Agreement | None, previous_digest: str | None) -> SignedBytes:
    """The statement bytes each party signs for this agreement (see statements.py)."""

    def of(party_id: str) -> bytes:
        if agreement is None or agreement.party(party_id) is None:
            return b""
        action = signing_action(previous_digest)
        return statement_for(agreement, party_id, action, previous_digest).canonical_bytes()

    return of


def _record_revocations(
    directory: Path,
    store: AgreementStateStore,
    trust: TrustSnapshot,
    parties_of: Mapping[str, set[str]],
    now: dt.datetime,
) -> list[Problem]:
    problems: list[Problem] = []
    for path in _files(directory):
        try:
            doc, _ = _read(path)
        except DocumentError as e:
            problems.extend(e.problems)
            continue
        if not isinstance(doc, Revocation):
            problems.append(Problem(str(path), "kind", "expected kind: revocation"))
            continue
        if doc.agreement_id not in parties_of:
            continue  # not loaded this time: judged (and recorded) when it is
        if doc.revoked_by not in parties_of[doc.agreement_id]:
            problems.append(
                Problem(
                    str(path),
                    "revoked_by",
                    f"{doc.revoked_by!r} is not a party to agreement {doc.agreement_id!r}; "
                    "the revocation counts for nothing",
                )
            )
            continue
        reason = _signed_by(path, doc.revoked_by, doc.canonical_bytes(), trust)
        if reason is not None:
            problems.append(Problem(str(path), "", f"revocation counts for nothing: {reason}"))
            continue
        token = read_signatures(path)[doc.revoked_by]
        revoked_at = (
            doc.revoked_at if doc.revoked_at.tzinfo else doc.revoked_at.replace(tzinfo=dt.UTC)
        )
        record = RevocationRecord(
            doc.agreement_id, doc.version, doc.revoked_by, doc.reason, revoked_at, doc.digest()
        )
        store.record_revocation(record, doc.content(), token, now)
    return problems
