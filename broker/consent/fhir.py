"""Consent records as HL7 FHIR R4 ``Consent`` resources, and back. Pure.

Mapping (R4 ``Consent``; R4B did not change it, so ``fhir.resources.R4B`` validates it):

- ``status``: ``active`` / ``inactive``; ``scope``: ``patient-privacy``; ``category``: LOINC
  59284-0 (patient consent); ``policyRule``: v3 ``OPTIN``; ``policy[0].uri``: the agreement
  (``urn:isa:<id>:v<version>``).
- ``patient``: a logical reference by *pseudonym* identifier (system names the key version and
  identifier type); never the identifier itself.
- ``dateTime``: when it was recorded; ``organization``: the recording party.
- ``provision``: ``type: permit``, ``period``, two actors (v3 ParticipationType ``CST``
  custodian = the sharing party, ``IRCP`` information recipient = the receiving party),
  ``purpose`` (one coding), ``data`` (one ``related`` reference per dataset) and ``code``
  (document types, when narrowed).
- ``sourceReference``: the evidence of a consent given before it was recorded (identifier
  system ``urn:broker:consent-evidence``), with the extension ``consent-given-at``.
- Broker extensions: how consent was collected, the named person who recorded it (and role),
  the recording client, and the withdrawal (time, client, reason).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, cast

from broker.consent.model import ConsentRecord

EXT: Final = "https://broker.example/fhir/StructureDefinition/"
PARTY_SYSTEM: Final = "urn:broker:party"
DATASET_SYSTEM: Final = "urn:broker:dataset"
PURPOSE_SYSTEM: Final = "urn:broker:purpose"
DOCUMENT_TYPE_SYSTEM: Final = "urn:broker:document-type"
PSEUDONYM_SYSTEM: Final = "urn:broker:pseudonym"
EVIDENCE_SYSTEM: Final = "urn:broker:consent-evidence"
PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def _time(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _ms(text: str) -> int:
    return round(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _party(party: str) -> dict[str, Any]:
    return {"identifier": {"system": PARTY_SYSTEM, "value": party}}


def _actor(code: str, party: str) -> dict[str, Any]:
    return {
        "role": {"coding": [{"system": PARTICIPATION, "code": code}]},
        "reference": _party(party),
    }


def to_fhir(record: ConsentRecord) -> dict[str, Any]:
    """The FHIR R4 Consent JSON of ``record``."""
    period: dict[str, str] = {"start": _time(record.period_start_ms)}
    if record.period_end_ms is not None:
        period["end"] = _time(record.period_end_ms)
    provision: dict[str, Any] = {
        "type": "permit",
        "period": period,
        "actor": [_actor("CST", record.from_party), _actor("IRCP", record.to_party)],
        "purpose": [{"system": PURPOSE_SYSTEM, "code": record.purpose}],
        "data": [
            {
                "meaning": "related",
                "reference": {"identifier": {"system": DATASET_SYSTEM, "value": d}},
            }
            for d in record.datasets
        ],
    }
    if record.document_types:
        provision["code"] = [
            {"coding": [{"system": DOCUMENT_TYPE_SYSTEM, "code": t}]} for t in record.document_types
        ]
    extensions: list[dict[str, Any]] = [
        {"url": EXT + "consent-collection-method", "valueCode": record.collection_method},
        {"url": EXT + "consent-recorded-by", "valueString": record.recorded_by_name},
        {"url": EXT + "consent-recorder-client", "valueString": record.recorder_client},
    ]
    if record.recorded_by_role is not None:
        extensions.append(
            {"url": EXT + "consent-recorded-by-role", "valueString": record.recorded_by_role}
        )
    if record.given_at_ms is not None:
        extensions.append(
            {"url": EXT + "consent-given-at", "valueDateTime": _time(record.given_at_ms)}
        )
    if record.withdrawn_at_ms is not None:
        extensions.append(
            {"url": EXT + "consent-withdrawn-at", "valueDateTime": _time(record.withdrawn_at_ms)}
        )
    if record.withdrawn_by_client is not None:
        extensions.append(
            {"url": EXT + "consent-withdrawn-by-client", "valueString": record.withdrawn_by_client}
        )
    if record.withdrawal_reason is not None:
        extensions.append(
            {"url": EXT + "consent-withdrawal-reason", "valueString": record.withdrawal_reason}
        )
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": record.id,
        "extension": extensions,
        "status": record.status,
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {
            "identifier": {
                "system": (
                    f"{PSEUDONYM_SYSTEM}:{record.subject_key_version}:{record.subject_type}"
                ),
                "value": record.subject_pseudonym,
            }
        },
        "dateTime": _time(record.recorded_at_ms),
        "organization": [_party(record.recorder_party)],
        "policy": [{"uri": f"urn:isa:{record.agreement_id}:v{record.agreement_version}"}],
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": provision,
    }
    if record.evidence_reference is not None:
        resource["sourceReference"] = {
            "identifier": {"system": EVIDENCE_SYSTEM, "value": record.evidence_reference}
        }
    return resource


def from_fhir(doc: dict[str, Any]) -> ConsentRecord:
    """The record a :func:`to_fhir` document describes. Raises ``ValueError`` (or ``KeyError``)
    for a Consent this broker did not write."""
    if doc.get("resourceType") != "Consent":
        raise ValueError("not a Consent resource")
    ext = {e["url"].removeprefix(EXT): e for e in doc.get("extension", [])}

    def ext_value(name: str, kind: str) -> str | None:
        found = ext.get(name)
        return None if found is None else str(found[kind])

    prefix, key_version, subject_type = doc["patient"]["identifier"]["system"].rsplit(":", 2)
    if prefix != PSEUDONYM_SYSTEM:
        raise ValueError("the patient is not identified by a broker pseudonym")
    policy = doc["policy"][0]["uri"].removeprefix("urn:isa:")
    agreement_id, _, version = policy.rpartition(":v")
    provision = doc["provision"]
    actors = {
        a["role"]["coding"][0]["code"]: a["reference"]["identifier"]["value"]
        for a in provision["actor"]
    }
    period = provision["period"]
    withdrawn_at = ext_value("consent-withdrawn-at", "valueDateTime")
    given_at = ext_value("consent-given-at", "valueDateTime")
    evidence = doc.get("sourceReference", {}).get("identifier", {}).get("value")
    return ConsentRecord(
        id=doc["id"],
        status=cast("Any", doc["status"]),
        agreement_id=agreement_id,
        agreement_version=int(version),
        subject_type=subject_type,
        subject_pseudonym=doc["patient"]["identifier"]["value"],
        subject_key_version=key_version,
        from_party=actors["CST"],
        to_party=actors["IRCP"],
        purpose=provision["purpose"][0]["code"],
        datasets=tuple(d["reference"]["identifier"]["value"] for d in provision["data"]),
        document_types=tuple(c["coding"][0]["code"] for c in provision.get("code", [])),
        period_start_ms=_ms(period["start"]),
        period_end_ms=_ms(period["end"]) if "end" in period else None,
        collection_method=cast("Any", ext_value("consent-collection-method", "valueCode")),
        recorded_by_name=str(ext_value("consent-recorded-by", "valueString")),
        recorded_by_role=ext_value("consent-recorded-by-role", "valueString"),
        recorder_party=doc["organization"][0]["identifier"]["value"],
        recorder_client=str(ext_value("consent-recorder-client", "valueString")),
        recorded_at_ms=_ms(doc["dateTime"]),
        withdrawn_at_ms=_ms(withdrawn_at) if withdrawn_at else None,
        withdrawn_by_client=ext_value("consent-withdrawn-by-client", "valueString"),
        withdrawal_reason=ext_value("consent-withdrawal-reason", "valueString"),
        given_at_ms=_ms(given_at) if given_at else None,
        evidence_reference=None if evidence is None else str(evidence),
    )
