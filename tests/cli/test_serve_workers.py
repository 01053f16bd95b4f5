"""``broker serve --workers 2``: two server processes behave as one broker.

Real processes on loopback: ``python -m broker serve`` in a fresh working directory. Which
worker answered a connection is read from ``/proc`` (the worker holding the server side of the
client's socket), so each check knows that both workers took part.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import make_client_assertion
from broker.cli.audit import app as audit_app
from broker.policy.setup import agreements_root
from broker.settings import load_settings
from broker.workers import WorkerPlan, with_absolute_paths
from demo.identity import demo_id_token
from demo.keys import demo_client_key
from tests.support import free_port, make_settings

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads sockets and processes from Linux /proc"
)

REPO = Path(__file__).resolve().parents[2]
ED_CLIENT = "r9z-ed-safeguarding"
SLOW_CLIENT = "r9z-discharge"
SLOW_RATE = 0.01
"""Requests per second for SLOW_CLIENT: the bucket does not refill within a test."""
BURST = 4
ED_BODY: dict[str, Any] = {
    "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
    "purpose": "child-protection-check",
    "dataset": "ccc.child-protection",
    "fields": ["name.family", "child_protection_plan.status"],
    "requested_by": {"user_id": "hospital-ed-nurse-17", "role": "safeguarding-nurse"},
    "case_reference": "ED-2026-11-0042",
    "justification": "child attended ED with injuries",
}


def clean_env(port: int, **broker: str) -> dict[str, str]:
    """This environment without any ``BROKER_*`` setting, plus the public URL and ``broker``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BROKER_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        PYTHONPATH=str(REPO),
        BROKER_PUBLIC_URL=f"http://127.0.0.1:{port}",
        BROKER_LOG_LEVEL="WARNING",
        BROKER_LOG_JSON="true",
    )
    env.update(broker)
    return env


def base_env(port: int, **broker: str) -> dict[str, str]:
    """:func:`clean_env` with the repository's example agreements and policy, by absolute path."""
    return clean_env(
        port,
        BROKER_AGREEMENTS_DIR=str(REPO / "agreements" / "examples"),
        BROKER_POLICY_DIR=str(REPO / "policies"),
        **broker,
    )


def fresh_clone(cwd: Path) -> Path:
    """A working directory laid out as a fresh clone for ``broker serve`` (its ``agreements``
    and ``policies``, nothing under ``var``), so relative default paths resolve as there."""
    for name in ("agreements", "policies"):
        (cwd / name).symlink_to(REPO / name, target_is_directory=True)
    return cwd


def children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` and their command lines (zombies do not count)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(parent) == pid and state != "Z":
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def left_running(pids: Iterable[int]) -> list[int]:
    """Which of ``pids`` still run once they have had 10 s to exit (multiprocessing's resource
    tracker leaves just after the parent, when its pipe closes)."""
    deadline = time.monotonic() + 10
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


@dataclass
class Running:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    cwd: Path
    log: Path

    def workers(self) -> set[int]:
        return {p for p, cmd in children(self.process.pid).items() if "spawn_main" in cmd}

    def served_by(self, response: httpx.Response) -> int:
        """The worker holding the server side of the connection ``response`` came on."""
        _, client_port = response.extensions["network_stream"].get_extra_info("client_addr")
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == self.port and int(
                remote.rsplit(":", 1)[1], 16
            ) == int(client_port):
                inodes.add(f"socket:[{fields[9]}]")
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) in inodes:
                        return pid
                except OSError:
                    continue
        raise AssertionError(f"no worker holds the connection from port {client_port}")

    def stop(self, sig: signal.Signals) -> tuple[int, dict[int, str]]:
        """Send ``sig``; the exit code and the child processes there were before."""
        before = children(self.process.pid)
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired as e:
            self.process.kill()
            self.process.wait(timeout=10)
            tail = self.log.read_text()[-3000:]
            raise AssertionError(f"broker ignored {sig.name}:\n{tail}") from e
        return code, before


@contextmanager
def serving(cwd: Path, env: dict[str, str], port: int, *args: str) -> Iterator[Running]:
    log = cwd / "broker.log"
    command = [sys.executable, "-m", "broker", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
    running = Running(f"http://127.0.0.1:{port}", port, process, cwd, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"broker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        while len(running.workers()) < 2:  # the parent answers nothing: both are up
            if time.monotonic() > deadline:
                raise AssertionError("the workers did not start")
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def token(url: str, client_id: str) -> str:
    assertion = make_client_assertion(client_id, demo_client_key(client_id), f"{url}/oauth2/token")
    response = httpx.post(
        f"{url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def counted(url: str, route: str) -> float:
    """Requests to ``route`` answered 200, from one scrape of /metrics (on a new connection)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    prefix = "broker_http_requests_total{"
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix) and f'route="{route}"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The README's ``broker serve --demo --workers 2`` from a fresh clone: no setting of
    directories or database, so every worker must get the ones the parent derived (relative
    defaults, the demo's own copy of the agreements). Its teardown is the --demo shutdown check:
    SIGTERM stops the workers and the demo sources, exit 0, no process left behind."""
    cwd = fresh_clone(tmp_path_factory.mktemp("demo-workers"))
    port = free_port()
    env = clean_env(
        port,
        BROKER_RATE_LIMIT_BURST=str(BURST),
        BROKER_RATE_LIMIT_OVERRIDES=json.dumps({ED_CLIENT: 100000, SLOW_CLIENT: SLOW_RATE}),
    )
    with serving(cwd, env, port, "--demo", "--workers", "2") as running:
        yield running
        code, before = running.stop(signal.SIGTERM)
        assert code == 0, running.log.read_text()[-3000:]
        assert len(before) >= 2
        assert left_running(before) == []


def subjects(running: Running, n: int) -> list[str]:
    db = running.cwd / "var" / "demo" / "sources" / "council" / "childrens_social_care.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT nhs_number FROM child_protection_summary ORDER BY nhs_number LIMIT ?", (n,)
        ).fetchall()
    return [str(r[0]) for r in rows]


@pytest.mark.slow
def test_exchanges_on_many_connections_are_all_logged_without_gaps(
    demo: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    bearer = {"Authorization": f"Bearer {token(demo.url, ED_CLIENT)}"}
    people = subjects(demo, 8)
    # The flow needs a verified user: the nurse's ID token from the demo hospital's provider.
    nurse = {
        **ED_BODY["requested_by"],
        "id_token": demo_id_token("hospital-ed-nurse-17", "safeguarding-nurse", ED_CLIENT),
    }

    def one_connection(nhs_number: str) -> list[tuple[int, bool, str, int]]:
        answers = []
        with httpx.Client(base_url=demo.url, headers=bearer, timeout=30) as client:
            for _ in range(4):
                subject = {"type": "nhs_number", "value": nhs_number}
                body = {**ED_BODY, "subject": subject, "requested_by": nurse}
                r = client.post("/v1/exchanges", json=body)
                allow = r.status_code == 200 and r.json()["decision"]["allow"]
                answers.append((r.status_code, allow, r.json()["exchange_id"], demo.served_by(r)))
        return answers

    answers: list[tuple[int, bool, str, int]] = []
    with ThreadPoolExecutor(len(people)) as pool:
        while len({worker for *_, worker in answers}) < 2:  # until both workers answered
            assert len(answers) < 32 * 5, "one worker accepted every connection"
            answers += [a for batch in pool.map(one_connection, people) for a in batch]

    assert [(status, allow) for status, allow, _, _ in answers] == [(200, True)] * len(answers)
    ids = {exchange_id for _, _, exchange_id, _ in answers}
    assert len(ids) == len(answers)
    db = demo.cwd / "var" / "demo" / "broker.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        logged = {r[0] for r in conn.execute("SELECT exchange_id FROM audit_entries")}
        count, first, last = conn.execute(
            "SELECT count(*), min(idx), max(idx) FROM audit_entries"
        ).fetchone()
    assert ids <= logged
    assert (first, last) == (0, count - 1)
    monkeypatch.setenv("BROKER_PUBLIC_URL", demo.url)
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("BROKER_KEYS_DIR", str(demo.cwd / "var" / "demo" / "secrets"))
    result = CliRunner().invoke(audit_app, ["verify", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["entries_checked"] >= count


@pytest.mark.slow
def test_every_worker_is_ready_with_the_agreements_the_parent_loaded(demo: Running) -> None:
    answers: dict[int, tuple[int, int]] = {}
    tries = 0
    while len(answers) < 2:
        tries += 1
        assert tries < 200, "one worker accepted every connection"
        with httpx.Client(timeout=10) as client:  # a new connection each time
            r = client.get(f"{demo.url}/readyz")
            answers[demo.served_by(r)] = (r.status_code, r.json()["agreements_in_force"])
    assert set(answers.values()) == {(200, 5)}
    metrics = httpx.get(f"{demo.url}/metrics", timeout=10).text.splitlines()
    assert "broker_agreements_in_force 5.0" in metrics  # the lowest of the live workers


@pytest.mark.slow
def test_metrics_count_the_requests_of_every_worker(demo: Running) -> None:
    before = counted(demo.url, "/healthz")
    served: Counter[int] = Counter()
    while len(served) < 2 or served.total() < 10:
        assert served.total() < 200, "one worker accepted every connection"
        with httpx.Client(timeout=10) as client:  # a new connection each time
            served[demo.served_by(client.get(f"{demo.url}/healthz"))] += 1
    expected = before + served.total()
    deadline = time.monotonic() + 10  # a worker counts a request just after answering it
    while counted(demo.url, "/healthz") != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [counted(demo.url, "/healthz") for _ in range(8)] == [expected] * 8


@pytest.mark.slow
def test_a_client_gets_its_configured_rate_once_not_once_per_worker(demo: Running) -> None:
    bearer = {"Authorization": f"Bearer {token(demo.url, SLOW_CLIENT)}"}
    body = {**ED_BODY, "subject": {"type": "nhs_number", "value": subjects(demo, 1)[0]}}
    answers: Counter[int] = Counter()
    allowed: Counter[int] = Counter()
    while min((answers[w] for w in demo.workers()), default=0) < BURST:
        assert answers.total() < 200, "one worker accepted every connection"
        with httpx.Client(headers=bearer, timeout=30) as client:  # a new connection each time
            r = client.post(f"{demo.url}/v1/exchanges", json=body)
            worker = demo.served_by(r)
        answers[worker] += 1
        if r.status_code != 429:
            allowed[worker] += 1
        else:
            assert int(r.headers["retry-after"]) >= 1
    # Each of the 2 workers allows half the burst; nothing refills at 0.01 requests/s.
    assert allowed == Counter(dict.fromkeys(demo.workers(), BURST // 2))
    assert allowed.total() <= BURST < answers.total()


@pytest.mark.slow
def _cores_allowed(pid: int) -> set[int]:
    return os.sched_getaffinity(pid)


def test_without_demo_the_parent_migrates_and_sigint_stops_every_process(
    tmp_path: Path,
) -> None:
    """Also ``BROKER_PIN_WORKERS``: each worker on a core of its own."""
    port = free_port()
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", port=port)
    env = base_env(
        port,
        BROKER_DATABASE_URL=config.database_url,
        BROKER_KEYS_DIR=str(config.keys_dir),
        BROKER_PSEUDONYM_KEY_FILE=str(config.pseudonym_key_file),
        BROKER_WORKERS="2",
        BROKER_PIN_WORKERS="true",
    )
    with serving(tmp_path, env, port) as running:
        ready = httpx.get(f"{running.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"
        available = os.sched_getaffinity(0)
        # /readyz may be answered by the first worker before the second has pinned itself.
        deadline = time.monotonic() + 20
        while True:
            cores = [_cores_allowed(pid) for pid in running.workers()]
            pinned = [c for c in cores if len(c) == 1]
            if len(pinned) == min(2, len(available)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(pinned) == min(2, len(available))  # one core each while cores last
        assert len({min(c) for c in pinned}) == len(pinned)  # never the same core twice
        assert all(c <= available for c in cores)
        code, before = running.stop(signal.SIGINT)
    assert code == 0, running.log.read_text()[-3000:]
    assert len([cmd for cmd in before.values() if "spawn_main" in cmd]) == 2
    assert left_running(before) == []


def test_workers_refuse_to_start_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(port, BROKER_DATABASE_URL=f"sqlite:///{tmp_path / 'broker.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "broker", "serve", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr.decode()
    assert b"will not start" in done.stderr
    assert b"worker" not in done.stdout


def test_a_worker_plan_carries_the_parents_settings_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from demo.bootstrap import demo_settings

    parent = demo_settings(load_settings(demo_dir=tmp_path / "demo", workers=3))
    plan = WorkerPlan(parent, tmp_path / "metrics", tmp_path / "b.yaml", {"port": "1234"})
    monkeypatch.setenv("BROKER_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("BROKER_WORKERS", "1")
    assert WorkerPlan.from_json(plan.to_json()) == plan


def test_a_worker_plan_keeps_which_settings_were_set_and_makes_paths_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the parent derives from whether a field was set (the demo's copy of the agreements
    when no agreements directory was set) reads the same in every worker."""
    monkeypatch.delenv("BROKER_AGREEMENTS_DIR", raising=False)
    parent = load_settings(demo=True, workers=2)
    assert agreements_root(parent) == Path("var/demo/agreements")
    absolute = with_absolute_paths(parent, tmp_path)
    worker = WorkerPlan.from_json(WorkerPlan(absolute, tmp_path / "metrics").to_json()).settings
    assert worker.model_fields_set == parent.model_fields_set == {"demo", "workers"}
    assert agreements_root(worker) == tmp_path / "var" / "demo" / "agreements"
    assert worker.policy_dir == tmp_path / "policies"
    assert worker.keys_dir == tmp_path / "var" / "keys"
    assert worker.database_url == parent.database_url
