"""A small FHIR R4 server for the demo hospital trust (R9Z), over real HTTP (aiohttp).

Answers searches in the shape of the NHS Personal Demographics Service FHIR API:
``Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|<n>`` (``_elements`` honoured),
``Encounter?patient=<id>[&class=EMER|IMP]``, ``Condition?patient=<id>[&encounter=<id>]``,
``Flag?patient=<id>`` (CP-IS style child protection and looked-after flags) and ``metadata``.
Patient logical ids are NHS numbers, as in PDS. Faults from :mod:`demo.sources.faults` apply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broker.core.nhs_number import NHS_NUMBER_SYSTEM
from demo.sources.faults import Faults
from demo.sources.records import Address, Person, Population

FHIR_JSON = "application/fhir+json"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
EXT_BASE = "https://fhir.calderbridge.example/StructureDefinition"
UKCORE = "https://fhir.hl7.org.uk"


def patient_resource(person: Person, address: Address) -> dict[str, Any]:
    """A PDS-shaped Patient for ``person`` (restricted patients have no address, as in PDS)."""
    lines = [x for x in (address.line1, address.line2, address.town) if x]
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person.nhs_number,
        "identifier": [
            {
                "system": NHS_NUMBER_SYSTEM,
                "value": person.nhs_number,
                "extension": [
                    {
                        "url": f"{UKCORE}/StructureDefinition/"
                        "Extension-UKCore-NHSNumberVerificationStatus",
                        "valueCodeableConcept": {
                            "coding": [
                                {
                                    "system": f"{UKCORE}/CodeSystem/"
                                    "UKCore-NHSNumberVerificationStatus",
                                    "version": "1.0.0",
                                    "code": "01",
                                    "display": "Number present and verified",
                                }
                            ]
                        },
                    }
                ],
            }
        ],
        "meta": {
            "versionId": "1",
            "security": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                    "code": "R" if person.restricted else "U",
                    "display": "restricted" if person.restricted else "unrestricted",
                }
            ],
        },
        "name": [{"use": "usual", "given": [person.given], "family": person.family}],
        "gender": person.gender,
        "birthDate": person.date_of_birth.isoformat(),
        "telecom": [{"system": "phone", "value": person.phone.replace(" ", ""), "use": "home"}],
        "generalPractitioner": [
            {
                "type": "Organization",
                "identifier": {"system": ODS_SYSTEM, "value": person.gp_practice},
            }
        ],
    }
    if not person.restricted:
        resource["address"] = [
            {
                "use": "home",
                "line": lines,
                "postalCode": address.postcode,
                "extension": [
                    {
                        "url": f"{UKCORE}/StructureDefinition/Extension-UKCore-AddressKey",
                        "extension": [
                            {
                                "url": "type",
                                "valueCoding": {
                                    "system": f"{UKCORE}/CodeSystem/UKCore-AddressKeyType",
                                    "code": "UPRN",
                                },
                            },
                            {"url": "value", "valueString": address.uprn},
                        ],
                    }
                ],
            }
        ]
    return resource


def searchset(resources: list[dict[str, Any]], base: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "search": {"mode": "match", "score": 1},
                "resource": r,
            }
            for r in resources
        ],
    }


class FhirData:
    """Indexes of the population as FHIR resources (built once)."""

    def __init__(self, pop: Population) -> None:
        addresses = {a.uprn: a for a in pop.addresses}
        self.people = {p.nhs_number: p for p in pop.people}
        self.patients = {n: patient_resource(p, addresses[p.uprn]) for n, p in self.people.items()}
        self.encounters: dict[str, list[dict[str, Any]]] = {}
        self.conditions: dict[str, list[dict[str, Any]]] = {}
        self.flags: dict[str, list[dict[str, Any]]] = {}
        for ed in pop.ed_attendances:
            self.encounters.setdefault(ed.nhs_number, []).append(
                {
                    "resourceType": "Encounter",
                    "id": ed.encounter_id,
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "EMER",
                        "display": "emergency",
                    },
                    "subject": {"reference": f"Patient/{ed.nhs_number}"},
                    "period": {"start": ed.date.isoformat(), "end": ed.date.isoformat()},
                    "reasonCode": [{"text": ed.reason}],
                    "location": [{"location": {"display": ed.site}}],
                    "hospitalization": {"dischargeDisposition": {"text": ed.discharge_destination}},
                    "serviceProvider": {"identifier": {"system": ODS_SYSTEM, "value": "R9Z"}},
                }
            )
        for adm in pop.admissions:
            self.encounters.setdefault(adm.nhs_number, []).append(
                {
                    "resourceType": "Encounter",
                    "id": adm.encounter_id,
                    "status": "in-progress",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IMP",
                        "display": "inpatient encounter",
                    },
                    "subject": {"reference": f"Patient/{adm.nhs_number}"},
                    "period": {"start": adm.admitted.isoformat()},
                    "extension": [
                        {
                            "url": f"{EXT_BASE}/expected-discharge-date",
                            "valueDate": adm.expected_discharge.isoformat(),
                        },
                        {"url": f"{EXT_BASE}/care-needs-mobility", "valueString": adm.mobility},
                        {"url": f"{EXT_BASE}/care-needs-summary", "valueString": adm.summary},
                    ],
                    "hospitalization": {"dischargeDisposition": {"text": adm.destination}},
                    "serviceProvider": {"identifier": {"system": ODS_SYSTEM, "value": "R9Z"}},
                }
            )
            self.conditions.setdefault(adm.nhs_number, []).append(
                {
                    "resourceType": "Condition",
                    "id": f"cond-{adm.encounter_id}",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                    "code": "encounter-diagnosis",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/sid/icd-10",
                                "code": adm.diagnosis_code,
                                "display": adm.diagnosis,
                            }
                        ],
                        "text": adm.diagnosis,
                    },
                    "subject": {"reference": f"Patient/{adm.nhs_number}"},
                    "encounter": {"reference": f"Encounter/{adm.encounter_id}"},
                    "recordedDate": adm.admitted.isoformat(),
                }
            )
        people_by_id = {p.person_id: p for p in pop.people}
        for plan in pop.plans:
            if plan.status == "active":
                self._flag(
                    people_by_id[plan.person_id],
                    "CPP",
                    "Child Protection Plan",
                    plan.start_date.isoformat(),
                )
        for la in pop.looked_after:
            self._flag(
                people_by_id[la.person_id],
                "LAC",
                "Looked After Child",
                la.placement_start.isoformat(),
            )

    def _flag(self, person: Person, code: str, text: str, start: str) -> None:
        flags = self.flags.setdefault(person.nhs_number, [])
        flags.append(
            {
                "resourceType": "Flag",
                "id": f"flag-{person.nhs_number}-{code.lower()}",
                "status": "active",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                "code": "safety",
                                "display": "Safety",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": f"{EXT_BASE}/cp-is-flag", "code": code, "display": text}],
                    "text": text,
                },
                "subject": {"reference": f"Patient/{person.nhs_number}"},
                "period": {"start": start},
                "author": {"display": "Calderbridge City Council"},
            }
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fault_middleware(faults: Faults) -> Any:
    @web.middleware
    async def apply(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = faults.take()
        request["fault"] = fault
        if fault == "slow":
            await asyncio.sleep(faults.delay_seconds)
        elif fault == "error":
            return web.json_response(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "exception"}],
                },
                status=500,
                content_type=FHIR_JSON,
            )
        elif fault == "garbage":
            return web.Response(body=b"<html>\x00\xff not json", content_type="text/html")
        return await handler(request)

    return apply


def build_fhir_app(pop: Population, faults: Faults) -> web.Application:
    """The aiohttp application; mount point ``/FHIR/R4``."""
    data = FhirData(pop)
    others = sorted(data.patients)
    app = web.Application(middlewares=[fault_middleware(faults)])

    def respond(request: web.Request, resources: list[dict[str, Any]]) -> web.Response:
        base = f"{request.scheme}://{request.host}/FHIR/R4"
        if request.get("fault") == "invalid":
            body: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Patient", "birthDate": "not-a-date"}}],
            }
        else:
            body = searchset(resources, base)
        return web.Response(text=json.dumps(body), content_type=FHIR_JSON)

    def other_person(nhs: str) -> dict[str, Any]:
        return data.patients[
            others[(others.index(nhs) + 1) % len(others)] if nhs in data.patients else others[0]
        ]

    async def patient(request: web.Request) -> web.Response:
        system, _, value = request.query.get("identifier", "").partition("|")
        if system != NHS_NUMBER_SYSTEM or not value:
            return web.json_response(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "invalid",
                            "diagnostics": "identifier must be https://fhir.nhs.uk/Id/nhs-number|<n>",
                        }
                    ],
                },
                status=400,
                content_type=FHIR_JSON,
            )
        found = [data.patients[value]] if value in data.patients else []
        fault = request.get("fault")
        if fault == "wrong_person":
            found = [other_person(value)]
        elif fault == "two_matches" and found:
            found = [found[0], other_person(value)]
        elements = [e for e in request.query.get("_elements", "").split(",") if e]
        if elements:
            keep = {"resourceType", "id", "meta", "identifier", *elements}
            found = [{k: v for k, v in r.items() if k in keep} for r in found]
        return respond(request, found)

    def by_patient(index: dict[str, list[dict[str, Any]]]) -> Handler:
        async def search(request: web.Request) -> web.Response:
            patient_id = request.query.get("patient", "")
            found = list(index.get(patient_id, []))
            wanted_class = request.query.get("class")
            if wanted_class:
                found = [r for r in found if r.get("class", {}).get("code") == wanted_class]
            encounter = request.query.get("encounter")
            if encounter:
                found = [
                    r
                    for r in found
                    if r.get("encounter", {}).get("reference") == f"Encounter/{encounter}"
                ]
            if request.get("fault") == "wrong_person" and found:
                found = [{**found[0], "subject": {"reference": "Patient/9990000026"}}]
            return respond(request, found)

        return search

    async def metadata(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "date": "2026-11-01",
            },
            content_type=FHIR_JSON,
        )

    app.router.add_get("/FHIR/R4/Patient", patient)
    app.router.add_get("/FHIR/R4/Encounter", by_patient(data.encounters))
    app.router.add_get("/FHIR/R4/Condition", by_patient(data.conditions))
    app.router.add_get("/FHIR/R4/Flag", by_patient(data.flags))
    app.router.add_get("/FHIR/R4/metadata", metadata)
    return app
