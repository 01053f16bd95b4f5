"""``/readyz`` tells the truth: not ready while the database is unreachable, no policy is loaded,
or the policy serving is behind the agreements (its directory, or the agreement state another
instance recorded in the shared database); ready with zero agreements in force, and says so."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.agreements.authoring import revoke
from broker.agreements.signing import load_private_key
from broker.policy.setup import build_policy
from tests.support import LiveBroker, live_broker

REVOKED = "ISA-HOSPITAL-DISCHARGE"
EXAMPLES = 5
"""Agreements in force among agreements/examples."""


def readyz(live: LiveBroker) -> tuple[int, dict[str, Any]]:
    response = live.http.get("/readyz")
    return response.status_code, response.json()


def gauge(live: LiveBroker) -> float:
    for line in live.http.get("/metrics").text.splitlines():
        if line.startswith("broker_agreements_in_force "):
            return float(line.split()[1])
    raise AssertionError("no broker_agreements_in_force in /metrics")


def examples_copy(tmp_path: Path, name: str = "agreements") -> Path:
    root = tmp_path / name
    shutil.copytree("agreements/examples", root)
    return root


def revoke_discharge(root: Path) -> None:
    key = load_private_key(Path("agreements/demo-keys/R9Z.pem").read_bytes())
    revoke(root, REVOKED, "R9Z", key, "pilot ends", now=dt.datetime.now(dt.UTC), demo=True)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveBroker]:
    """A demo broker on its own copy of the examples; the agreements are not polled (60 s), so
    the test decides when the broker catches up."""
    (tmp_path / "db").mkdir()
    with live_broker(
        tmp_path,
        f"sqlite:///{tmp_path / 'db' / 'b.db'}",
        demo=True,
        agreements_dir=examples_copy(tmp_path),
        policy_poll_seconds=60,
    ) as broker:
        yield broker


def test_ready_names_the_agreements_in_force_and_the_gauge_counts_them(live: LiveBroker) -> None:
    status, body = readyz(live)
    assert status == 200, body
    assert body["checks"] == {"database": "ok", "policy": "ok"}
    assert body["agreements_in_force"] == EXAMPLES
    assert "agreements" not in body.get("notes", {})
    assert gauge(live) == EXAMPLES


def test_not_ready_while_the_agreements_directory_changed_and_ready_once_reloaded(
    live: LiveBroker,
) -> None:
    revision = live.services.policy.status().revision
    revoke_discharge(live.settings.agreements_dir)
    status, body = readyz(live)
    assert status == 503
    assert body["checks"]["policy"] == (
        f"policy revision {revision} is behind: the agreements directory changed"
    )
    assert live.services.policy_runtime.poll() is True
    status, body = readyz(live)
    assert status == 200, body
    assert body["policy_revision"] != revision
    assert body["agreements_in_force"] == EXAMPLES - 1
    assert gauge(live) == EXAMPLES - 1


def test_not_ready_while_another_instance_recorded_a_revocation_then_caught_up(
    live: LiveBroker, tmp_path: Path
) -> None:
    """Another instance on the same database, with a revocation in its own directory: this
    instance's directory never sees the file, yet the recorded revocation reaches it."""
    other = live.settings.model_copy(update={"agreements_dir": examples_copy(tmp_path, "other")})
    revoke_discharge(other.agreements_dir)
    _, other_runtime = build_policy(other, live.services.engine, live.services.registry)
    assert other_runtime.agreements_in_force() == EXAMPLES - 1
    revision = live.services.policy.status().revision
    status, body = readyz(live)
    assert status == 503
    assert body["checks"]["policy"] == (
        f"policy revision {revision} is behind: the agreement state records revocations or "
        "versions it was not built from"
    )
    assert body["agreements_in_force"] == EXAMPLES  # what it serves until it catches up
    assert live.services.policy_runtime.poll() is True
    status, body = readyz(live)
    assert status == 200, body
    assert body["agreements_in_force"] == EXAMPLES - 1
    assert live.services.policy_runtime.poll() is False  # caught up: nothing more to do


def test_not_ready_while_the_database_is_unreachable(live: LiveBroker, tmp_path: Path) -> None:
    (tmp_path / "db").rename(tmp_path / "db-away")
    live.services.engine.dispose()  # pooled connections would still reach the moved file
    try:
        status, body = readyz(live)
        assert status == 503
        assert body["checks"]["database"] == "database unreachable: OperationalError"
        assert body["checks"]["policy"] == "agreement state unreadable"
    finally:
        (tmp_path / "db-away").rename(tmp_path / "db")
    status, body = readyz(live)
    assert status == 200, body


def test_a_fresh_install_with_no_agreement_is_ready_and_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "no-agreements"
    empty.mkdir()
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", agreements_dir=empty) as live:
        status, body = readyz(live)
        assert status == 200, body
        assert body["agreements_in_force"] == 0
        assert body["notes"]["agreements"] == (
            "no agreement in force: every exchange is refused until one is"
        )
        assert gauge(live) == 0


def test_not_ready_while_no_policy_is_loaded(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "broken.rego").write_text("package broker\n\nthis is { not rego\n")
    with live_broker(
        tmp_path,
        f"sqlite:///{tmp_path / 'b.db'}",
        demo=True,
        agreements_dir=examples_copy(tmp_path),
        policy_dir=policy,
    ) as live:
        status, body = readyz(live)
        assert status == 503
        assert body["checks"]["policy"].startswith("no policy loaded: ")
        assert body["checks"]["database"] == "ok"
        assert body["policy_revision"] is None
        assert body["agreements_in_force"] == 0
        assert gauge(live) == 0
