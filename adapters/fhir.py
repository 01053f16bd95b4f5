"""FHIR R4 adapter (NHS systems), shaped on the NHS Personal Demographics Service FHIR API.

A fetch searches ``Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|<n>``; exactly one Patient
must match and carry that NHS number (wrong-person guard). Other resources a dataset needs
(Encounter, Condition, Flag, ...) are searched with ``patient=<logical id>`` only when an asked
field needs them; each must reference that Patient, and the latest by ``latest_by`` is used.
Every Bundle is parsed and validated with ``fhir.resources`` (R4B models, which read R4 JSON for
these resources). ``_elements`` is sent as a hint only; the broker still projects. Binding::

    sources:  {r9z-fhir: {kind: fhir, endpoint: "http://host/FHIR/R4"}}
    datasets:
      r9z.discharge-summary:
        identifiers: {nhs_number: "Patient.identifier.where(system='...').value"}
        fields: {admission.date: "Encounter.period.start", diagnosis.primary: "Condition.code.text"}
        options:
          resources:             # searched in this order, only if a field needs them
            Encounter: {params: {class: IMP}, latest_by: "Encounter.period.start"}
            Condition: {params: {category: encounter-diagnosis}, link: {encounter: Encounter}}
          types: {admission.date: date}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from adapters import fhirpath
from adapters.base import guard_identity, guard_single
from adapters.bindings import DatasetBinding
from adapters.errors import BindingError, SourceBadData, SubjectNotFound, WrongSubject
from adapters.http import HttpAdapter
from adapters.values import to_catalogue
from broker.core.identifiers import SubjectId
from broker.core.nhs_number import NHS_NUMBER_SYSTEM

FHIR_JSON = "application/fhir+json"


class FhirAdapter(HttpAdapter):
    kind = "fhir"
    accept = FHIR_JSON

    async def _search(
        self, binding: DatasetBinding, resource_type: str, params: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The resources of ``resource_type`` in a validated searchset Bundle."""
        where = {"dataset": binding.dataset, "source": self.source.name}
        try:
            body = await self.get_json(binding, f"/{resource_type}", params, what="FHIR search")
        except SubjectNotFound:
            return []
        try:
            bundle = Bundle.model_validate(body)
        except (ValidationError, ValueError, TypeError) as e:
            raise SourceBadData(
                f"FHIR answer is not a valid Bundle: {_first_error(e)}", **where
            ) from e
        if bundle.type != "searchset":
            raise SourceBadData(f"FHIR answer is a {bundle.type} Bundle, not a searchset", **where)
        resources = [entry.get("resource") for entry in body.get("entry") or []]
        # Only matches count; OperationOutcome entries (search.mode=outcome) are not records.
        return [
            r for r in resources if isinstance(r, dict) and r.get("resourceType") == resource_type
        ]

    async def read(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> dict[str, Any]:
        where = {"dataset": binding.dataset, "source": self.source.name}
        paths = {f: binding.source_path(f) for f in fields}
        try:
            needed = {fhirpath.parse(p).resource_type for p in paths.values()}
            id_path = binding.identifiers[subject.type]
            fhirpath.parse(id_path)
        except ValueError as e:
            raise BindingError(f"dataset {binding.dataset}: {e}") from e
        system = str(binding.options.get("identifier_system", NHS_NUMBER_SYSTEM))
        params = {"identifier": f"{system}|{subject.value}"}
        # The identifier is always asked for: the wrong-person guard needs it.
        patient_paths = [fhirpath.parse(p) for p in [*paths.values(), id_path]]
        elements = sorted(
            {p.steps[0].name for p in patient_paths if p.resource_type == "Patient" and p.steps}
        )
        if elements:
            params["_elements"] = ",".join(elements)
        patients = await self._search(binding, "Patient", params)
        if not patients:
            raise SubjectNotFound("no Patient matches the NHS number", **where)
        guard_single(binding, len(patients))
        patient = patients[0]
        guard_identity(binding, subject, fhirpath.evaluate(patient, id_path))
        patient_id = str(patient.get("id", ""))
        chosen: dict[str, dict[str, Any]] = {"Patient": patient}
        for resource_type, config in (binding.options.get("resources") or {}).items():
            if resource_type not in needed:
                continue
            chosen_one = await self._related(binding, resource_type, config, patient_id, chosen)
            if chosen_one is not None:
                chosen[resource_type] = chosen_one
        unknown = needed - set(chosen) - set(binding.options.get("resources") or {})
        if unknown:
            raise BindingError(
                f"dataset {binding.dataset}: no search configured for {', '.join(sorted(unknown))}"
            )
        values: dict[str, Any] = {}
        for field, path in paths.items():
            resource = chosen.get(fhirpath.parse(path).resource_type)
            raw = fhirpath.evaluate(resource, path) if resource is not None else None
            values[field] = to_catalogue(binding, field, raw)
        return values

    async def _related(
        self,
        binding: DatasetBinding,
        resource_type: str,
        config: Mapping[str, Any],
        patient_id: str,
        chosen: Mapping[str, dict[str, Any]],
    ) -> dict[str, Any] | None:
        params = {
            "patient": patient_id,
            **{k: str(v) for k, v in (config.get("params") or {}).items()},
        }
        for param, other in (config.get("link") or {}).items():
            linked = chosen.get(other)
            if linked is None:
                return None
            params[param] = str(linked.get("id", ""))
        found = await self._search(binding, resource_type, params)
        expected = f"Patient/{patient_id}"
        for resource in found:
            reference = fhirpath.evaluate(resource, f"{resource_type}.subject.reference")
            if reference != expected:
                raise WrongSubject(
                    f"a {resource_type} in the answer is about another patient",
                    dataset=binding.dataset,
                    source=self.source.name,
                )
        if not found:
            return None
        latest_by = config.get("latest_by")
        if latest_by:
            found.sort(key=lambda r: str(fhirpath.evaluate(r, latest_by) or ""), reverse=True)
        return found[0]


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return type(error).__name__
