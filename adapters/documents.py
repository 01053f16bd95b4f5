"""Verified proof documents: a content-addressed store on the filesystem, and its adapter.

Layout under the store's root::

    objects/ab/abcdef...        the bytes, named by their SHA-256
    subjects/<key>.json         the documents of one subject: metadata list + the identifier

``<key>`` is SHA-256 of ``"<type>:<value>"`` so no request value ever becomes a path. Each
document's metadata: type (identity, income, residence), issuer, verified by, verified at,
verification method, media type, size, SHA-256. Content is re-hashed whenever it is read; a
mismatch is :class:`SourceBadData` and nothing is released.

A person has several documents, so the dataset's record is a repeating group:
``{"document": [{"type": "identity", ...}, ...]}`` with only the asked fields in each.
``document.content`` is released as base64 text (documents are small; use
:meth:`DocumentsAdapter.stream_document` for the raw bytes).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapters.base import BaseAdapter, check_claim_names, guard_identity
from adapters.bindings import DatasetBinding, SourceConfig
from adapters.errors import DocumentAltered, SourceBadData, SourceUnavailable, SubjectNotFound
from adapters.records import Verification, claims_hold
from adapters.resilience import Clock, call_resiliently
from broker.core.identifiers import SubjectId
from broker.core.projection import Record

_SHA256 = re.compile(r"[0-9a-f]{64}")
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class DocumentMeta:
    """What the store knows about one verified document."""

    sha256: str
    type: str
    issuer: str
    verified_by: str
    verified_at: str
    verification_method: str
    media_type: str
    size: int


class FileDocumentStore:
    """Content-addressed documents under ``root`` (synchronous; the adapter runs it in threads)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _object(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / "objects" / sha256[:2] / sha256

    def _index(self, subject: SubjectId) -> Path:
        key = hashlib.sha256(f"{subject.type}:{subject.value}".encode()).hexdigest()
        return self.root / "subjects" / f"{key}.json"

    def put(self, subjects: Iterable[SubjectId], content: bytes, **meta: str) -> DocumentMeta:
        """Store ``content`` and list it under every identifier of its subject."""
        digest = hashlib.sha256(content).hexdigest()
        path = self._object(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)
        document = DocumentMeta(sha256=digest, size=len(content), **meta)
        for subject in subjects:
            index = self._index(subject)
            index.parent.mkdir(parents=True, exist_ok=True)
            entry: dict[str, Any] = {
                "subject": {"type": subject.type, "value": subject.value},
                "documents": [],
            }
            if index.exists():
                entry = json.loads(index.read_text(encoding="utf-8"))
            docs = [d for d in entry["documents"] if d["sha256"] != digest]
            entry["documents"] = [*docs, asdict(document)]
            index.write_text(json.dumps(entry, indent=1, sort_keys=True), encoding="utf-8")
        return document

    def list_for(self, subject: SubjectId) -> tuple[str | None, list[DocumentMeta]]:
        """(the identifier the index was written for, its documents); ``(None, [])`` if none."""
        index = self._index(subject)
        if not index.exists():
            return None, []
        entry = json.loads(index.read_text(encoding="utf-8"))
        return str(entry["subject"]["value"]), [DocumentMeta(**d) for d in entry["documents"]]

    def read_verified(self, sha256: str) -> bytes:
        """The content, only if it still hashes to ``sha256`` (ValueError otherwise)."""
        content = self._object(sha256).read_bytes()
        if hashlib.sha256(content).hexdigest() != sha256:
            raise ValueError("content does not match its SHA-256")
        return content


_META_KEYS = {
    "type",
    "issuer",
    "verified_by",
    "verified_at",
    "verification_method",
    "sha256",
    "media_type",
    "size",
    "content",
}


class DocumentsAdapter(BaseAdapter):
    """Binding: ``endpoint`` is the store's root directory; fields map catalogue names
    (``document.type``) to metadata keys (``type``) or ``content``."""

    kind = "documents"

    def __init__(self, source: SourceConfig, *, clock: Clock = time.monotonic) -> None:
        super().__init__(source, clock=clock)
        self.store = FileDocumentStore(Path(source.endpoint))

    async def _documents(self, binding: DatasetBinding, subject: SubjectId) -> list[DocumentMeta]:
        where = {"dataset": binding.dataset, "source": self.source.name}
        try:
            found, documents = await asyncio.to_thread(self.store.list_for, subject)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SourceBadData(f"document index unreadable: {type(e).__name__}", **where) from e
        if not documents:
            raise SubjectNotFound("no documents for the subject", **where)
        guard_identity(binding, subject, found)
        return documents

    async def _rows(
        self,
        binding: DatasetBinding,
        subject: SubjectId,
        fields: Sequence[str],
        documents: list[DocumentMeta] | None = None,
    ) -> list[dict[str, Any]]:
        if documents is None:
            documents = await self._documents(binding, subject)
        rows: list[dict[str, Any]] = []
        for document in documents:
            row: dict[str, Any] = {}
            for field in fields:
                key = binding.source_path(field)
                if key not in _META_KEYS:
                    raise SourceBadData(
                        f"field {field}: unknown document metadata key {key!r}",
                        dataset=binding.dataset,
                        source=self.source.name,
                        field=field,
                    )
                if key == "content":
                    content = await self._content(binding, document.sha256)
                    row[field] = base64.b64encode(content).decode("ascii")
                else:
                    row[field] = getattr(document, key)
            rows.append(row)
        return rows

    async def _content(self, binding: DatasetBinding, sha256: str) -> bytes:
        where = {"dataset": binding.dataset, "source": self.source.name}
        try:
            return await asyncio.to_thread(self.store.read_verified, sha256)
        except FileNotFoundError as e:
            raise SourceBadData("document content missing from the store", **where) from e
        except ValueError as e:
            raise DocumentAltered(
                "document content does not match its SHA-256", sha256=sha256, **where
            ) from e
        except OSError as e:
            raise SourceUnavailable(f"document store unreadable: {e.strerror}", **where) from e

    async def fetch(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> Record:
        wanted = list(dict.fromkeys(fields))
        self._check(binding, subject, wanted)

        async def attempt() -> list[dict[str, Any]]:
            return await self._rows(binding, subject, wanted)

        rows = await call_resiliently(attempt, retry=self.source.retries, breaker=self.breaker)
        group = binding.options.get("group", "document")
        prefix = f"{group}."
        return {group: [{f.removeprefix(prefix): r[f] for f in wanted} for r in rows]}

    async def verify(
        self, binding: DatasetBinding, subject: SubjectId, claims: Mapping[str, object]
    ) -> Verification:
        """Whether one document holds every claim (e.g. a verified ``income`` document). The
        record's key is the first of the subject's document hashes (the same whichever of the
        person's identifiers was asked)."""
        check_claim_names(claims)
        wanted = list(claims)
        self._check(binding, subject, wanted)
        documents = await self._documents(binding, subject)
        fields = [f for f in wanted if f != "document.content"]
        rows = await self._rows(binding, subject, fields, documents)
        key = min(d.sha256 for d in documents)
        return Verification(any(claims_hold(row, claims) for row in rows), f"documents={key}")

    async def exists(self, binding: DatasetBinding, subject: SubjectId) -> bool:
        """Whether the store lists any document for ``subject`` (its index only, no content)."""
        self._check(binding, subject, [])

        async def attempt() -> bool:
            try:
                await self._documents(binding, subject)
            except SubjectNotFound:
                return False
            return True

        return await call_resiliently(attempt, retry=self.source.retries, breaker=self.breaker)

    async def stream_document(
        self, binding: DatasetBinding, subject: SubjectId, sha256: str
    ) -> AsyncIterator[bytes]:
        """The bytes of one of ``subject``'s documents. The whole content is hashed before the
        first chunk is yielded and again while streaming; a mismatch is :class:`SourceBadData`."""
        documents = await self._documents(binding, subject)
        if sha256 not in {d.sha256 for d in documents}:
            raise SubjectNotFound(
                "the subject has no such document",
                dataset=binding.dataset,
                source=self.source.name,
            )
        content = await self._content(binding, sha256)
        hasher = hashlib.sha256()
        for start in range(0, len(content), CHUNK_BYTES):
            chunk = content[start : start + CHUNK_BYTES]
            hasher.update(chunk)
            yield chunk
        if hasher.hexdigest() != sha256:  # pragma: no cover (content is immutable in memory)
            raise SourceBadData("document changed while streaming", dataset=binding.dataset)
