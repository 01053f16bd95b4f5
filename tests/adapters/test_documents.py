"""The documents adapter: content-addressed store with verified proof documents."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from adapters.documents import FileDocumentStore
from adapters.errors import SourceBadData, SubjectNotFound, WrongSubject
from broker.core.identifiers import SubjectId, parse_subject
from demo.sources import subjects
from demo.sources.runtime import DemoSources
from tests.adapters.conftest import open_sources

DOCS = "ccc.proof-documents"
CLAIMANT = parse_subject("person_id", subjects.BENEFITS_CLAIMANT.person_id)


async def test_claimant_documents_are_a_repeating_group(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(
            DOCS, CLAIMANT, ["document.type", "document.sha256", "document.verification_method"]
        )
    assert {d["type"]: d["sha256"] for d in record["document"]} == (
        subjects.BENEFITS_CLAIMANT_DOCUMENTS
    )
    assert all(set(d) == {"type", "sha256", "verification_method"} for d in record["document"])


async def test_content_is_released_only_when_its_hash_matches(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(DOCS, CLAIMANT, ["document.sha256", "document.content"])
    for document in record["document"]:
        content = base64.b64decode(document["content"])
        assert hashlib.sha256(content).hexdigest() == document["sha256"]


async def test_streaming_checks_the_hash(demo: DemoSources) -> None:
    sha = subjects.BENEFITS_CLAIMANT_DOCUMENTS["income"]
    async with open_sources(demo.bindings) as sources:
        chunks = [c async for c in sources.stream_document(DOCS, CLAIMANT, sha)]
        with pytest.raises(SubjectNotFound, match="no such document"):
            _ = [c async for c in sources.stream_document(DOCS, CLAIMANT, "0" * 64)]
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == sha


@pytest.mark.parametrize(
    ("claims", "holds"),
    [
        pytest.param({"document.type": "income"}, True, id="has-income-proof"),
        pytest.param(
            {"document.type": "income", "document.issuer": "HM Passport Office"},
            False,
            id="claims-must-hold-on-one-document",
        ),
    ],
)
async def test_verify(demo: DemoSources, claims: dict[str, object], holds: bool) -> None:
    async with open_sources(demo.bindings) as sources:
        answer = await sources.verify(DOCS, CLAIMANT, claims)
    assert answer.match is holds
    assert answer.record_key.startswith("documents=")


async def test_tampered_content_is_bad_data(demo: DemoSources, tmp_path: Path) -> None:
    store = FileDocumentStore(tmp_path)
    subject = SubjectId("person_id", "P0000001")
    meta = store.put(
        [subject],
        b"original",
        type="identity",
        issuer="x",
        verified_by="y",
        verified_at="2026-01-01T00:00:00+00:00",
        verification_method="seen",
        media_type="text/plain",
    )
    (tmp_path / "objects" / meta.sha256[:2] / meta.sha256).write_bytes(b"tampered")
    bindings = demo.bindings.with_source("ccc-proof-documents", endpoint=str(tmp_path))
    async with open_sources(bindings) as sources:
        with pytest.raises(SourceBadData, match="does not match its SHA-256"):
            await sources.fetch(DOCS, subject, ["document.content"])
        with pytest.raises(SourceBadData, match="does not match its SHA-256"):
            _ = [c async for c in sources.stream_document(DOCS, subject, meta.sha256)]
        with pytest.raises(SubjectNotFound, match="no documents"):
            await sources.fetch(DOCS, parse_subject("person_id", "P0000002"), ["document.type"])


async def test_index_of_another_person_is_refused(demo: DemoSources, tmp_path: Path) -> None:
    store = FileDocumentStore(tmp_path)
    asked = SubjectId("person_id", "P0000001")
    store.put(
        [asked],
        b"x",
        type="identity",
        issuer="x",
        verified_by="y",
        verified_at="2026-01-01T00:00:00+00:00",
        verification_method="seen",
        media_type="text/plain",
    )
    index = store._index(asked)
    index.write_text(index.read_text().replace('"P0000001"', '"P0000002"'))
    bindings = demo.bindings.with_source("ccc-proof-documents", endpoint=str(tmp_path))
    async with open_sources(bindings) as sources:
        with pytest.raises(WrongSubject, match="not the one asked for"):
            await sources.fetch(DOCS, asked, ["document.type"])
