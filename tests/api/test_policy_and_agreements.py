"""The live policy over HTTP: the bundle for OPA sidecars, agreements for officers, hot reload."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.agreements.authoring import revoke
from broker.agreements.signing import load_private_key
from broker.policy.bundle import load_bundle
from broker.policy.input import PolicyRequest, build_input
from broker.policy.setup import bundle_keys
from tests.support import LiveBroker, demo_key, live_broker


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    tmp = tmp_path_factory.mktemp("demo")
    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}", demo=True) as live:
        yield live


def token(broker: LiveBroker, client_id: str) -> str:
    return broker.token(client_id, demo_key(client_id))


def test_the_bundle_is_served_signed_with_etag_and_304(demo: LiveBroker) -> None:
    sidecar = token(demo, "opa-sidecar")
    response = demo.get("/v1/policy/bundle", sidecar)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    revision = demo.services.policy.status().revision
    assert response.headers["etag"] == f'"{revision}"'
    _, keys = bundle_keys(demo.settings)
    assert load_bundle(response.content, keys).revision == revision
    again = demo.get("/v1/policy/bundle", sidecar, headers={"If-None-Match": f'"{revision}"'})
    assert again.status_code == 304
    assert again.content == b""


def test_the_bundle_needs_the_bundle_scope(demo: LiveBroker) -> None:
    assert demo.get("/v1/policy/bundle", token(demo, "r9z-ed-safeguarding")).status_code == 403


@pytest.mark.parametrize(
    ("client_id", "expected"),
    [
        pytest.param(
            "ccc-governance",
            {
                "ISA-SAFEGUARDING-CHILDREN",
                "ISA-PROOF-REUSE",
                "ISA-SCHOOL-ADMISSIONS",
                "ISA-HOSPITAL-DISCHARGE",
                "ISA-SPD-FRAUD",
            },
            id="council-officers-see-their-party's",
        ),
        pytest.param(
            "r9z-governance",
            {"ISA-SAFEGUARDING-CHILDREN", "ISA-HOSPITAL-DISCHARGE"},
            id="hospital-officers-see-only-theirs",
        ),
    ],
)
def test_governance_sees_only_its_party_agreements(
    demo: LiveBroker, client_id: str, expected: set[str]
) -> None:
    listed = demo.get("/v1/agreements", token(demo, client_id)).json()
    assert {a["id"] for a in listed} == expected
    assert all(a["status"] == "active" for a in listed)


def test_one_agreement_with_content_and_404_for_others(demo: LiveBroker) -> None:
    officer = token(demo, "r9z-governance")
    found = demo.get("/v1/agreements/ISA-SAFEGUARDING-CHILDREN", officer).json()
    assert found[0]["content"]["flows"][0]["dataset"] == "ccc.child-protection"
    assert {s["party"] for s in found[0]["signatures"]} >= {"R9Z", "calderbridge-city-council"}
    assert demo.get("/v1/agreements/ISA-SPD-FRAUD", officer).status_code == 404
    assert demo.get("/v1/agreements", token(demo, "wcp-mash")).status_code == 403


def test_readyz_reports_the_policy(demo: LiveBroker) -> None:
    body = demo.http.get("/readyz").json()
    assert body["checks"]["policy"] == "ok"
    assert body["policy_revision"] == demo.services.policy.status().revision


def _decide(broker: LiveBroker, agreement_id: str = "ISA-HOSPITAL-DISCHARGE") -> object:
    request = PolicyRequest(
        client_id="ccc-adult-social-care",
        party="calderbridge-city-council",
        user_id="asc-worker-3",
        user_role="social-worker",
        purpose="discharge-to-assess",
        dataset="r9z.discharge-summary",
        agreement_id=agreement_id,
        user_assurance="verified",
    )
    return broker.services.policy.decide(build_input(request, dt.datetime.now(dt.UTC)))


def test_a_revocation_file_denies_within_a_second_and_a_rebuild_follows(tmp_path: Path) -> None:
    root = tmp_path / "agreements"
    shutil.copytree("agreements/examples", root)
    with live_broker(
        tmp_path, f"sqlite:///{tmp_path / 'b.db'}", demo=True, agreements_dir=root
    ) as live:
        before = live.services.policy.status().revision
        allowed = _decide(live)
        assert getattr(allowed, "allow", None) is True, getattr(allowed, "reasons", None)
        key = load_private_key(Path("agreements/demo-keys/R9Z.pem").read_bytes())
        revoke(
            root,
            "ISA-HOSPITAL-DISCHARGE",
            "R9Z",
            key,
            "Trust withdraws from the discharge-to-assess pilot",
            now=dt.datetime.now(dt.UTC),
            demo=True,
        )
        started = time.monotonic()
        while getattr(_decide(live), "allow", True) and time.monotonic() - started < 5:
            time.sleep(0.05)
        assert time.monotonic() - started < 1.5
        denied = _decide(live)
        assert getattr(denied, "allow", None) is False
        assert any("revoked" in r for r in getattr(denied, "reasons", ()))
        deadline = time.monotonic() + 10
        while live.services.policy.status().revision == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live.services.policy.status().revision != before


def test_a_tampered_agreement_never_reaches_the_policy(tmp_path: Path) -> None:
    root = tmp_path / "agreements"
    shutil.copytree("agreements/examples", root)
    path = root / "isa" / "ISA-HOSPITAL-DISCHARGE.yaml"
    text = path.read_text()
    assert "recipient_retention_days: 2920" in text  # a valid change of meaning, unsigned
    path.write_text(
        text.replace("recipient_retention_days: 2920", "recipient_retention_days: 9999")
    )
    with live_broker(
        tmp_path, f"sqlite:///{tmp_path / 'b.db'}", demo=True, agreements_dir=root
    ) as live:
        assert live.services.policy_runtime.last is not None
        statuses = {
            a.status.agreement_id: a.status.status
            for a in live.services.policy_runtime.last.agreements
        }
        assert statuses["ISA-HOSPITAL-DISCHARGE"] == "invalid"
        denied = _decide(live)
        assert getattr(denied, "allow", None) is False
