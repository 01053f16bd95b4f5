"""Load for a cluster (bench/topology.py), run as a process of its own; one JSON line per attempt.

    python bench/cluster_load.py --url https://127.0.0.1:PORT --ca tls.crt \\
        --subjects-db SOURCES/council/childrens_social_care.db --seconds 20 --out load.jsonl

(``--until-file F``: after ``--seconds``, go on until F exists: a test ends the load once what it
waits for has happened.)

Two demo systems send ``POST /v1/exchanges`` through the load balancer:

* ``r9z-ed-safeguarding`` (``--concurrency`` closed-loop workers): the emergency department's
  child protection check under ISA-SAFEGUARDING-CHILDREN, the nurse proven by her demo ID token;
* ``r9z-discharge`` (``--paced-rate`` requests per second, open loop, one in flight): a system
  sent faster than its rate limit, to show the limit is counted once across instances.

Every request carries a fresh ``Idempotency-Key``; a failed attempt (no answer, 5xx, or 409 "still
being processed") is retried with the same key and body, up to ``--attempts`` times. Each attempt
is a line: ``client``, ``key``, ``attempt``, ``agreement``, ``sent``/``received`` (Unix seconds),
``status``, ``exchange_id``, ``allow``, ``released`` (number of fields in the ``record``
answered), ``instance`` (null: the balancer does not say), ``error``. The last line is
``{"done": true, ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import ssl
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import IO, Any

import httpx

if __package__ in (None, ""):  # run as a script: the repository on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import make_client_assertion
from demo.identity import demo_id_token
from demo.keys import demo_client_key

ED_CLIENT = "r9z-ed-safeguarding"
PACED_CLIENT = "r9z-discharge"
AGREEMENT = "ISA-SAFEGUARDING-CHILDREN"
NURSE = ("hospital-ed-nurse-17", "safeguarding-nurse")
RETRYABLE = {409, 500, 502, 503, 504}


def subjects(db: Path, n: int = 32) -> list[str]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT nhs_number FROM child_protection_summary ORDER BY nhs_number LIMIT ?", (n,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def body(nhs_number: str, id_token: str | None) -> dict[str, Any]:
    requested_by: dict[str, Any] = {"user_id": NURSE[0], "role": NURSE[1]}
    if id_token is not None:
        requested_by["id_token"] = id_token
    return {
        "agreement_id": AGREEMENT,
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        "subject": {"type": "nhs_number", "value": nhs_number},
        "fields": ["name.family", "child_protection_plan.status"],
        "requested_by": requested_by,
        "case_reference": "ED-2026-11-0042",
        "justification": "child attended ED with injuries",
    }


async def token(client: httpx.AsyncClient, url: str, client_id: str) -> str:
    for _ in range(20):  # through the balancer: a POST that failed is tried again
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": make_client_assertion(
                client_id, demo_client_key(client_id), f"{url}/oauth2/token"
            ),
        }
        try:
            response = await client.post(f"{url}/oauth2/token", data=form)
            if response.status_code == 200:
                return str(response.json()["access_token"])
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"no token for {client_id}")


class Load:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args = args
        self.out = out
        self.stop_at = 0.0
        self.hard_stop = 0.0
        self.requests = 0

    def running(self) -> bool:
        """Until ``--seconds`` have passed and, with ``--until-file``, that file exists (or
        ``--max-seconds`` have passed)."""
        now = time.time()
        if now >= self.hard_stop:
            return False
        if now < self.stop_at:
            return True
        return self.args.until_file is not None and not self.args.until_file.exists()

    def record(self, line: dict[str, Any]) -> None:
        self.out.write(json.dumps(line) + "\n")

    async def exchange(
        self, client: httpx.AsyncClient, client_id: str, bearer: str, payload: dict[str, Any]
    ) -> None:
        """One request and its retries under one key."""
        key = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {bearer}", "Idempotency-Key": key}
        self.requests += 1
        for attempt in range(1, self.args.attempts + 1):
            line: dict[str, Any] = {
                "client": client_id,
                "key": key,
                "attempt": attempt,
                "agreement": payload["agreement_id"],
                "sent": time.time(),
                "status": None,
                "exchange_id": None,
                "allow": None,
                "released": None,
                "instance": None,
                "error": None,
            }
            try:
                response = await client.post(
                    f"{self.args.url}/v1/exchanges", json=payload, headers=headers
                )
                line["received"] = time.time()
                line["status"] = response.status_code
                try:
                    answer = response.json()
                except ValueError:
                    answer = {}
                if isinstance(answer, dict):
                    line["exchange_id"] = answer.get("exchange_id")
                    decision = answer.get("decision")
                    if isinstance(decision, dict):
                        line["allow"] = decision.get("allow")
                    record = answer.get("record")
                    line["released"] = len(record) if isinstance(record, dict) else 0
            except httpx.HTTPError as e:
                line["received"] = time.time()
                line["error"] = type(e).__name__
            self.record(line)
            if line["error"] is None and line["status"] not in RETRYABLE:
                return
            await asyncio.sleep(0.25 * attempt)

    async def ed_worker(
        self, client: httpx.AsyncClient, bearer: str, people: list[str], n: int
    ) -> None:
        id_token = demo_id_token(NURSE[0], NURSE[1], ED_CLIENT)
        i = n
        while self.running():
            await self.exchange(client, ED_CLIENT, bearer, body(people[i % len(people)], id_token))
            i += self.args.concurrency
            await asyncio.sleep(self.args.pause)

    async def paced(self, client: httpx.AsyncClient, bearer: str, people: list[str]) -> None:
        interval = 1.0 / self.args.paced_rate
        i = 0
        while self.running():
            started = time.time()
            await self.exchange(client, PACED_CLIENT, bearer, body(people[i % len(people)], None))
            i += 1
            await asyncio.sleep(max(0.0, interval - (time.time() - started)))

    async def run(self) -> None:
        people = subjects(self.args.subjects_db)
        limits = httpx.Limits(max_connections=self.args.concurrency + 4)
        timeout = httpx.Timeout(30.0)
        context = ssl.create_default_context(cafile=str(self.args.ca))
        async with httpx.AsyncClient(verify=context, limits=limits, timeout=timeout) as c:
            ed = await token(c, self.args.url, ED_CLIENT)
            slow = await token(c, self.args.url, PACED_CLIENT)
            started = time.time()
            self.record({"started": started})
            self.out.flush()
            self.stop_at = started + self.args.seconds
            self.hard_stop = started + max(self.args.seconds, self.args.max_seconds)
            tasks = [self.ed_worker(c, ed, people, n) for n in range(self.args.concurrency)]
            if self.args.paced_rate > 0:
                tasks.append(self.paced(c, slow, people))
            await asyncio.gather(*tasks)
        self.record({"done": True, "requests": self.requests, "ended": time.time()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the load balancer's base URL")
    parser.add_argument("--ca", type=Path, required=True, help="the certificate to trust")
    parser.add_argument("--subjects-db", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--until-file", type=Path, help="after --seconds, go on until this file exists"
    )
    parser.add_argument("--max-seconds", type=float, default=90.0, help="with --until-file")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between requests")
    parser.add_argument("--paced-rate", type=float, default=10.0)
    parser.add_argument("--attempts", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with args.out.open("w", buffering=1) as out:
        asyncio.run(Load(args, out).run())


if __name__ == "__main__":
    main()
