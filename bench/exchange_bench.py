"""End-to-end exchange benchmark: the broker as deployed against the same record read directly.

    .venv/bin/python -m bench.exchange_bench                   # 1, 8, 32, 128 clients (~2 min)
    .venv/bin/python -m bench.exchange_bench --seconds 3       # quick look
    .venv/bin/python -m bench.exchange_bench --workers 1       # one server process
    .venv/bin/python -m bench.exchange_bench --no-pin          # processes not pinned to cores
    .venv/bin/python -m bench.exchange_bench --levels 1,32 --py-spy out/

Three kinds of OS process, all on loopback:

* the broker: ``broker serve --demo --workers N`` (uvicorn with uvloop and httptools; N server
  processes, by default one per core, each pinned to its core (``BROKER_PIN_WORKERS``), as it is
  deployed on a host of its own; ``--workers 1``: one process) in a fresh
  var directory under a temporary folder, with production-like settings: the durable audit log
  on SQLite in WAL mode with ``synchronous=FULL`` (every answer waits for its entry to be on
  disk; concurrent requests share commits), JSON logs at WARNING, ``BROKER_PUBLIC_URL`` set to
  its port. The demo sources start inside it, as ``--demo`` does (in the parent process when
  there are workers). The bench client ``r9z-ed-safeguarding`` gets a raised rate limit
  (printed), nothing else is relaxed.
* the direct path (bench/direct_source.py): the smallest API a council would put in front of the
  children's social care database, same uvicorn, same SQLAlchemy read of the same row. The
  broker reads that database in process, so there is no other "direct" endpoint to compare with.
* the load generator (bench/exchange_loadgen.py, aiohttp): closed loop, N clients each with one
  request in flight on its own keep-alive connection, access token fetched before the run.

For each concurrency level the broker is measured, then the direct path, each after a short
unmeasured warm-up. Requests are ``POST /v1/exchanges`` of the emergency-department scenario
(ISA-SAFEGUARDING-CHILDREN, three fields of ccc.child-protection) rotating over 64 children of
the synthetic population; every answer must be 200 with ``decision.allow`` true. Afterwards the
broker's audit log is counted: it must hold an entry for every answered exchange.

Targets (2-core machine, load generator included): broker p50 minus direct p50 at most 2 ms
(at concurrency 1, where latency is not queueing), at least 500 allowed exchanges/s sustained at
some level, no errors. Exit status 1 when there were errors, 0 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from broker.auth.assertion import ASSERTION_TYPE
from broker.auth.client_assertion import make_client_assertion
from demo.identity import demo_id_token
from demo.keys import demo_client_key

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLIENT = "r9z-ed-safeguarding"
RATE_OVERRIDE = {CLIENT: 100000}
SUBJECTS = 64
FIELDS = ["name.family", "child_protection_plan.status", "child_protection_plan.category"]
OVERHEAD_TARGET_MS = 2.0
THROUGHPUT_TARGET_RPS = 500.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def _nurse_id_token() -> str:
    return demo_id_token("hospital-ed-nurse-17", "safeguarding-nurse", CLIENT)


def exchange_body(nhs_number: str) -> dict[str, Any]:
    return {
        "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        "subject": {"type": "nhs_number", "value": nhs_number},
        "fields": FIELDS,
        # The flow needs a verified user: the nurse's ID token (demo sign-in, valid 5 minutes).
        "requested_by": {
            "user_id": "hospital-ed-nurse-17",
            "role": "safeguarding-nurse",
            "id_token": _nurse_id_token(),
        },
        "case_reference": "ED-2026-11-0042",
        "justification": "child attended ED with injuries",
    }


def broker_env(var: Path, port: int, pin: bool = True) -> dict[str, str]:
    return {
        # A host that runs the broker alone: each server process on a core of its own.
        "BROKER_PIN_WORKERS": "true" if pin else "false",
        "PYTHONPATH": str(REPO),
        "BROKER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "BROKER_DATABASE_URL": f"sqlite:///{var / 'broker.db'}",
        "BROKER_AGREEMENTS_DIR": str(REPO / "agreements" / "examples"),
        "BROKER_POLICY_DIR": str(REPO / "policies"),
        "BROKER_LOG_LEVEL": "WARNING",
        "BROKER_LOG_JSON": "true",
        "BROKER_RATE_LIMIT_OVERRIDES": json.dumps(RATE_OVERRIDE),
    }


def start(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        cmd, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
    )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not come up in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def access_token(base: str) -> str:
    assertion = make_client_assertion(CLIENT, demo_client_key(CLIENT), f"{base}/oauth2/token")
    response = httpx.post(
        f"{base}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10.0,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def load(
    url: str,
    bodies: Path,
    concurrency: int,
    args: argparse.Namespace,
    token: Path | None = None,
    expect_allow: bool = False,
) -> dict[str, Any]:
    cmd = [
        PYTHON,
        str(REPO / "bench" / "exchange_loadgen.py"),
        "--url",
        url,
        "--bodies",
        str(bodies),
        "--concurrency",
        str(concurrency),
        "--warmup",
        str(args.warmup),
        "--seconds",
        str(args.seconds),
    ]
    if token is not None:
        cmd += ["--token", str(token)]
    if expect_allow:
        cmd.append("--expect-allow")
    limit = args.warmup + args.seconds + 60
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, check=True, timeout=limit)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(done.stdout)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result["loadgen_cpu_ms_per_request"] = cpu * 1000 / max(1, result["answered_total"])
    return result


def profile(
    pid: int, seconds: float, out: Path, subprocesses: bool = False
) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return None
    cmd = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100"]
    cmd += ["-f", "raw", "-o", str(out), "--threads", "--nonblocking", "--gil"]
    if subprocesses:  # the worker processes of `broker serve --workers N`
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time so far of a process and its live descendants (Linux /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        stats[int(entry.name)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    tree, total, changed = {pid}, 0.0, True
    while changed:
        changed = False
        for child, (parent, _) in stats.items():
            if parent in tree and child not in tree:
                tree.add(child)
                changed = True
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


def fsync_ms(directory: Path, n: int = 50) -> float:
    """Median time of one 4 KiB write + fsync in ``directory``: the floor under every durable
    commit (SQLite WAL with synchronous=FULL syncs the WAL once per commit)."""
    path = directory / "fsync-probe"
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(samples) * 1000


def subjects(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT nhs_number FROM child_protection_summary ORDER BY nhs_number LIMIT ?",
            (SUBJECTS,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def logged_exchanges(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM audit_entries WHERE kind = 'exchange'"
        ).fetchone()
    return int(count)


def row(level: int, b: dict[str, Any], d: dict[str, Any]) -> str:
    ratio = b["p50_ms"] / d["p50_ms"] if d["p50_ms"] else float("nan")
    added = b["p50_ms"] - d["p50_ms"]
    errors = sum(b["errors"].values()) + sum(d["errors"].values())
    return (
        f"| {level:>4} | {b['throughput_rps']:>7.0f} | {b['p50_ms']:>6.2f} | {b['p90_ms']:>6.2f} "
        f"| {b['p99_ms']:>7.2f} | {d['throughput_rps']:>7.0f} | {d['p50_ms']:>6.2f} "
        f"| {d['p90_ms']:>6.2f} | {d['p99_ms']:>7.2f} | {ratio:>5.1f}x | {added:>+7.2f} "
        f"| {errors:>3} |"
    )


HEADER = (
    "| conc | broker req/s | p50 ms | p90 ms | p99 ms | direct req/s | p50 ms | p90 ms "
    "| p99 ms | p50 ratio | added p50 ms | errors |\n"
    "|-----:|--------:|-------:|-------:|--------:|--------:|-------:|-------:|--------:"
    "|------:|--------:|----:|"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run")
    parser.add_argument("--levels", default="1,8,32,128", help="concurrency levels")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="`broker serve --demo --workers N`: N server processes (default: one per core, "
        "as the broker is deployed; 0 or 1: one process)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="leave the server processes unpinned (BROKER_PIN_WORKERS=false)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--py-spy", type=Path, help="record a py-spy profile per broker run here")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if args.seconds <= 0 or args.seconds > 60 or args.warmup < 0 or args.warmup > 10:
        parser.error("--seconds must be in (0, 60], --warmup in [0, 10]")

    tmp = Path(tempfile.mkdtemp(prefix="broker-exchange-bench-"))
    var = tmp / "var"
    var.mkdir()
    broker_port, direct_port = free_port(), free_port()
    base = f"http://127.0.0.1:{broker_port}"
    env = broker_env(var, broker_port, pin=not args.no_pin)
    serve = "from broker.cli.main import main; main()"
    command = [PYTHON, "-c", serve, "serve", "--demo", "--port", str(broker_port)]
    if args.workers > 0:
        command += ["--workers", str(args.workers)]
    broker = start(command, tmp, env, tmp / "broker.log")
    direct: subprocess.Popen[bytes] | None = None
    results: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    try:
        wait_ready(f"{base}/healthz", broker, tmp / "broker.log", 90)
        council_db = tmp / "var" / "demo" / "sources" / "council" / "childrens_social_care.db"
        direct_cmd = [PYTHON, str(REPO / "bench" / "direct_source.py"), "--db", str(council_db)]
        direct = start(
            [*direct_cmd, "--port", str(direct_port)],
            tmp,
            {"PYTHONPATH": str(REPO)},
            tmp / "direct.log",
        )
        wait_ready(f"http://127.0.0.1:{direct_port}/nothing", direct, tmp / "direct.log", 30)
        bodies = tmp / "bodies.json"
        bodies.write_text(json.dumps([exchange_body(n) for n in subjects(council_db)]))
        logged_before = logged_exchanges(var / "broker.db")

        how = "broker serve --demo" + (f" --workers {args.workers}" if args.workers else "")
        how += (
            " (one uvicorn process, uvloop + httptools)"
            if args.workers <= 1
            else f" ({args.workers} uvicorn worker processes, demo sources in the parent)"
        )
        print(f"broker: {how}, pid {broker.pid}, {base}, var dir {var}")
        for name, value in env.items():
            if name.startswith("BROKER_"):
                print(f"  {name}={value}")
        print("  durable audit: SQLite WAL, synchronous=FULL (broker/db/engine.py)")
        print(f"direct: pid {direct.pid}, http://127.0.0.1:{direct_port}/child-protection")
        print(
            f"load:   {args.warmup:g} s warm-up + {args.seconds:g} s measured per run, "
            f"{len(json.loads(bodies.read_text()))} subjects, fields {', '.join(FIELDS)}"
        )
        print(f"disk:   write+fsync of 4 KiB in the var dir, median {fsync_ms(var):.2f} ms")
        print(f"cores:  {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
        sys.stdout.flush()

        answered = 0
        for level in levels:
            token = tmp / "token"
            token.write_text(access_token(base))
            spy = None
            if args.py_spy is not None:
                args.py_spy.mkdir(parents=True, exist_ok=True)
                spy = profile(
                    broker.pid,
                    args.warmup + args.seconds,
                    args.py_spy / f"broker-c{level}.txt",
                    subprocesses=args.workers > 0,
                )
            cpu_before = cpu_seconds(broker.pid)
            b = load(f"{base}/v1/exchanges", bodies, level, args, token, expect_allow=True)
            b["cpu_ms_per_request"] = (
                (cpu_seconds(broker.pid) - cpu_before) * 1000 / max(1, b["answered_total"])
            )
            if spy is not None:
                spy.wait(timeout=60)
            cpu_before = cpu_seconds(direct.pid)
            d = load(f"http://127.0.0.1:{direct_port}/child-protection", bodies, level, args)
            d["cpu_ms_per_request"] = (
                (cpu_seconds(direct.pid) - cpu_before) * 1000 / max(1, d["answered_total"])
            )
            answered += b["answered_total"]
            results.append((level, b, d))
            print(
                f"  c={level:<4} broker {b['throughput_rps']:6.0f} req/s p50 {b['p50_ms']:6.2f} ms"
                f" (CPU ms/req: broker {b['cpu_ms_per_request']:.2f},"
                f" load generator {b['loadgen_cpu_ms_per_request']:.2f})"
                f" | direct {d['throughput_rps']:6.0f} req/s p50 {d['p50_ms']:6.2f} ms"
                f" (CPU ms/req: {d['cpu_ms_per_request']:.2f})",
                flush=True,
            )
        load_after = os.getloadavg()[0]
    finally:
        if direct is not None:
            stop(direct)
        stop(broker)
    logged = logged_exchanges(var / "broker.db") - logged_before

    print()
    print(HEADER)
    for level, b, d in results:
        print(row(level, b, d))
    print()
    errors = 0
    for level, b, d in results:
        for side, r in (("broker", b), ("direct", d)):
            for kind, count in r["errors"].items():
                errors += count
                print(f"error c={level} {side}: {count} x {kind}: {r['error_examples'][kind]}")
    print(f"errors: {errors}")
    print(f"load average after: {load_after:.2f} (other work on the machine skews every figure)")
    print(f"audit log: {logged} exchange entries for {answered} answered exchanges", end="")
    print(" (match)" if logged == answered else " (MISMATCH)")

    single = next((r for r in results if r[0] == 1), None)
    if single is not None:
        added = single[1]["p50_ms"] - single[2]["p50_ms"]
        verdict = "met" if added <= OVERHEAD_TARGET_MS else "MISSED"
        print(f"target overhead p50 <= {OVERHEAD_TARGET_MS} ms at c=1: {added:.2f} ms: {verdict}")
    best = max(results, key=lambda r: r[1]["throughput_rps"])
    verdict = "met" if best[1]["throughput_rps"] >= THROUGHPUT_TARGET_RPS else "MISSED"
    print(
        f"target >= {THROUGHPUT_TARGET_RPS:.0f} allowed exchanges/s: "
        f"{best[1]['throughput_rps']:.0f} at c={best[0]}: {verdict}"
    )
    print(f"target no errors: {errors}: {'met' if errors == 0 else 'MISSED'}")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if errors or logged != answered else 0)


if __name__ == "__main__":
    main()
