"""What every request body must be, over real HTTP: UTF-8 JSON (415 otherwise), booleans that are
JSON ``true``/``false`` (422 otherwise), within the body limit whether declared or chunked (413),
and a ``Retry-After`` on every 429; and the exchange answer's receipt checked offline by
``broker audit check-receipt`` as it came, the log verified against its own origin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from broker.audit.factory import public_log_key
from broker.cli.audit import app as audit_cli
from tests.exchange.helpers import admissions, post, safeguarding, verified
from tests.support import LiveBroker, demo_key, live_broker

runner = CliRunner()
LIMIT = 65536


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, demo_sources: Any) -> Iterator[LiveBroker]:
    """The demo broker, signing a checkpoint at every commit (so answers carry a full receipt)."""
    tmp = tmp_path_factory.mktemp("request-checks")
    with live_broker(
        tmp,
        f"sqlite:///{tmp / 'broker.db'}",
        demo=True,
        bindings=demo_sources.bindings,
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
        audit_checkpoint_every_entries=1,
    ) as live:
        yield live


@pytest.fixture
def slow_broker(tmp_path: Path, demo_sources: Any) -> Iterator[LiveBroker]:
    """The demo broker allowing one exchange a minute per client; checkpoints by default."""
    with live_broker(
        tmp_path,
        f"sqlite:///{tmp_path / 'broker.db'}",
        demo=True,
        bindings=demo_sources.bindings,
        rate_limit_per_second=1 / 60,
        rate_limit_burst=1,
    ) as live:
        yield live


def _bearer(broker: LiveBroker, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {broker.token(client_id, demo_key(client_id))}"}


def _raw(broker: LiveBroker, path: str, content: Any, content_type: str, client: str) -> Any:
    headers = {**_bearer(broker, client), "Content-Type": content_type}
    return broker.http.post(path, content=content, headers=headers)


def _is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# -- UTF-8 only ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "client", "body"),
    [
        ("/v1/exchanges", "r9z-ed-safeguarding", safeguarding()),
        ("/v1/policy/simulate", "r9z-governance", {"as_party": "R9Z", "purpose": "x"}),
    ],
    ids=["exchange", "simulate"],
)
def test_a_json_body_in_another_charset_is_415_naming_it(
    broker: LiveBroker, path: str, client: str, body: dict[str, Any]
) -> None:
    sent = json.dumps(body).encode("utf-16")
    response = _raw(broker, path, sent, "application/json; charset=utf-16", client)
    problem = _is_problem(response, 415)
    assert "utf-16" in problem["detail"]
    assert "UTF-8" in problem["detail"]
    # Declared as latin-1 but plain ASCII: still refused, the charset is what is named.
    latin = _raw(broker, path, json.dumps(body), "application/json; charset=ISO-8859-1", client)
    assert "ISO-8859-1" in _is_problem(latin, 415)["detail"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32", "latin-1"])
def test_a_body_not_in_utf8_without_a_charset_is_415(broker: LiveBroker, encoding: str) -> None:
    body = json.dumps(safeguarding(justification="café on the ward"), ensure_ascii=False)
    response = _raw(
        broker, "/v1/exchanges", body.encode(encoding), "application/json", "r9z-ed-safeguarding"
    )
    assert "must be UTF-8" in _is_problem(response, 415)["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "application/json"])
def test_utf8_with_or_without_the_charset_is_answered(
    broker: LiveBroker, content_type: str
) -> None:
    sent = json.dumps(verified(broker, "r9z-ed-safeguarding", safeguarding())).encode()
    response = _raw(broker, "/v1/exchanges", sent, content_type, "r9z-ed-safeguarding")
    assert response.status_code == 200, response.text


def test_the_form_encoded_token_endpoint_still_works(broker: LiveBroker) -> None:
    client = "r9z-ed-safeguarding"
    form = broker.token_form(client, demo_key(client))
    response = broker.http.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.text


# -- strict booleans -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", 1, "yes"], ids=["string", "number", "yes"])
def test_break_glass_must_be_a_json_boolean(broker: LiveBroker, value: Any) -> None:
    body = safeguarding(break_glass=value)
    problem = _is_problem(post(broker, "r9z-ed-safeguarding", body), 422)
    assert [e["location"] for e in problem["errors"]] == ["break_glass"]


@pytest.mark.parametrize("field", ["break_glass", "case_reference"])
def test_simulation_booleans_must_be_json_booleans(broker: LiveBroker, field: str) -> None:
    body = {
        "as_party": "R9Z",
        "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        field: "true",
    }
    response = broker.http.post(
        "/v1/policy/simulate", json=body, headers=_bearer(broker, "r9z-governance")
    )
    assert [e["location"] for e in _is_problem(response, 422)["errors"]] == [field]
    body[field] = True
    ok = broker.http.post(
        "/v1/policy/simulate", json=body, headers=_bearer(broker, "r9z-governance")
    )
    assert ok.status_code == 200, ok.text


# -- what may reach the policy engine (broker/core/names.py; docs/policy.md) -----------------------


@pytest.mark.parametrize(
    "text",
    ["\u3000\u3000\u3000", "ab", "\u200bABC", "CASE\\1", "CASE\x011", "\u00a0-\u2003-\u00a0"],
    ids=["wide-spaces", "two-letters", "zero-width", "backslash", "control", "dashes"],
)
def test_free_text_the_engines_would_read_apart_is_422(broker: LiveBroker, text: str) -> None:
    for field, extra in (("case_reference", {}), ("justification", {"break_glass": True})):
        problem = _is_problem(
            post(broker, "r9z-ed-safeguarding", safeguarding(**{field: text}, **extra)), 422
        )
        assert [e["location"] for e in problem["errors"]] == [field], problem


def test_free_text_is_stripped_as_go_strips_it(broker: LiveBroker) -> None:
    body = safeguarding(case_reference="\u00a0\u3000ED-2026-11-0042\u2028")
    response = post(broker, "r9z-ed-safeguarding", body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ['child"protection', "child\\bprotection", "child\x01", "a:b"])
@pytest.mark.parametrize("field", ["purpose", "dataset", "agreement_id", "requested_by.role"])
def test_identifiers_follow_the_one_pattern(broker: LiveBroker, field: str, value: str) -> None:
    if field == "requested_by.role":
        body = safeguarding(requested_by={"user_id": "hospital-ed-nurse-17", "role": value})
    else:
        body = safeguarding(**{field: value})
    problem = _is_problem(post(broker, "r9z-ed-safeguarding", body, asserted=True), 422)
    assert [e["location"] for e in problem["errors"]] == [field], problem


@pytest.mark.parametrize(
    ("field", "value"),
    [("role", 'gp"'), ("role", "gp\\b"), ("as_party", "R9Z\x1f"), ("purpose", "p\u200b"),
     ("at", "2300-01-01T00:00:00Z"), ("at", "1900-01-01T00:00:00Z")],
)  # fmt: skip
def test_simulation_identifiers_and_times_are_bounded(
    broker: LiveBroker, field: str, value: str
) -> None:
    body = {
        "as_party": "R9Z",
        "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
        "purpose": "child-protection-check",
        "dataset": "ccc.child-protection",
        field: value,
    }
    response = broker.http.post(
        "/v1/policy/simulate", json=body, headers=_bearer(broker, "r9z-governance")
    )
    assert [e["location"] for e in _is_problem(response, 422)["errors"]] == [field]


# -- body size -------------------------------------------------------------------------------------


def _oversized() -> bytes:
    return json.dumps(safeguarding(justification="x" * (LIMIT + 10))).encode()


def test_a_declared_oversized_body_is_413(broker: LiveBroker) -> None:
    body = _oversized()
    response = _raw(broker, "/v1/exchanges", body, "application/json", "r9z-ed-safeguarding")
    assert str(LIMIT) in _is_problem(response, 413)["detail"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/exchanges", "application/json"), ("/oauth2/token", "application/x-www-form-urlencoded")],
    ids=["exchange", "token-form"],
)
def test_a_chunked_oversized_body_is_413(broker: LiveBroker, path: str, content_type: str) -> None:
    body = _oversized()

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = _raw(broker, path, chunks(), content_type, "r9z-ed-safeguarding")
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert str(LIMIT) in _is_problem(response, 413)["detail"]


def test_a_chunked_body_within_the_limit_is_answered(broker: LiveBroker) -> None:
    body = json.dumps(verified(broker, "r9z-ed-safeguarding", safeguarding())).encode()
    response = _raw(
        broker,
        "/v1/exchanges",
        iter([body[:40], body[40:]]),
        "application/json",
        "r9z-ed-safeguarding",
    )
    assert response.status_code == 200, response.text


# -- Retry-After on every 429 ----------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    assert int(value) >= 1, value
    return int(value)


def test_the_verification_limit_says_when_to_try_again(broker: LiveBroker) -> None:
    subject = {"type": "uprn", "value": "100000000004"}
    answers = [post(broker, "ccc-school-admissions", admissions(subject=subject)) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert _retry_after(answers[5]) > 60  # the window is a day


def test_the_client_rate_limit_says_when_to_try_again(slow_broker: LiveBroker) -> None:
    headers = _bearer(slow_broker, "r9z-ed-safeguarding")
    first = slow_broker.http.post(
        "/v1/exchanges",
        json=verified(slow_broker, "r9z-ed-safeguarding", safeguarding()),
        headers=headers,
    )
    assert first.status_code == 200, first.text
    second = slow_broker.http.post(
        "/v1/exchanges",
        json=verified(slow_broker, "r9z-ed-safeguarding", safeguarding()),
        headers=headers,
    )
    assert 1 <= _retry_after(second) <= 60


# -- check-receipt on the receipt the exchange answer holds ----------------------------------------


def _public_key_file(broker: LiveBroker, tmp_path: Path) -> Path:
    path = tmp_path / "log-key.pub.pem"
    path.write_bytes(
        public_log_key(broker.settings).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _check(receipt_file: Path, key: Path, *extra: str) -> Any:
    return runner.invoke(
        audit_cli, ["check-receipt", str(receipt_file), "--log-key", str(key), *extra]
    )


def _other_size(checkpoint: str) -> str:
    """The signed checkpoint with its tree size (its second line) changed by one."""
    lines = checkpoint.split("\n")
    lines[1] = str(int(lines[1]) + 1)
    return "\n".join(lines)


def test_check_receipt_verifies_the_answers_receipt_as_it_came(
    broker: LiveBroker, tmp_path: Path
) -> None:
    answer = post(broker, "r9z-ed-safeguarding", safeguarding())
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    assert receipt["checkpoint"] is not None
    assert receipt["inclusion_proof"] is not None
    key = _public_key_file(broker, tmp_path)
    saved = tmp_path / "receipt.json"
    saved.write_text(json.dumps(receipt))
    result = _check(saved, key)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("valid:")
    assert f"entry {receipt['leaf_index']}" in result.output
    # The whole answer saved as it came checks the same.
    whole = tmp_path / "answer.json"
    whole.write_text(answer.text)
    assert _check(whole, key).exit_code == 0
    # One byte altered, in the leaf hash or in the signed checkpoint: invalid.
    text = saved.read_text()
    digit = receipt["leaf_hash"][10]
    forged_hash = receipt["leaf_hash"][:10] + ("0" if digit != "0" else "1")
    for forged in (
        text.replace(receipt["leaf_hash"][:11], forged_hash),
        json.dumps({**receipt, "checkpoint": _other_size(receipt["checkpoint"])}),
    ):
        assert forged != text
        saved.write_text(forged)
        result = _check(saved, key)
        assert result.exit_code == 1, result.output
        assert result.stdout.startswith("INVALID:")
    # Another log's key: invalid.
    other = tmp_path / "other.pem"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    saved.write_text(text)
    assert _check(saved, other).exit_code == 1


def test_a_pending_receipt_says_what_to_fetch_and_checks_with_it(
    slow_broker: LiveBroker, tmp_path: Path
) -> None:
    headers = _bearer(slow_broker, "r9z-ed-safeguarding")
    slow_broker.services.audit.checkpoint_now()  # the next one is due 1000 entries or 60 s on
    answer = slow_broker.http.post(
        "/v1/exchanges",
        json=verified(slow_broker, "r9z-ed-safeguarding", safeguarding()),
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    assert receipt["checkpoint"] is None
    assert receipt["inclusion_proof"] is None
    key = _public_key_file(slow_broker, tmp_path)
    saved = tmp_path / "receipt.json"
    saved.write_text(json.dumps(receipt))
    result = _check(saved, key)
    assert result.exit_code == 1
    assert result.stdout.startswith("PENDING:")
    proof_url = receipt["pending"]["inclusion_proof_url"]
    assert proof_url in result.output
    # Fetched as the message says, the proof and the checkpoint complete it.
    slow_broker.services.audit.checkpoint_now()
    checkpoint = slow_broker.http.get("/v1/audit/checkpoint", headers=headers)
    proof = slow_broker.http.get(proof_url, headers=headers)
    assert checkpoint.status_code == 200, checkpoint.text
    assert proof.status_code == 200, proof.text
    (tmp_path / "checkpoint.json").write_text(checkpoint.text)
    (tmp_path / "proof.json").write_text(proof.text)
    result = _check(
        saved,
        key,
        "--checkpoint",
        str(tmp_path / "checkpoint.json"),
        "--proof",
        str(tmp_path / "proof.json"),
    )
    assert result.exit_code == 0, result.output
    assert "valid:" in result.output


# -- audit verify checks the origin the log holds --------------------------------------------------


def test_audit_verify_checks_the_logs_own_origin(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    post(broker, "r9z-ed-safeguarding", safeguarding())
    origin = broker.services.audit.latest_checkpoint().origin
    assert origin != "127.0.0.1:8000/audit"  # the broker runs on another port
    monkeypatch.setenv("BROKER_DATABASE_URL", broker.settings.database_url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(broker.settings.keys_dir))
    monkeypatch.delenv("BROKER_PUBLIC_URL", raising=False)
    result = runner.invoke(audit_cli, ["verify"])
    assert result.exit_code == 0, result.output
    assert f"log origin checked: {origin} (from the log's first checkpoint)" in result.output
    assert "intact:" in result.output
    named = runner.invoke(audit_cli, ["verify", "--origin", origin, "--json"])
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["origin"] == origin
    wrong = runner.invoke(audit_cli, ["verify", "--origin", "elsewhere.example/audit"])
    assert wrong.exit_code == 1
    assert "log origin checked: elsewhere.example/audit (from --origin)" in wrong.output
    assert "TAMPERED" in wrong.output
