"""Several ``broker serve`` instances on loopback behind HAProxy, on one PostgreSQL and one Redis.

Used by ``tests/cluster/`` and ``bench/cluster_bench.py``. What :class:`Cluster` builds, in order:

* a fresh PostgreSQL schema (``options=-csearch_path``), dropped by :meth:`Cluster.stop`;
* ``broker secrets init`` run once into a keys directory every instance shares;
* the demo's parties, clients, identity providers and a copy of the example agreements,
  bootstrapped once into that database (:func:`demo.bootstrap.prepare`, as ``broker serve
  --demo`` does), the demo source systems started here, in this process, and a bindings file
  naming them; the council's webhook pointed at the demo receiver (it hears of every ED check);
* N ``python -m broker serve`` processes on loopback ports with the same database, keys,
  pseudonym key, agreements directory, ``BROKER_PUBLIC_URL`` (HAProxy's address) and
  ``BROKER_REDIS_URL`` (a Redis database number of this run's own, flushed afterwards);
* ``haproxy`` with a configuration derived from ``deploy/haproxy/haproxy.cfg``: only its server
  lines, its Docker resolvers and its listening addresses are replaced (TLS with a self-signed
  certificate), so the shipped rules (health checks on ``/readyz``, writes never retried or
  redispatched) are what runs. Its log (one line per request, naming the server) is kept.

:meth:`Cluster.kill` sends SIGKILL to one instance, :meth:`Cluster.restart` starts it again on
its port; :meth:`Cluster.stop` (also on leaving the ``with`` block, whatever happened) stops
every process this module started. Log files are under :attr:`Cluster.root`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
LOOPBACK_ALLOW = "127.0.0.0/8,::1,localhost"
READY_SECONDS = 120.0
"""How long an instance may take to answer ``/readyz`` 200 (a loaded 2-core machine)."""


class TopologyError(RuntimeError):
    """The topology could not be built or a process misbehaved (the message holds log tails)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_binary() -> str | None:
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    return found if Path(found).exists() else None


def pg_base_url() -> str | None:
    """The PostgreSQL server the tests use (``BROKER_TEST_DATABASE_URL``), if any."""
    return os.environ.get("BROKER_TEST_DATABASE_URL") or None


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as ``psql``/``pg_dump`` take it (no driver name)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def create_schema(base_url: str) -> tuple[str, str]:
    """A fresh schema on ``base_url``'s database: ``(schema, URL whose search_path is it)``."""
    from broker.db.engine import normalise_url

    schema = f"cluster_{secrets.token_hex(5)}"
    admin = sa.create_engine(normalise_url(base_url), poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    url = sa.engine.make_url(normalise_url(base_url))
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def drop_schema(base_url: str, schema: str) -> None:
    from broker.db.engine import normalise_url

    admin = sa.create_engine(normalise_url(base_url), poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def claim_redis_db(host: str = "127.0.0.1", port: int = 6379) -> int:
    """A Redis database number no one else uses now (empty), claimed with a marker key."""
    import redis

    for number in secrets.SystemRandom().sample(range(1, 16), 15):
        client = redis.Redis(host=host, port=port, db=number, socket_timeout=2)
        try:
            if client.set("isa-broker-cluster-claim", "1", nx=True, ex=3600):
                if client.dbsize() == 1:
                    return number
                client.delete("isa-broker-cluster-claim")
        finally:
            client.close()
    raise TopologyError("no free Redis database number (1-15) for this run")


def flush_redis_db(number: int, host: str = "127.0.0.1", port: int = 6379) -> None:
    import redis

    client = redis.Redis(host=host, port=port, db=number, socket_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        import redis
    except ImportError:
        return False
    client = redis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def self_signed(path: Path) -> None:
    """A certificate for 127.0.0.1 with its key (HAProxy's ``crt`` file); also the CA clients
    trust (it signs itself)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(
        cert_pem
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.with_suffix(".crt").write_bytes(cert_pem)


def derive_haproxy_config(
    shipped: str, servers: list[int], *, https_port: int, http_port: int, stats_port: int
) -> str:
    """``shipped`` with its server lines pointing at ``servers`` (loopback ports), the Docker
    resolvers removed and the listening addresses on loopback. Everything else is kept."""
    out: list[str] = []
    skipping = False
    for line in shipped.splitlines():
        stripped = line.strip()
        if not line[:1].isspace() and stripped:
            skipping = stripped.startswith("resolvers ")
        if skipping:
            continue
        if stripped.startswith("default-server "):
            line = line.replace(" resolvers docker", "")
        elif stripped.startswith("server "):
            name = stripped.split()[1]
            if not re.fullmatch(r"broker\d+", name):
                raise TopologyError(f"unexpected server line in the shipped config: {stripped}")
            if name != "broker1":
                continue  # one line per instance, written at the first
            for i, port in enumerate(servers, start=1):
                rest = stripped.split(None, 3)[3:]  # options after the address (e.g. track)
                options = " ".join(rest).replace("broker1", f"broker{i}")
                indent = line[: len(line) - len(line.lstrip())]
                out.append(f"{indent}server broker{i} 127.0.0.1:{port} {options}".rstrip())
            continue
        elif stripped.startswith("bind :8443"):
            line = line.replace("bind :8443", f"bind 127.0.0.1:{https_port}")
        elif stripped == "bind :8080":
            line = line.replace("bind :8080", f"bind 127.0.0.1:{http_port}")
        elif stripped.startswith("bind 127.0.0.1:8404"):
            line = line.replace("127.0.0.1:8404", f"127.0.0.1:{stats_port}")
        out.append(line)
    text = "\n".join(out) + "\n"
    rules = "\n".join(line.split("#", 1)[0] for line in out)
    if "resolvers" in rules or ":8000" in rules:
        raise TopologyError(
            "the shipped HAProxy config changed shape: update derive_haproxy_config"
        )
    return text


@dataclass
class Instance:
    index: int
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        """Its server name in HAProxy's configuration and log."""
        return f"broker{self.index + 1}"


@dataclass
class Cluster:
    """N broker instances behind HAProxy (see the module's docstring). Use as a context manager."""

    root: Path
    pg_url: str
    instances: int = 3
    redis: bool = True
    rate_limit_burst: int = 100
    rate_overrides: dict[str, float] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    members: list[Instance] = field(default_factory=list)
    haproxy: subprocess.Popen[bytes] | None = None
    https_port: int = 0
    schema: str = ""
    database_url: str = ""
    redis_db: int | None = None
    sources: Any = None
    """The demo source systems (:class:`demo.sources.runtime.DemoSources`), with the webhook
    receiver the council's notifications reach."""

    @property
    def url(self) -> str:
        """HAProxy's TLS address: every instance's public URL."""
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls.crt"

    @property
    def haproxy_log(self) -> Path:
        return self.root / "haproxy.log"

    @property
    def agreements_dir(self) -> Path:
        return self.root / "agreements"

    def env(self) -> dict[str, str]:
        """The environment of every instance (and of CLI commands run against the cluster)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("BROKER_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env.update(
            PYTHONPATH=str(REPO),
            BROKER_DEMO="true",
            BROKER_DEMO_DIR=str(self.root / "demo"),
            BROKER_DATABASE_URL=self.database_url,
            BROKER_KEYS_DIR=str(self.root / "keys"),
            BROKER_PSEUDONYM_KEY_FILE=str(self.root / "keys" / "pseudonym.key"),
            BROKER_AGREEMENTS_DIR=str(self.agreements_dir),
            BROKER_POLICY_DIR=str(REPO / "policies"),
            BROKER_BINDINGS_FILE=str(self.root / "bindings.yaml"),
            BROKER_PUBLIC_URL=self.url,
            BROKER_OUTBOUND_ALLOW=LOOPBACK_ALLOW,
            BROKER_LOG_LEVEL="WARNING",
            BROKER_LOG_JSON="true",
            BROKER_WORKERS="1",
            BROKER_RATE_LIMIT_BURST=str(self.rate_limit_burst),
            BROKER_RATE_LIMIT_OVERRIDES=json.dumps(self.rate_overrides),
        )
        if self.redis_db is not None:
            env["BROKER_REDIS_URL"] = f"redis://127.0.0.1:6379/{self.redis_db}"
        env.update(self.extra_env)
        return env

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise TopologyError("haproxy is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        self.https_port = free_port()
        self.schema, self.database_url = create_schema(self.pg_url)
        if self.redis:
            self.redis_db = claim_redis_db()
        self._bootstrap()
        self.members = [
            Instance(i, free_port(), self.root / f"broker{i + 1}.log")
            for i in range(self.instances)
        ]
        for member in self.members:
            self._spawn(member)
        for member in self.members:
            self.wait_ready(member)
        self._start_haproxy(binary)

    def _run_cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "broker", *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise TopologyError(f"broker {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def _bootstrap(self) -> None:
        from broker.db.engine import build_engine
        from broker.notify.webhooks import WebhookRegistry
        from broker.outbound import OutboundGuard
        from broker.settings import Settings
        from demo import bootstrap
        from demo.notify import register_demo_webhook
        from demo.sources.runtime import DEMO_BINDINGS_FILE, start_demo_sources

        self._run_cli("secrets", "init")
        shutil.copytree(REPO / "agreements" / "examples", self.agreements_dir)
        settings = Settings(
            demo=True,
            demo_dir=self.root / "demo",
            database_url=self.database_url,
            keys_dir=self.root / "keys",
            pseudonym_key_file=self.root / "keys" / "pseudonym.key",
            agreements_dir=self.agreements_dir,
            public_url=self.url,
            outbound_allow=LOOPBACK_ALLOW.split(","),
        )
        bootstrap.prepare(settings, self.root / "client-keys")
        self.sources = start_demo_sources(self.root / "sources")
        text = DEMO_BINDINGS_FILE.read_text()
        for name, value in self.sources.variables.items():
            text = text.replace("${" + name + "}", value)
        (self.root / "bindings.yaml").write_text(text)
        engine = build_engine(self.database_url, pooled=False)
        try:
            receiver = self.sources.webhook_receiver
            guard = OutboundGuard.from_entries(LOOPBACK_ALLOW.split(","))
            register_demo_webhook(WebhookRegistry(engine, guard), receiver.url, receiver.secret)
        finally:
            engine.dispose()

    def _spawn(self, member: Instance) -> None:
        command = [sys.executable, "-m", "broker", "serve", "--port", str(member.port)]
        with member.log.open("ab") as out:
            out.write(f"--- start {member.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            member.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        member.starts += 1

    def wait_ready(self, member: Instance, seconds: float = READY_SECONDS) -> None:
        """Until the instance itself answers ``/readyz`` 200."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            process = member.process
            if process is None or process.poll() is not None:
                raise TopologyError(f"{member.name} exited:\n{tail(member.log)}")
            try:
                if httpx.get(f"{member.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TopologyError(f"{member.name} not ready in {seconds:.0f} s:\n{tail(member.log)}")

    def _start_haproxy(self, binary: str) -> None:
        self_signed(self.root / "tls.pem")
        config = self.root / "haproxy.cfg"
        config.write_text(
            derive_haproxy_config(
                HAPROXY_CONFIG.read_text(),
                [m.port for m in self.members],
                https_port=self.https_port,
                http_port=free_port(),
                stats_port=free_port(),
            )
        )
        env = {**os.environ, "BROKER_TLS_CERT": str(self.root / "tls.pem")}
        with self.haproxy_log.open("ab") as out:
            self.haproxy = subprocess.Popen(
                [binary, "-db", "-f", str(config)],
                cwd=self.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_balanced(range(len(self.members)))

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for HAProxy's TLS address (trusting its certificate)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(base_url=self.url, verify=context, **kwargs)

    def wait_balanced(self, indexes: Any, seconds: float = READY_SECONDS) -> None:
        """Until HAProxy answers through, and its health checks count every instance in
        ``indexes`` up (read from its stats page as CSV)."""
        wanted = {self.members[i].name for i in indexes}
        deadline = time.monotonic() + seconds
        last = ""
        while time.monotonic() < deadline:
            if self.haproxy is None or self.haproxy.poll() is not None:
                raise TopologyError(f"haproxy exited:\n{tail(self.haproxy_log)}")
            try:
                up = self.servers_up()
                if wanted <= up:
                    with self.client(timeout=5) as c:
                        if c.get("/readyz").status_code == 200:
                            return
                last = f"up: {sorted(up)}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.3)
        raise TopologyError(
            f"HAProxy did not see {sorted(wanted)} up ({last}):\n{tail(self.haproxy_log)}"
        )

    def servers_up(self) -> set[str]:
        """The instances HAProxy's health checks count up (the reads backend)."""
        config = (self.root / "haproxy.cfg").read_text()
        match = re.search(r"bind 127\.0\.0\.1:(\d+)\n\s+stats enable", config)
        if match is None:
            raise TopologyError("no stats listener in the derived HAProxy config")
        csv = httpx.get(f"http://127.0.0.1:{match.group(1)}/stats;csv", timeout=2).text
        up = set()
        for row in csv.splitlines():
            cells = row.split(",")
            if (
                len(cells) > 17
                and cells[0] == "broker_reads"
                and cells[1] != "BACKEND"
                and cells[17].startswith("UP")
            ):
                up.add(cells[1])
        return up

    def kill(self, index: int) -> None:
        """SIGKILL one instance (no clean shutdown: what a crashed host looks like)."""
        process = self.members[index].process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self, index: int) -> None:
        """Start a killed (or stopped) instance again on its port; returns once it is ready."""
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            raise TopologyError(f"{member.name} is still running")
        self._spawn(member)
        self.wait_ready(member)

    def stop(self) -> None:
        """Stop everything this cluster started; drop its schema, flush its Redis database."""
        for member in self.members:
            _terminate(member.process)
        _terminate(self.haproxy)
        if self.sources is not None:
            self.sources.stop()
            self.sources = None
        if self.redis_db is not None:
            try:
                flush_redis_db(self.redis_db)
            finally:
                self.redis_db = None
        if self.schema:
            drop_schema(self.pg_url, self.schema)
            self.schema = ""


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process's group (it leads one), SIGKILL after 20 s."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        process.wait(timeout=10)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"({path} unreadable)"


def haproxy_requests(log: Path) -> list[dict[str, str]]:
    """HAProxy's ``option httplog`` lines: backend, server, status, method and path of each."""
    pattern = re.compile(
        r"(?P<frontend>\S+) (?P<backend>[\w<>]+)/(?P<server>[\w<>]+) \S+ (?P<status>-?\d+) .*?"
        r'"(?P<method>[A-Z]+) (?P<path>\S+)'
    )
    rows = []
    for line in tail(log, 1 << 30).splitlines():
        m = pattern.search(line)
        if m is not None:
            rows.append(m.groupdict())
    return rows
