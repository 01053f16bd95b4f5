"""deploy/haproxy/haproxy.cfg: parsed by HAProxy itself (``haproxy -c``, Debian's package, which
./dev test installs), and the rules the issue sets: health checks on /readyz, TLS, and a request
that changes something never replayed on another instance."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.deploy.conftest import DEPLOY

CONFIG = DEPLOY / "haproxy" / "haproxy.cfg"


def _sections(text: str) -> dict[str, list[str]]:
    """``"backend broker_writes" -> its directive lines`` (comments dropped)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            current = line.strip()
            sections[current] = []
        else:
            sections[current].append(" ".join(line.split()))
    return sections


def _self_signed(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "broker.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _check(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (./dev test installs Debian's haproxy as root)")
    cert = tmp_path / "tls.pem"
    _self_signed(cert)
    return subprocess.run(
        [haproxy, "-c", "-f", str(config)],
        env={**os.environ, "BROKER_TLS_CERT": str(cert)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    result = _check(CONFIG, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Configuration file is valid" in output
    # The only warnings: compose's service names do not resolve outside compose.
    warnings = [line for line in output.splitlines() if "[WARNING]" in line]
    assert all("could not resolve address" in w for w in warnings), warnings


def test_haproxy_refuses_a_broken_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "haproxy.cfg"
    broken.write_text(CONFIG.read_text().replace("retry-on conn-failure", "retry-on conn-failures"))
    assert _check(broken, tmp_path).returncode != 0


def test_instances_are_checked_on_readyz_and_writes_are_never_replayed() -> None:
    sections = _sections(CONFIG.read_text())
    reads = sections["backend broker_reads"]
    writes = sections["backend broker_writes"]
    front = sections["frontend broker_https"]
    assert "option httpchk GET /readyz" in reads
    assert "http-check expect status 200" in reads
    assert any(line.startswith("bind :8443 ssl crt") for line in front)
    # Only GET, HEAD and OPTIONS reach the backend that may retry and redispatch.
    assert "acl safe_method method GET HEAD OPTIONS" in front
    assert "use_backend broker_reads if safe_method" in front
    assert "default_backend broker_writes" in front
    # Writes: one attempt, on one instance.
    assert "retries 0" in writes
    assert "no option redispatch" in writes
    assert "http-request disable-l7-retry" in writes
    assert not any(line.startswith("retry-on") for line in writes)
    # Writes follow the read backend's health checks, server by server.
    read_servers = [re.split(r"\s+", s)[1] for s in reads if s.startswith("server ")]
    tracked = [s.split("track broker_reads/")[1] for s in writes if s.startswith("server ")]
    assert read_servers == tracked
    assert len(read_servers) >= 2
