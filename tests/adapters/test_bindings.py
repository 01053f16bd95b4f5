"""Bindings come only from administrator files; mistakes fail at start-up with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.bindings import load_bindings, parse_bindings
from adapters.errors import BindingError
from adapters.memory import MemoryAdapter
from adapters.registry import AdapterRegistry, default_registry
from adapters.sources import Sources
from broker.core.identifiers import parse_subject
from demo.sources.runtime import DEMO_BINDINGS_FILE
from tests.adapters.conftest import open_sources

DATASETS = {
    "ccc.child-protection",
    "ccc.council-tax",
    "ccc.electoral-register",
    "ccc.housing-applications",
    "ccc.benefit-claims",
    "ccc.proof-documents",
    "r9z.patient-demographics",
    "r9z.ed-attendances",
    "r9z.discharge-summary",
    "wcp.police-concerns",
    "ccc.spending-over-500",
}
VARIABLES = {
    "council_dir": "/x",
    "documents_dir": "/d",
    "r9z_fhir_url": "http://h/FHIR/R4",
    "wcp_police_url": "http://p",
}


def test_demo_file_binds_every_demo_dataset() -> None:
    bindings = load_bindings(DEMO_BINDINGS_FILE, variables=VARIABLES)
    assert set(bindings.datasets) == DATASETS
    assert bindings.get("r9z.ed-attendances").source.endpoint == "http://h/FHIR/R4"
    assert set(default_registry().kinds) >= {b.source.kind for b in bindings}


def _doc(**source: Any) -> dict[str, Any]:
    return {
        "sources": {"s": {"kind": "memory", "endpoint": "", **source}},
        "datasets": {
            "d": {
                "source": "s",
                "identifiers": {"person_id": "pid"},
                "fields": {"name.family": "family"},
            }
        },
    }


@pytest.mark.parametrize(
    ("document", "variables", "match"),
    [
        pytest.param(_doc(endpoint="${missing}"), {}, "unknown variable", id="unknown-variable"),
        pytest.param(_doc(timeout=3), {}, "sources.s.timeout", id="misspelt-key"),
        pytest.param(_doc(timeouts={"read_seconds": 0}), {}, "read_seconds", id="zero-timeout"),
        pytest.param(
            {
                "sources": {},
                "datasets": {"d": {"source": "nope", "identifiers": {"uprn": "u"}, "fields": {}}},
            },
            {},
            "no source named",
            id="unknown-source",
        ),
        pytest.param(
            {
                "sources": {},
                "datasets": {"d": {"source": "s", "identifiers": {"passport": "p"}, "fields": {}}},
            },
            {},
            "identifiers",
            id="unknown-identifier-type",
        ),
    ],
)
def test_bad_bindings(document: dict[str, Any], variables: dict[str, str], match: str) -> None:
    with pytest.raises(BindingError, match=match):
        parse_bindings(document, variables=variables)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(BindingError, match="cannot read bindings"):
        load_bindings(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(BindingError, match="a mapping"):
        load_bindings(tmp_path / "list.yaml")


def test_unknown_kind_fails_when_sources_are_built() -> None:
    bindings = parse_bindings(_doc(kind="carrier-pigeon"))
    with pytest.raises(BindingError, match="unknown adapter kind 'carrier-pigeon'"):
        Sources(bindings)


def test_a_kind_is_registered_once() -> None:
    registry = AdapterRegistry()
    registry.register("memory", MemoryAdapter)
    with pytest.raises(BindingError, match="registered twice"):
        registry.register("memory", MemoryAdapter)


async def test_memory_adapter_applies_the_guard() -> None:
    bindings = parse_bindings(_doc())
    async with open_sources(bindings) as sources:
        memory = sources.adapter("s")
        assert isinstance(memory, MemoryAdapter)
        memory.put("d", {"pid": "P0000001", "family": "Hartley"})
        record = await sources.fetch("d", parse_subject("person_id", "P0000001"), ["name.family"])
        assert record == {"name": {"family": "Hartley"}}
        with pytest.raises(BindingError, match="no source is bound"):
            await sources.fetch("other", parse_subject("person_id", "P0000001"), ["name.family"])
