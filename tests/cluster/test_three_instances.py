"""Three broker instances on PostgreSQL behind HAProxy, with Redis, under load from another process.

The topology is bench/topology.py (HAProxy's configuration derived from deploy/haproxy/). For
about 20 s bench/cluster_load.py sends the ED safeguarding check (``r9z-ed-safeguarding``) and a
system sent faster than its low rate limit (``r9z-discharge``). Meanwhile one instance is killed
with SIGKILL and started again, and the hospital trust revokes ISA-SAFEGUARDING-CHILDREN with
``broker agreements revoke`` into the agreements directory every instance reads. Clients retry a
failed POST with the same ``Idempotency-Key`` (the balancer never retries a write).

Afterwards: every 2xx has exactly one log entry and no key made two; ``broker audit verify``
passes; nothing answered more than 2 s after the revocation was recorded released data under
it; the only 5xx came from the killed instance (HAProxy's log names the server of each request);
the slow system got its limit once, not once per instance; no webhook was delivered twice.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.cluster_load import AGREEMENT, ED_CLIENT, PACED_CLIENT
from bench.topology import REPO, Cluster, haproxy_requests, tail
from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import make_client_assertion
from broker.db.engine import build_engine
from demo.keys import demo_client_key
from tests.cluster.conftest import require

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECONDS = 20.0
KILL_AT, REVOKE_AT = 4.0, 9.0
AFTER_BOUND = 3.0
"""Seconds of load after the 2 s bound (the load runs at least SECONDS, and until then)."""
KILLED = 1  # broker2
PACED_RATE = 1.0
"""r9z-discharge's configured rate (requests per second); with a burst of BURST its limit is
BURST requests in any window of BURST / PACED_RATE seconds, counted in Redis."""
BURST = 4
REVOCATION_BOUND = 2.0


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _revoke(cluster: Cluster, at: float) -> Path:
    time.sleep(max(0.0, at - time.time()))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker",
            "agreements",
            "revoke",
            AGREEMENT,
            "--party",
            "R9Z",
            "--key",
            str(REPO / "agreements" / "demo-keys" / "R9Z.pem"),
            "--reason",
            "Trust suspends the ED checks during a records migration",
            "--root",
            str(cluster.agreements_dir),
        ],
        cwd=cluster.root,
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"revocation written: (\S+)", done.stdout)
    assert match is not None, done.stdout
    return Path(match.group(1))


def _replay_as_another_party(cluster: Cluster, lines: list[dict[str, Any]]) -> list[Any]:
    """A partner system with stolen credentials (the police MASH system's) sends an ED check
    under an Idempotency-Key the hospital used for an answer that released data, once to every
    instance: the answers it gets."""
    from bench.cluster_load import body

    released = next(a for a in lines if a.get("status") == 200 and a.get("released"))
    assertion = make_client_assertion(
        "wcp-mash", demo_client_key("wcp-mash"), f"{cluster.url}/oauth2/token"
    )
    with cluster.client(timeout=30) as client:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        bearer = client.post("/oauth2/token", data=form).json()["access_token"]
        answers = []
        for _ in cluster.members:
            response = client.post(
                "/v1/exchanges",
                json=body("9990000018", None),
                headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": released["key"]},
            )
            answers.append((response.status_code, response.json(), released["exchange_id"]))
    return answers


def _event_id(event: dict[str, Any]) -> str | None:
    for holder in (event, event.get("data") or {}):
        if isinstance(holder, dict) and isinstance(holder.get("exchange_id"), str):
            return str(holder["exchange_id"])
    return None


def test_three_instances_survive_a_kill_and_a_revocation_under_load(tmp_path: Path) -> None:
    pg = require()
    with Cluster(
        tmp_path / "cluster",
        pg,
        instances=3,
        rate_limit_burst=BURST,
        rate_overrides={ED_CLIENT: 100000.0, PACED_CLIENT: PACED_RATE},
    ) as cluster:
        out = tmp_path / "load.jsonl"
        load_log = tmp_path / "load.log"
        command = [
            sys.executable,
            str(REPO / "bench" / "cluster_load.py"),
            "--url",
            cluster.url,
            "--ca",
            str(cluster.ca_file),
            "--subjects-db",
            str(cluster.sources.root / "council" / "childrens_social_care.db"),
            "--seconds",
            str(SECONDS),
            "--paced-rate",
            "10",
            "--until-file",
            str(tmp_path / "stop"),
            "--out",
            str(out),
        ]
        with load_log.open("wb") as log:
            load = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not (out.exists() and out.read_text().startswith('{"started"')):
                assert load.poll() is None, tail(load_log)
                assert time.monotonic() < deadline, "the load did not start"
                time.sleep(0.1)
            started = _lines(out)[0]["started"]
            time.sleep(max(0.0, started + KILL_AT - time.time()))
            killed_at = time.time()
            cluster.kill(KILLED)
            with ThreadPoolExecutor(1) as pool:  # the operator revokes while it restarts
                revoking = pool.submit(_revoke, cluster, started + REVOKE_AT)
                time.sleep(1.0)
                cluster.restart(KILLED)
                restarted_at = time.time()
                revocation = revoking.result(timeout=180)
            revoked_at = revocation.stat().st_mtime  # when the revocation was recorded
            end = max(started + SECONDS, revoked_at + REVOCATION_BOUND + AFTER_BOUND)
            time.sleep(max(0.0, end - time.time()))
            (tmp_path / "stop").touch()
            assert load.wait(timeout=120) == 0, tail(load_log)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait(timeout=10)
        stolen = _replay_as_another_party(cluster, _lines(out))
        # The outbox drains: give the webhook deliveries a few seconds after the load.
        receiver = cluster.sources.webhook_receiver
        settle = time.monotonic() + 15
        seen = -1
        while time.monotonic() < settle and len(receiver.snapshot()) != seen:
            seen = len(receiver.snapshot())
            time.sleep(2.0)
        verify = subprocess.run(
            [sys.executable, "-m", "broker", "audit", "verify", "--json"],
            cwd=cluster.root,
            env=cluster.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        engine = build_engine(cluster.database_url, pooled=False)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT exchange_id, client_id FROM audit_entries WHERE kind = 'exchange'"
                    )
                ).all()
        finally:
            engine.dispose()
        requests = haproxy_requests(cluster.haproxy_log)
        killed_name = cluster.members[KILLED].name
        received = receiver.snapshot()
        attempts, rejected = receiver.attempts, receiver.rejected

    lines = _lines(out)
    attempts_made = [line for line in lines if "key" in line]
    assert lines[-1].get("done") is True
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in attempts_made:
        by_key[line["key"]].append(line)
    print(
        f"\nload: {len(by_key)} requests, {len(attempts_made)} attempts in"
        f" {lines[-1]['ended'] - started:.1f} s;"
        f" {killed_name} killed at +{killed_at - started:.1f} s, ready again at"
        f" +{restarted_at - started:.1f} s; {AGREEMENT} revoked at +{revoked_at - started:.1f} s"
    )

    # Every 2xx has exactly one log entry; no key made two.
    logged = Counter(exchange_id for exchange_id, _ in rows)
    ok = [a for a in attempts_made if a["status"] is not None and 200 <= a["status"] < 300]
    assert ok, "no exchange succeeded"
    assert all(a["exchange_id"] for a in ok)
    assert [a["exchange_id"] for a in ok if logged[a["exchange_id"]] != 1] == []
    answered_ids = {a["exchange_id"] for a in attempts_made if a["exchange_id"]}
    for key, tries in by_key.items():
        ids = {a["exchange_id"] for a in tries if a["exchange_id"]}
        assert len(ids) <= 1, f"key {key} was answered with two exchanges: {ids}"
    unresolved = [
        key
        for key, tries in by_key.items()
        if tries[-1]["error"] is not None or tries[-1]["status"] in (409, 500, 502, 503, 504)
    ]
    load_clients = {ED_CLIENT, PACED_CLIENT}
    unmatched = [e for e, client in rows if client in load_clients and e not in answered_ids]
    # Each key makes at most one entry: an entry no client saw must be a key left unanswered.
    assert len(unmatched) <= len(unresolved), (unmatched, unresolved)
    retried = sum(1 for tries in by_key.values() if len(tries) > 1)
    print(
        f"log: {len(rows)} exchange entries, {len(ok)} 2xx answers each logged once;"
        f" {retried} requests retried, {len(unresolved)} left unanswered,"
        f" {len(unmatched)} entries whose answer no client received"
    )

    # The log verifies.
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True

    # Nothing answered later than 2 s after the revocation released data under it.
    late = [
        a
        for a in attempts_made
        if a["agreement"] == AGREEMENT
        and a["status"] is not None
        and a["received"] > revoked_at + REVOCATION_BOUND
    ]
    assert late, "no answer came after the revocation: the check would prove nothing"
    released_late = [a for a in late if a["allow"] or a["released"] or a["status"] < 300]
    assert released_late == [], released_late[:3]
    before = [a for a in ok if a["client"] == ED_CLIENT and a["received"] < revoked_at]
    assert any(a["released"] for a in before), "nothing was released before the revocation"
    last_allowed = max(a["received"] for a in ok if a["client"] == ED_CLIENT)
    print(
        f"revocation: last allowed answer {last_allowed - revoked_at:+.2f} s from the recording;"
        f" {len(late)} answers after the {REVOCATION_BOUND:g} s bound, none released data"
    )

    # No 5xx except on connections to the killed instance.
    exchanges = [r for r in requests if r["path"].startswith("/v1/exchanges")]
    served = Counter(r["server"] for r in exchanges)
    failed = Counter(r["server"] for r in exchanges if r["status"].startswith("5"))
    client_5xx = [a for a in attempts_made if a["status"] is not None and a["status"] >= 500]
    client_errors = [a for a in attempts_made if a["error"] is not None]
    print(
        f"5xx: {len(client_5xx)} seen by clients; HAProxy's log by server: {dict(failed)}"
        f" of {dict(served)} exchange requests; {len(client_errors)} client-side errors"
    )
    assert set(failed) <= {killed_name}, dict(failed)
    assert len(client_5xx) == sum(failed.values())
    # A request in flight on a kept-alive connection to the killed instance has its connection
    # closed without an answer (HAProxy never retries a write): the client retries, same key.
    outside = [a for a in client_errors if not killed_at - 1 <= a["sent"] <= restarted_at + 2]
    assert outside == [], Counter(a["error"] for a in outside)
    assert len(served) == 3  # every instance took part

    # The slow system's limit held across the instances: its rate, once, not once per instance.
    paced = [a for a in attempts_made if a["client"] == PACED_CLIENT and a["status"] is not None]
    allowed = [a for a in paced if a["status"] != 429 and a["status"] < 500]
    span = max(a["sent"] for a in paced) - min(a["sent"] for a in paced)
    window = BURST / PACED_RATE
    bound = BURST * (math.ceil(span / window) + 1)
    print(
        f"rate limit: {PACED_CLIENT} sent {len(paced)} in {span:.1f} s, {len(allowed)} let"
        f" through (limit {BURST} per {window:g} s: at most {bound}; per instance it would be"
        f" up to {3 * bound})"
    )
    assert 0 < len(allowed) <= bound
    assert len(paced) > 3 * bound  # sent fast enough that a per-instance count would show

    # Another party replaying the hospital's key gets nothing of the hospital's answer.
    for status, answer, hospital_exchange in stolen:
        assert status == 403, answer
        assert "record" not in answer
        assert answer.get("exchange_id") != hospital_exchange

    # No webhook delivered twice.
    event_ids = [_event_id(e) for e in received]
    assert received, "no provider notification was delivered"
    assert None not in event_ids
    assert len(set(event_ids)) == len(event_ids)
    assert rejected == 0
    assert attempts == len(received)  # no delivery was repeated, even once answered
    notified = {a["exchange_id"] for a in ok if a["client"] == ED_CLIENT and a["released"]}
    assert set(event_ids) <= {e for e, _ in rows}
    print(
        f"webhooks: {len(received)} delivered once each, {attempts} attempts;"
        f" {len(notified & set(event_ids))} of {len(notified)} released ED checks notified"
    )
