"""Closed-loop HTTP load generator (aiohttp): ``--concurrency`` clients, each one request at a time.

Run by ``bench/exchange_bench.py`` as its own OS process, so the load it makes and the server it
measures do not share an interpreter. Every client POSTs JSON bodies in turn (rotating through
the bodies given), over its own keep-alive connection, for ``--warmup`` seconds unmeasured and
then ``--seconds`` measured, and checks each answer (status 200, and with ``--expect-allow`` a
JSON body whose ``decision.allow`` is true). Prints one JSON object on stdout: requests,
throughput, latency percentiles in milliseconds, and every error kind with its count and an
example.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted samples, nearest rank."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def run(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    concurrency: int,
    warmup_s: float,
    seconds: float,
    expect_allow: bool,
    ca: Path | None = None,
) -> dict[str, Any]:
    latencies: list[float] = []
    answered = 0  # every 200, warm-up included (the bench checks the audit log holds them all)
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    measure_from = time.perf_counter() + warmup_s
    stop_at = measure_from + seconds
    # https with a certificate of its own (a load balancer on loopback): trust that file.
    tls = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, ssl=tls)
    timeout = aiohttp.ClientTimeout(total=30)

    def error(kind: str, example: str) -> None:
        errors[kind] += 1
        examples.setdefault(kind, example[:300])

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal answered
        i = offset
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            body = bodies[i % len(bodies)]
            i += 1
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as e:
                if started >= measure_from:
                    error(type(e).__name__, str(e))
                continue
            ended = time.perf_counter()
            if status == 200:
                answered += 1
            if started < measure_from:
                continue
            if status != 200:
                error(f"HTTP {status}", payload.decode("utf-8", "replace"))
                continue
            if expect_allow:
                try:
                    allowed = json.loads(payload)["decision"]["allow"] is True
                except (ValueError, KeyError, TypeError):
                    allowed = False
                if not allowed:
                    error("not allowed", payload.decode("utf-8", "replace"))
                    continue
            latencies.append(ended - started)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session, n) for n in range(concurrency)))
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "ok": len(ordered),
        "throughput_rps": len(ordered) / seconds,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p90_ms": percentile(ordered, 0.90) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "answered_total": answered,
        "errors": dict(errors),
        "error_examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="a JSON list of request bodies")
    parser.add_argument("--token", type=Path, help="a file holding a bearer token")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--expect-allow", action="store_true")
    parser.add_argument("--ca", type=Path, help="the certificate to trust for an https --url")
    args = parser.parse_args()
    bodies = [json.dumps(b).encode() for b in json.loads(args.bodies.read_text())]
    headers = {"Content-Type": "application/json"}
    if args.token is not None:
        headers["Authorization"] = "Bearer " + args.token.read_text().strip()
    work = run(
        args.url,
        bodies,
        headers,
        args.concurrency,
        args.warmup,
        args.seconds,
        args.expect_allow,
        args.ca,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
