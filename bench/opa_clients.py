"""The OPA decision through each client, against the OPA REST test double (docs/policy.md).

    PYTHONPATH=. python bench/opa_clients.py

Median and p95 latency of 300 decisions through ``OpaEngine`` (httpx) and through
opa-python-client's ``OpaClient.query_rule``; then what each does when the double answers 500
and when it stalls for 1 s. Not a test: figures for the choice of client on the decision path.
"""

from __future__ import annotations

import statistics
import time

from opa_client.opa import OpaClient

from broker.policy.bundle import build_bundle
from broker.policy.compiled import compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.input import build_input
from broker.policy.opa import OpaEngine
from tests.policy.fixtures import DEMO_DATA, policy_modules, utc
from tests.policy.opa_double import OpaRestDouble
from tests.policy.test_decision_table import SG, SG_NOW
from tests.support import LOOPBACK_GUARD

data = compile_data(DEMO_DATA)
b, _ = build_bundle(policy_modules(), data)
emb = EmbeddedEngine(policy_modules(), data, b.revision)
inp = build_input(SG, utc(SG_NOW))
N = 300
with OpaRestDouble(emb) as d:
    host, port = d.server.server_address[:2]
    h = OpaEngine(d.url, timeout_seconds=0.5, guard=LOOPBACK_GUARD)
    o = OpaClient(host=host, port=port)
    for _ in range(20):
        h.decide(inp)
        o.query_rule(inp, "sharing", "decision", {"provenance": True})

    def lat(f):
        xs = []
        for _ in range(N):
            t = time.perf_counter()
            f()
            xs.append((time.perf_counter() - t) * 1000)
        xs.sort()
        return statistics.median(xs), xs[int(0.95 * N)]

    print("httpx OpaEngine median/p95 ms", lat(lambda: h.decide(inp)))
    print(
        "opa-python-client median/p95 ms",
        lat(lambda: o.query_rule(inp, "sharing", "decision", {"provenance": True})),
    )
    d.fail_with = 500
    r0 = d.requests
    t = time.perf_counter()
    h.decide(inp)
    print("httpx on 500: requests", d.requests - r0, "s", round(time.perf_counter() - t, 3))
    r0 = d.requests
    t = time.perf_counter()
    try:
        o.query_rule(inp, "sharing", "decision", {"provenance": True})
    except Exception as e:
        print("opa-client raised", type(e).__name__)
    print("opa-client on 500: requests", d.requests - r0, "s", round(time.perf_counter() - t, 3))
    d.fail_with = None
    d.delay_seconds = 1.0
    t = time.perf_counter()
    h.decide(inp)
    print("httpx with 1 s delay: s", round(time.perf_counter() - t, 3))
    t = time.perf_counter()
    try:
        o.query_rule(inp, "sharing", "decision", {"provenance": True})
    except Exception as e:
        print("opa-client raised", type(e).__name__)
    print("opa-client with 1 s delay (default timeout 1.5 s): s", round(time.perf_counter() - t, 3))
    d.delay_seconds = 0
    h.close()
    o.close_connection()
