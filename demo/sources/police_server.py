"""The West Calder Police concerns service: a small REST/JSON API over real HTTP (aiohttp).

``GET /api/v1/concerns?nhs_number=<n>`` or ``?person_id=<id>`` answers
``{"results": [{"subject": {...}, "concerns": {...}, "domestic_abuse": {...}}]}``; every
Calderbridge resident is known (most with no concerns); anyone else gets no results.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from demo.sources.faults import Faults
from demo.sources.records import Person, PoliceRecord, Population


def _match(person: Person, record: PoliceRecord | None) -> dict[str, Any]:
    return {
        "subject": {"nhs_number": person.nhs_number, "person_id": person.person_id},
        "concerns": {
            "count": record.concerns if record else 0,
            "latest": {
                "date": record.latest_date.isoformat() if record and record.latest_date else None,
                "category": record.latest_category if record else None,
            },
        },
        "domestic_abuse": {
            "notifications_last_12_months": record.domestic_abuse_last_12_months if record else 0
        },
    }


def build_police_app(pop: Population, faults: Faults) -> web.Application:
    records = {r.person_id: r for r in pop.police}
    by_nhs = {p.nhs_number: p for p in pop.people}
    by_id = {p.person_id: p for p in pop.people}
    ordered = pop.people

    async def concerns(request: web.Request) -> web.StreamResponse:
        fault = faults.take()
        if fault == "slow":
            await asyncio.sleep(faults.delay_seconds)
        elif fault == "error":
            return web.json_response({"error": "internal"}, status=500)
        elif fault == "garbage":
            return web.Response(body=b"\x89PNG garbage", content_type="application/octet-stream")
        elif fault == "invalid":
            return web.json_response({"unexpected": True})
        person = by_nhs.get(request.query.get("nhs_number", "")) or by_id.get(
            request.query.get("person_id", "")
        )
        found = [person] if person else []
        if fault == "wrong_person" and person:
            found = [ordered[(ordered.index(person) + 1) % len(ordered)]]
        elif fault == "two_matches" and person:
            found = [person, ordered[(ordered.index(person) + 1) % len(ordered)]]
        return web.json_response({"results": [_match(p, records.get(p.person_id)) for p in found]})

    app = web.Application()
    app.router.add_get("/api/v1/concerns", concerns)
    return app
