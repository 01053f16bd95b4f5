"""How long a revocation, and a new agreement version, take to reach every instance.

    .venv/bin/python -m bench.revocation_reach                 # 3 instances, 20 trials of each
    .venv/bin/python -m bench.revocation_reach --trials 5 --instances 2
    BROKER_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.revocation_reach              # on PostgreSQL (a fresh schema)

N ``broker serve`` processes on loopback share one database (PostgreSQL when
``BROKER_TEST_DATABASE_URL`` is set, else a SQLite file), the same secrets and public URL, each
with its own copy of the demo's example agreements (as N hosts would hold them), polling the
agreements every ``--poll`` seconds (``policy_poll_seconds``, default 0.5). Each trial:

* **new version**: a new version of ISA-HOSPITAL-DISCHARGE, signed by both its parties, is written
  into every instance's agreements directory (as the operator distributes it); timed from the
  last write until every instance's ``/readyz`` reports the same new policy revision;
* **revocation**: that version is revoked by the trust (R9Z) in the FIRST instance's directory
  only (as ``broker agreements revoke`` writes it on one host); timed from the write until every
  instance refuses a dry run of the flow (``POST /v1/policy/simulate``, the live policy's
  decision) as revoked. The other instances never see the file: they learn it from the agreement
  state the first one records in the database.

Prints median, p99 and max over the trials of each kind, and each instance's share. Each
instance is watched by a thread of its own, asking every ``--probe`` seconds (default 0.01), so
a figure is late by at most that much.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import sqlalchemy as sa
import yaml

from broker.agreements.authoring import revoke, sign_file
from broker.agreements.signing import PartyKey, load_private_key
from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import make_client_assertion
from broker.db.engine import normalise_url
from broker.settings import Settings
from demo import bootstrap
from demo.keys import demo_client_key
from demo.parties import DEMO_PARTIES

REPO = Path(__file__).resolve().parent.parent
AGREEMENT = "ISA-HOSPITAL-DISCHARGE"
PARTIES = ("R9Z", "calderbridge-city-council")
GOVERNANCE = "ccc-governance"
DRY_RUN = {
    "as_party": "calderbridge-city-council",
    "agreement_id": AGREEMENT,
    "purpose": "discharge-to-assess",
    "dataset": "r9z.discharge-summary",
    "fields": ["admission.date"],
    "role": "social-worker",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str]]:
    """The database URL for the instances and what it is (a fresh PostgreSQL schema, dropped
    afterwards, or a SQLite file)."""
    base = os.environ.get("BROKER_TEST_DATABASE_URL")
    if not base:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/broker.db", "SQLite"
        return
    schema = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalise_url(base), poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(normalise_url(base)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    try:
        yield url.render_as_string(hide_password=False), "PostgreSQL"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Cluster:
    def __init__(self, tmp: Path, database_url: str, instances: int, poll: float) -> None:
        self.tmp = tmp
        self.public_url = f"http://127.0.0.1:{free_port()}"  # the load balancer's, never served
        self.roots = []
        for i in range(instances):
            root = tmp / f"agreements-{i}"
            shutil.copytree(REPO / "agreements" / "examples", root)
            self.roots.append(root)
        config = Settings(
            database_url=database_url,
            keys_dir=tmp / "keys",
            pseudonym_key_file=tmp / "keys" / "pseudonym.key",
            demo_dir=tmp / "demo",
            demo=True,
            public_url=self.public_url,
            agreements_dir=self.roots[0],
        )
        bootstrap.prepare(config, tmp / "demo-keys")  # secrets, schema, parties, clients
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "BROKER_DEMO": "true",
            "BROKER_DATABASE_URL": database_url,
            "BROKER_KEYS_DIR": str(config.keys_dir),
            "BROKER_PSEUDONYM_KEY_FILE": str(config.pseudonym_key_file),
            "BROKER_DEMO_DIR": str(config.demo_dir),
            "BROKER_PUBLIC_URL": self.public_url,
            "BROKER_POLICY_DIR": str(REPO / "policies"),
            "BROKER_POLICY_POLL_SECONDS": str(poll),
            "BROKER_RATE_LIMIT_PER_SECOND": "100000",
            "BROKER_RATE_LIMIT_BURST": "100000",
            "BROKER_LOG_LEVEL": "ERROR",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs: list[BinaryIO] = []

    def start(self) -> None:
        for root in self.roots:
            port = free_port()
            env = {**self.env, "BROKER_AGREEMENTS_DIR": str(root)}
            log = (self.tmp / f"instance-{len(self.urls)}.log").open("wb")
            self.logs.append(log)
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "broker", "serve", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            self.urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 180
        for i, (url, process) in enumerate(zip(self.urls, self.processes, strict=True)):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    text = (self.tmp / f"instance-{i}.log").read_text(errors="replace")
                    raise SystemExit(f"instance {url} did not become ready:\n{text[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self.logs:
            log.close()

    def token(self) -> str:
        assertion = make_client_assertion(
            GOVERNANCE, demo_client_key(GOVERNANCE), f"{self.public_url}/oauth2/token"
        )
        response = httpx.post(
            f"{self.urls[0]}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def party_key(party: str) -> PartyKey:
    return load_private_key((REPO / "agreements" / "demo-keys" / f"{party}.pem").read_bytes())


def write_version(cluster: Cluster, version: int) -> None:
    """Version ``version`` of the agreement, signed by both parties, in every instance's
    directory (written beside, then moved into place: a poll never reads half a file)."""
    first = cluster.roots[0] / "isa" / f"{AGREEMENT}.yaml"
    document = yaml.safe_load(first.read_text(encoding="utf-8"))
    document["version"] = version
    staging = cluster.tmp / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(cluster.roots[0], staging)
    path = staging / "isa" / f"{AGREEMENT}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    path.with_name(f"{AGREEMENT}.sig.json").unlink()
    known = {p.id for p in DEMO_PARTIES}
    for party in PARTIES:
        sign_file(path, party, party_key(party), root=staging, known_parties=known, demo=True)
    for root in cluster.roots:
        for name in (f"{AGREEMENT}.yaml", f"{AGREEMENT}.sig.json"):
            target = root / "isa" / name
            shutil.copyfile(staging / "isa" / name, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)


def revision(client: httpx.Client) -> str | None:
    response = client.get("/readyz")
    return str(response.json().get("policy_revision")) if response.status_code == 200 else None


def revoked(client: httpx.Client) -> bool:
    response = client.post("/v1/policy/simulate", json=DRY_RUN)
    if response.status_code != 200:
        return False
    body = response.json()
    decision = body.get("decision", body)
    return not decision.get("allow") and any(
        "revoked" in str(r) for r in decision.get("reasons", [])
    )


def timed(
    cluster: Cluster,
    token: str,
    act: Callable[[], None],
    changed: Callable[[httpx.Client, int], bool],
    probe: float,
    limit: float = 30.0,
) -> list[float]:
    """Seconds from the end of ``act`` until ``changed`` holds on each instance."""
    seen: list[float | None] = [None] * len(cluster.urls)
    done = threading.Event()
    go = threading.Event()
    start = [0.0]

    def watcher(i: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=cluster.urls[i], headers=headers, timeout=10) as client:
            go.wait()
            while not done.is_set():
                if changed(client, i):
                    seen[i] = time.monotonic() - start[0]
                    return
                time.sleep(probe)

    threads = [threading.Thread(target=watcher, args=(i,)) for i in range(len(cluster.urls))]
    for thread in threads:
        thread.start()
    act()
    start[0] = time.monotonic()
    go.set()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    done.set()
    for thread in threads:
        thread.join()
    if any(s is None for s in seen):
        raise SystemExit(f"not every instance saw the change within {limit} s: {seen}")
    return [s for s in seen if s is not None]


def report(name: str, trials: list[list[float]]) -> None:
    """Time until EVERY instance saw it (the slowest per trial), and the first instance's."""
    everywhere = sorted(max(t) for t in trials)
    p99 = everywhere[min(len(everywhere) - 1, int(len(everywhere) * 0.99))]
    first = statistics.median(t[0] for t in trials)
    print(
        f"{name:<12} every instance: median {statistics.median(everywhere) * 1000:6.0f} ms   "
        f"p99 {p99 * 1000:6.0f} ms   max {everywhere[-1] * 1000:6.0f} ms   "
        f"(first instance median {first * 1000:.0f} ms, n={len(trials)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.5, help="policy_poll_seconds")
    parser.add_argument("--probe", type=float, default=0.01, help="seconds between probes")
    args = parser.parse_args()
    with database() as (url, kind), tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, args.instances, args.poll)
        cluster.start()
        try:
            print(
                f"{args.instances} instances on {kind}, policy_poll_seconds {args.poll}, "
                f"probe every {args.probe * 1000:.0f} ms, {args.trials} trials of each"
            )
            versions: list[list[float]] = []
            revocations: list[list[float]] = []
            for trial in range(args.trials):
                token = cluster.token()
                with httpx.Client(base_url=cluster.urls[0], timeout=10) as first:
                    before = revision(first)
                new_version = trial + 2
                targets: dict[int, str] = {}

                def moved(client: httpx.Client, i: int, before: str | None = before) -> bool:
                    now = revision(client)
                    return now is not None and now != before

                versions.append(
                    timed(
                        cluster,
                        token,
                        functools.partial(write_version, cluster, new_version),
                        moved,
                        args.probe,
                    )
                )
                for i, url in enumerate(cluster.urls):
                    with httpx.Client(base_url=url, timeout=10) as client:
                        targets[i] = revision(client) or ""
                if len(set(targets.values())) != 1:
                    raise SystemExit(f"instances serve different revisions: {targets}")

                def revoke_on_first(v: int = new_version) -> None:
                    revoke(
                        cluster.roots[0],
                        AGREEMENT,
                        "R9Z",
                        party_key("R9Z"),
                        "bench",
                        now=dt.datetime.now(dt.UTC),
                        version=v,
                        demo=True,
                    )

                revocations.append(
                    timed(cluster, token, revoke_on_first, lambda c, i: revoked(c), args.probe)
                )
            report("new version", versions)
            report("revocation", revocations)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
