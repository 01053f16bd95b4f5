"""The broker image and the systemd units, as far as they can be checked here (container base
images cannot be fetched on these machines, so the image is not built): the Dockerfile copies what
exists, leaves the demo wing out, runs unprivileged with a health check; the CLI works where the
``demo`` package is missing, as in the image; ``systemd-analyze verify`` accepts the units."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_copies_only_what_exists_and_not_the_demo() -> None:
    copied = [
        arg.split()[:-1] for op, arg in _instructions() if op == "COPY" and "--from" not in arg
    ]
    sources = [s for group in copied for s in group]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
    assert not any(s.startswith(("demo", "tests", "bench")) for s in sources)
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :].count("!demo/") == 0  # everything not listed is left out
    assert "!broker/" in ignore


def test_image_runs_the_broker_unprivileged_with_a_health_check() -> None:
    ops = _instructions()
    user = [arg for op, arg in ops if op == "USER"]
    assert user
    assert not user[-1].startswith(("root", "0"))
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in ops)
    assert ("ENTRYPOINT", '["docker-entrypoint.sh", "broker"]') in ops
    assert any(op == "CMD" and '"serve"' in arg for op, arg in ops)
    assert any(op == "RUN" and "-c constraints.txt" in arg for op, arg in ops)
    assert sum(op == "FROM" for op, _ in ops) == 2  # a build stage, then a runtime stage


_BLOCK_DEMO = """
import sys
class _NoDemo:
    def find_spec(self, name, path=None, target=None):
        if name == "demo" or name.startswith("demo."):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, _NoDemo())
from broker.cli.main import main
sys.argv = ["broker", *sys.argv[1:]]
main()
"""


def _broker_without_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_DEMO, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_the_cli_works_without_the_demo_wing_and_says_why_demo_commands_do_not() -> None:
    assert _broker_without_demo("--help").returncode == 0
    assert _broker_without_demo("db", "--help").returncode == 0
    refused = _broker_without_demo("serve", "--demo", "--port", "0")
    assert refused.returncode == 2
    assert "the demo is not installed here" in refused.stderr


def test_the_demo_block_is_real() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_DEMO.replace("from broker.cli.main", "import demo\n#")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def _verify(units: list[Path], tmp_path: Path) -> list[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    for unit in units:
        shutil.copy(unit, tmp_path / unit.name)
    names = [("broker@8001.service" if u.name == "broker@.service" else u.name) for u in units]
    result = subprocess.run(
        [analyze, "verify", "--man=no", *[f"./{n}" for n in names]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    # The programs are not installed on a test machine; anything else is a fault in a unit.
    return [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable: No such file or directory" not in line
    ]


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {"broker@.service", "broker-migrate.service"}
    assert _verify(units, tmp_path) == []
    text = (DEPLOY / "systemd" / "broker@.service").read_text()
    assert "Requires=broker-migrate.service" in text
    assert "--port %i" in text


def test_systemd_verify_finds_a_broken_unit(tmp_path: Path) -> None:
    broken = tmp_path / "src" / "broker-migrate.service"
    broken.parent.mkdir()
    broken.write_text(
        (DEPLOY / "systemd" / "broker-migrate.service").read_text().replace("Type=", "Typ=")
    )
    assert _verify([broken], tmp_path)
