"""``broker serve`` closes slow and oversized requests.

What production runs: ``python -m broker serve`` in a subprocess, raw sockets on loopback. The
deadlines are set short (``BROKER_HTTP_*``) so that the test waits seconds, not the defaults.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve_workers import base_env
from tests.support import free_port, make_settings

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 2.5
HEADERS_MAX = 8192
WAIT = 30.0
"""How long a test waits for the server to close what it must close (well past the deadlines:
this is not a timing assertion, it bounds a connection that would otherwise stay open)."""


@dataclass
class Broker:
    url: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def closures(self) -> list[dict[str, object]]:
        """The log's entries for connections the server closed."""
        entries = []
        for line in self.log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and str(entry.get("event")).startswith("connection closed"):
                entries.append(entry)
        return entries


@contextmanager
def broker_serve(tmp_path: Path, *args: str) -> Iterator[Broker]:
    port = free_port()
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", port=port)
    env = base_env(
        port,
        BROKER_DATABASE_URL=config.database_url,
        BROKER_KEYS_DIR=str(config.keys_dir),
        BROKER_PSEUDONYM_KEY_FILE=str(config.pseudonym_key_file),
        BROKER_HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        BROKER_HTTP_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
        BROKER_HTTP_HEADERS_MAX_BYTES=str(HEADERS_MAX),
    )
    log = tmp_path / "broker.log"
    command = [sys.executable, "-m", "broker", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"broker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Broker(url, port, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Trickle:
    """A client sending ``head`` at once, then ``drip`` over and over, a piece at a time."""

    head: bytes
    drip: bytes
    sock: socket.socket = field(init=False, repr=False)
    received: bytes = b""
    closed: bool = False
    sent: int = 0

    def open(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if self.head:
            self.sock.sendall(self.head)
        self.sock.setblocking(False)

    def send_more(self) -> None:
        if self.closed:
            return
        try:
            self.sock.send(self.drip)
            self.sent += len(self.drip)
        except OSError:  # reset or broken pipe: the server closed it
            self.closed = True

    def read(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.received += chunk
        else:
            self.closed = True

    def status(self) -> int | None:
        if not self.received.startswith(b"HTTP/1.1 "):
            return None
        return int(self.received[9:12])


def trickle_until_closed(port: int, clients: list[Trickle], interval: float = 0.5) -> None:
    """Each client sends a piece every ``interval`` until the server closes it, or WAIT ends."""
    for client in clients:
        client.open(port)
    deadline = time.monotonic() + WAIT
    try:
        while not all(c.closed for c in clients) and time.monotonic() < deadline:
            for client in clients:
                client.send_more()
            open_socks = [c.sock for c in clients if not c.closed]
            readable, _, _ = select.select(open_socks, [], [], interval)
            for client in clients:
                if client.sock in readable:
                    client.read()
    finally:
        for client in clients:
            client.sock.close()


def slow_body() -> Trickle:
    head = (
        b"POST /v1/exchanges HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
    )
    return Trickle(head, b" ")


def endless_headers() -> Trickle:
    return Trickle(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-More: y\r\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with broker_serve(tmp_path_factory.mktemp("slow-clients")) as broker:
        yield broker


def test_slow_bodies_and_endless_header_lines_are_answered_408_and_closed(
    served: Broker,
) -> None:
    """The issue's finding: four 60,000-byte bodies at a byte a time and two connections
    sending endless header lines, all still open after 25 s. Now each is closed at its
    deadline with 408, the broker answers others meanwhile, and each closure is logged."""
    before = len(served.closures())
    bodies = [slow_body() for _ in range(4)]
    headers = [endless_headers() for _ in range(2)]
    trickle_until_closed(served.port, [*bodies, *headers])

    assert [c.closed for c in [*bodies, *headers]] == [True] * 6
    assert [c.status() for c in [*bodies, *headers]] == [408] * 6
    assert all(c.sent < 60000 for c in bodies)
    problem = json.loads(bodies[0].received.split(b"\r\n\r\n", 1)[1])
    assert problem["status"] == 408
    assert problem["detail"] == f"the request body did not arrive within {BODY_TIMEOUT:g} seconds"
    assert b"connection: close" in bodies[0].received.lower()
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200

    deadline = time.monotonic() + 5  # the log line may trail the closed socket a little
    while len(served.closures()) < before + 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    closed = served.closures()[before:]
    assert sorted(str(e["phase"]) for e in closed) == ["body"] * 4 + ["headers"] * 2
    assert all(e["level"] == "warning" for e in closed)


def test_a_connection_that_sends_nothing_is_closed(served: Broker) -> None:
    silent = Trickle(b"", b"")
    trickle_until_closed(served.port, [silent])
    assert silent.closed
    assert silent.status() == 408
    assert served.closures()[-1]["phase"] == "headers"


def test_header_lines_past_the_limit_get_431(served: Broker) -> None:
    many = Trickle(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-More: y\r\n" * 200)
    one_long_line = Trickle(b"GET /healthz HTTP/1.1\r\nX-Long: ", b"y" * 1000)
    trickle_until_closed(served.port, [many, one_long_line], interval=0.05)
    assert [many.status(), one_long_line.status()] == [431, 431]
    assert many.sent < HEADERS_MAX * 4
    assert one_long_line.sent < HEADERS_MAX * 4
    assert b"larger than 8192 bytes" in many.received
    logged = served.closures()[-2:]
    assert [e["event"] for e in logged] == ["connection closed: request headers too large"] * 2
    assert [e["limit_bytes"] for e in logged] == [HEADERS_MAX] * 2


def test_headers_just_under_the_limit_and_a_body_in_time_are_served(served: Broker) -> None:
    """The limits leave ordinary requests alone, also a body sent in pieces and a second
    request on the same connection."""
    filler = {f"x-filler-{i}": "y" * 50 for i in range(100)}  # about 7 KiB
    with httpx.Client(base_url=served.url, timeout=10) as client:
        assert client.get("/healthz", headers=filler).status_code == 200
        time.sleep(HEADER_TIMEOUT / 2)
        assert client.get("/healthz").status_code == 200
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        body = b'{"not": "an exchange"}'
        sock.sendall(
            b"POST /v1/exchanges HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:5]
        )
        time.sleep(BODY_TIMEOUT / 3)
        sock.sendall(body[5:])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


@pytest.mark.slow
def test_every_worker_process_has_the_deadlines(tmp_path: Path) -> None:
    with broker_serve(tmp_path, "--workers", "2") as broker:
        clients = [slow_body(), endless_headers()]
        trickle_until_closed(broker.port, clients)
        assert [c.status() for c in clients] == [408, 408]
