"""Adapter latency over loopback, and the HTTP client comparison behind adapters/http.py.

    .venv/bin/python -m bench.adapters_bench          # short run (~20 s)
    .venv/bin/python -m bench.adapters_bench --full   # longer, steadier

Part 1 starts the demo sources (SQLite files, the FHIR server, the police service, the document
store; the HTTP servers run in a background thread of this process) and times sequential fetches
through :class:`adapters.sources.Sources` for random residents: median and p99 per dataset.
These are the baseline the gateway's own overhead is measured against.

Part 2 starts a minimal JSON source in a separate process and compares aiohttp's and httpx's
async clients: per-request latency at one connection, and requests/s at 32 concurrent requests.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from adapters.sources import Sources
from broker.core.identifiers import SubjectId
from demo.sources.runtime import start_demo_sources

SOURCE_PROCESS = r"""
import asyncio, sys
from aiohttp import web
BODY = b'{"resourceType":"Bundle","type":"searchset","total":0}'
async def handle(_request):
    return web.Response(body=BODY, content_type="application/json")
async def main():
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def summary(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered):6.2f} ms  p99 {p99:6.2f} ms  (n={len(ordered)})"


async def time_calls(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(min(20, count)):  # warm pools and caches
        await call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def adapter_latency(count: int) -> None:
    print("Part 1: fetch latency per adapter (sequential, loopback)")
    with start_demo_sources() as demo:
        people = demo.population.people
        rng = random.Random(1)
        children = [p.nhs_number for p in people if p.age() < 18]
        claimants = sorted({d.person_id for d in demo.population.documents})
        inpatients = [a.nhs_number for a in demo.population.admissions]
        cases: list[tuple[str, str, Callable[[], SubjectId], list[str]]] = [
            (
                "sql",
                "ccc.child-protection",
                lambda: SubjectId("nhs_number", rng.choice(children)),
                ["name.family", "child_protection_plan.status", "looked_after.status"],
            ),
            (
                "sql",
                "ccc.council-tax",
                lambda: SubjectId("uprn", rng.choice(demo.population.addresses).uprn),
                ["address.postcode", "single_person_discount.status"],
            ),
            (
                "fhir",
                "r9z.patient-demographics",
                lambda: SubjectId("nhs_number", rng.choice(people).nhs_number),
                ["name.family", "date_of_birth", "gp.practice_code"],
            ),
            (
                "fhir",
                "r9z.discharge-summary",
                lambda: SubjectId("nhs_number", rng.choice(inpatients)),
                ["admission.date", "diagnosis.primary"],
            ),
            (
                "rest",
                "wcp.police-concerns",
                lambda: SubjectId("person_id", rng.choice(people).person_id),
                ["concerns.count"],
            ),
            (
                "documents",
                "ccc.proof-documents",
                lambda: SubjectId("person_id", rng.choice(claimants)),
                ["document.type", "document.sha256"],
            ),
        ]
        sources = Sources(demo.bindings)
        try:
            for kind, dataset, pick, fields in cases:

                async def one(
                    dataset: str = dataset,
                    pick: Callable[[], SubjectId] = pick,
                    fields: list[str] = fields,
                ) -> object:
                    return await sources.fetch(dataset, pick(), fields)

                samples = await time_calls(one, count)
                print(f"  {kind:9} {dataset:26} {summary(samples)}")
        finally:
            await sources.aclose()


def start_source_process() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SOURCE_PROCESS], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{process.stdout.readline().strip()}/"


async def client_comparison(url: str, count: int, concurrency: int) -> None:
    print("Part 2: HTTP clients against a loopback source in another process")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def aio() -> object:
            async with session.get(url) as response:
                return await response.read()

        await report("aiohttp", aio, count, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def hx() -> object:
            return (await client.get(url)).content

        await report("httpx", hx, count, concurrency)


async def report(
    name: str, call: Callable[[], Awaitable[object]], count: int, concurrency: int
) -> None:
    samples = await time_calls(call, count)
    total = count * 4
    started = time.perf_counter()
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = total / (time.perf_counter() - started)
    print(
        f"  {name:8} 1 connection: {summary(samples)}   {concurrency} concurrent: {rate:7.0f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more samples (slower)")
    args = parser.parse_args()
    count = 3000 if args.full else 300
    asyncio.run(adapter_latency(count))
    process, url = start_source_process()
    try:
        asyncio.run(client_comparison(url, count * 2, 32))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
