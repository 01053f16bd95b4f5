"""Where an exchange's time goes: each step of ``POST /v1/exchanges`` timed on its own, in process.

    .venv/bin/python -m bench.exchange_parts [--n 300]

The companion of exchange_bench.py (which measures the whole request through a deployed broker):
a demo broker with the demo sources in this process, and the steps it runs per request called
directly, one at a time: token verification, the client lookup, the policy decision, the source
read, the durable audit append (one commit, so one fsync, per call), the whole service call, one
worker-thread hop, and the full HTTP request over loopback. Prints the median wall time and the
process CPU time per call (CPU includes work in threads and in C code that releases the GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from anyio import to_thread

from broker.audit.entry import new_exchange_id
from broker.core.identifiers import Caller, SubjectId
from broker.exchange.request import ExchangeRequest
from broker.observability import configure_logging
from broker.policy.input import PolicyRequest, build_input
from demo.identity import demo_id_token, register_demo_identity_provider
from demo.sources.runtime import start_demo_sources
from tests.support import demo_key, live_broker

CLIENT = "r9z-ed-safeguarding"
CHILD = "9990000018"


@functools.cache
def _nurse_id_token() -> str:
    return demo_id_token("hospital-ed-nurse-17", "safeguarding-nurse", CLIENT)


def body() -> dict[str, Any]:
    return {
        "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        "subject": {"type": "nhs_number", "value": CHILD},
        "fields": ["name.family", "child_protection_plan.status", "child_protection_plan.category"],
        # The flow needs a verified user: the nurse's ID token (demo sign-in, valid 5 minutes).
        "requested_by": {
            "user_id": "hospital-ed-nurse-17",
            "role": "safeguarding-nurse",
            "id_token": _nurse_id_token(),
        },
        "case_reference": "ED-2026-11-0042",
        "justification": "child attended ED with injuries",
    }


def timed(label: str, call: Callable[[], object], n: int) -> None:
    call()
    samples = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / n * 1e6
    print(f"{label:<48} median {statistics.median(samples) * 1e6:7.0f} µs   CPU {cpu_us:7.0f} µs")


def timed_async(
    label: str, call: Callable[[], Awaitable[object]], n: int, loop: asyncio.AbstractEventLoop
) -> None:
    """Like :func:`timed`, all calls in one task (as in the server: worker threads are reused)."""

    async def run() -> tuple[list[float], float]:
        await call()
        samples = []
        cpu = time.process_time()
        for _ in range(n):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)
        return samples, time.process_time() - cpu

    samples, cpu = loop.run_until_complete(run())
    print(
        f"{label:<48} median {statistics.median(samples) * 1e6:7.0f} µs   "
        f"CPU {cpu / n * 1e6:7.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="calls per step")
    args = parser.parse_args()
    n = args.n
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp_name, start_demo_sources() as demo:
        tmp = Path(tmp_name)
        with live_broker(
            tmp,
            f"sqlite:///{tmp}/broker.db",
            demo=True,
            bindings=demo.bindings,
            agreements_dir=Path(__file__).resolve().parent.parent / "agreements" / "examples",
            rate_limit_per_second=1e6,
        ) as broker:
            s = broker.services
            register_demo_identity_provider(s.identity.store)
            request = ExchangeRequest.model_validate(body())
            caller = Caller(CLIENT, "R9Z", roles=s.registry.get_client(CLIENT).roles)
            now = dt.datetime.now(dt.UTC)
            policy_input = build_input(
                PolicyRequest(
                    client_id=CLIENT,
                    party="R9Z",
                    user_id="hospital-ed-nurse-17",
                    user_role="safeguarding-nurse",
                    purpose=request.purpose,
                    dataset=request.dataset,
                    agreement_id=request.agreement_id,
                    fields=tuple(request.fields or ()),
                    mode="fetch",
                    claims=(),
                    case_reference=request.case_reference,
                    break_glass=False,
                    justification=request.justification,
                    consent="none",
                    user_assurance="verified",
                ),
                now,
            )
            decision = s.policy.decide(policy_input)
            assert decision.allow, decision.reasons
            token = broker.token(CLIENT, demo_key(CLIENT))
            sources = s.sources
            assert sources is not None
            subject = SubjectId("nhs_number", CHILD)
            pseudonym = s.pseudonyms.pseudonymise("nhs_number", CHILD)
            entry = s.exchanges._entry(
                caller, request, pseudonym, decision, now, "hospital-ed-nurse-17", "nurse", False
            )
            loop = asyncio.new_event_loop()

            async def hop() -> None:
                await to_thread.run_sync(lambda: None)

            headers = {"Authorization": f"Bearer {token}"}
            # Verified tokens are remembered: this is the per-request cost of a token seen before.
            timed("verify the access token (seen before)", lambda: s.tokens.verify(token), n)
            timed("look the client up (active, scopes)", lambda: s.registry.find_client(CLIENT), n)
            timed("policy decision (embedded rego-cpp)", lambda: s.policy.decide(policy_input), n)
            timed_async(
                "source read (SQL adapter, SQLite)",
                lambda: sources.fetch(request.dataset, subject, decision.released_fields),
                n,
                loop,
            )
            timed(
                "durable audit append (1 commit, 1 fsync)",
                lambda: s.audit.append(dataclasses.replace(entry, exchange_id=new_exchange_id())),
                n,
            )
            timed_async(
                "ExchangeService.handle (decide, read, append)",
                lambda: s.exchanges.handle(caller, request),
                n,
                loop,
            )
            timed_async("one worker-thread hop (anyio)", hop, n, loop)
            timed(
                "POST /v1/exchanges over loopback (+ client)",
                lambda: broker.http.post("/v1/exchanges", json=body(), headers=headers),
                n,
            )
            timed("GET /healthz over loopback (+ client)", lambda: broker.http.get("/healthz"), n)
            loop.close()


if __name__ == "__main__":
    main()
