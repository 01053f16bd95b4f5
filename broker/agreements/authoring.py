"""What governance officers do to documents: validate, sign, revoke (file I/O, no database).

These are the functions behind ``broker agreements validate|sign|revoke``; the HTTP layer or a
console can call them the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path

import yaml

from broker.agreements.errors import DocumentInvalidError, NotASignatoryError, refuse_published_keys
from broker.agreements.loader import Layout, write_signature
from broker.agreements.model import Agreement, Revocation
from broker.agreements.parsing import (
    DocumentError,
    Problem,
    parse_document,
    parse_document_with_lines,
    with_lines,
)
from broker.agreements.register import DatasetEntry, Register
from broker.agreements.signing import PartyKey, sign_detached
from broker.agreements.validation import check_agreement, check_dataset


def infer_root(file: Path, default: Path) -> Path:
    """The agreements directory a document belongs to: ``<root>/{isa,register,revocations}/x``."""
    if file.parent.name in ("isa", "register", "revocations"):
        return file.parent.parent
    return default


def unsigned_register(root: Path) -> Register:
    """Every parseable register entry under ``root``, signed or not: for authoring checks only,
    never for deciding access (the loader keeps only entries signed by their owner)."""
    entries: dict[str, DatasetEntry] = {}
    directory = Layout(root).register_dir
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            doc = parse_document(path.read_text(encoding="utf-8"), str(path))
        except (DocumentError, OSError, UnicodeDecodeError):
            continue
        if isinstance(doc, DatasetEntry):
            entries[doc.id] = doc
    return Register(entries, {k: v.digest() for k, v in entries.items()})


def read_document(path: Path) -> Agreement | DatasetEntry | Revocation:
    """Parse one document file; raises :class:`DocumentInvalidError` with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        problem = Problem(str(path), "", f"cannot read: {e}")
        raise DocumentInvalidError(str(problem), [problem]) from e
    try:
        return parse_document(text, str(path))
    except DocumentError as e:
        raise DocumentInvalidError(str(e), e.problems) from e


def validate_file(path: Path, root: Path, known_parties: Collection[str]) -> list[Problem]:
    """Every schema and consistency problem of one document (empty when it is valid)."""
    try:
        doc, lines = parse_document_with_lines(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as e:
        return [Problem(str(path), "", f"cannot read: {e}")]
    except DocumentError as e:
        return list(e.problems)
    if isinstance(doc, DatasetEntry):
        return with_lines(check_dataset(doc, str(path), known_parties), lines)
    if isinstance(doc, Agreement):
        found = check_agreement(
            doc, str(path), register=unsigned_register(root), known_parties=known_parties
        )
        return with_lines(found, lines)
    return []


def sign_file(
    path: Path,
    party_id: str,
    key: PartyKey,
    *,
    root: Path,
    known_parties: Collection[str],
    demo: bool = False,
) -> Path:
    """Add ``party_id``'s signature beside the document at ``path``; returns the signature file.

    Refuses (before writing): an invalid document (:class:`DocumentInvalidError`), a party that
    is not entitled to sign it (:class:`NotASignatoryError`), a demo key outside demo mode.
    """
    refuse_published_keys([key.thumbprint()], demo=demo)
    problems = validate_file(path, root, known_parties)
    if problems:
        raise DocumentInvalidError(f"{path} is not valid; fix it before signing", problems)
    doc = read_document(path)
    if isinstance(doc, Agreement):
        allowed = [p.id for p in doc.parties]
    elif isinstance(doc, DatasetEntry):
        allowed = [doc.owner]
    else:
        allowed = [doc.revoked_by]
    if party_id not in allowed:
        raise NotASignatoryError(f"{party_id!r} cannot sign {path} (signatories: {allowed})")
    return write_signature(path, party_id, sign_detached(doc.canonical_bytes(), key))


def revoke(
    root: Path,
    agreement_id: str,
    party_id: str,
    key: PartyKey,
    reason: str,
    *,
    now: dt.datetime,
    version: int | None = None,
    demo: bool = False,
) -> Path:
    """Write and sign ``<root>/revocations/<id>.v<version>.<party>.yaml``; returns its path.

    ``version`` defaults to the highest version of the agreement under ``root/isa``. Raises
    :class:`NotASignatoryError` when ``party_id`` is not a party to that agreement.
    """
    refuse_published_keys([key.thumbprint()], demo=demo)
    versions: dict[int, Agreement] = {}
    isa_dir = Layout(root).isa_dir
    for path in sorted(isa_dir.glob("*.yaml")) if isa_dir.is_dir() else []:
        try:
            doc = read_document(path)
        except DocumentInvalidError:
            continue
        if isinstance(doc, Agreement) and doc.id == agreement_id:
            versions[doc.version] = doc
    if not versions:
        raise NotASignatoryError(f"no agreement {agreement_id!r} under {isa_dir}")
    chosen = versions.get(version if version is not None else max(versions))
    if chosen is None:
        raise NotASignatoryError(f"no version {version} of {agreement_id!r} under {isa_dir}")
    if chosen.party(party_id) is None:
        raise NotASignatoryError(f"{party_id!r} is not a party to {agreement_id!r}")
    revocation = Revocation(
        kind="revocation",
        agreement_id=agreement_id,
        version=chosen.version,
        revoked_by=party_id,
        reason=reason,
        revoked_at=now.astimezone(dt.UTC).replace(microsecond=0),
    )
    out_dir = Layout(root).revocations_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{agreement_id}.v{chosen.version}.{party_id}.yaml"
    path.write_text(yaml.safe_dump(revocation.content(), sort_keys=False), encoding="utf-8")
    # Sign what a reader will parse back from the file, not the object in hand.
    reread = read_document(path)
    write_signature(path, party_id, sign_detached(reread.canonical_bytes(), key))
    return path
