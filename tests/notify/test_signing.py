"""Webhook signatures: the Standard Webhooks vector, round trips, and every kind of tampering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from broker.notify.signing import (
    WebhookSignatureError,
    new_secret,
    sign_headers,
    signature,
    verify_webhook,
)

SECRET = new_secret()
NOW = 1_795_900_000


def test_the_published_standard_webhooks_vector_reproduces() -> None:
    # From the Standard Webhooks reference libraries: a provider's off-the-shelf verifier works.
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_signed_delivery_verifies_and_names_its_id() -> None:
    headers = sign_headers(SECRET, "n-1", NOW, b'{"a":1}')
    assert verify_webhook(SECRET, headers, b'{"a":1}', now=NOW + 10) == "n-1"


def test_header_names_are_matched_case_insensitively() -> None:
    headers = {k.title(): v for k, v in sign_headers(SECRET, "n-1", NOW, b"{}").items()}
    assert verify_webhook(SECRET, headers, b"{}", now=NOW) == "n-1"


def test_several_signatures_pass_when_one_matches() -> None:
    headers = sign_headers(SECRET, "n-1", NOW, b"{}")
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]
    assert verify_webhook(SECRET, headers, b"{}", now=NOW) == "n-1"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param({"webhook-id": "n-2"}, "no signature matches", id="other-id"),
        pytest.param({"webhook-timestamp": str(NOW + 1)}, "no signature matches", id="other-time"),
        pytest.param({"webhook-timestamp": "soon"}, "not an integer", id="bad-time"),
        pytest.param({"webhook-signature": "v1,AAAA"}, "no signature matches", id="bad-mac"),
        pytest.param({"webhook-timestamp": str(NOW - 301)}, "too far", id="stale"),
        pytest.param({"webhook-timestamp": str(NOW + 301)}, "too far", id="future"),
    ],
)
def test_altered_headers_are_refused(change: dict[str, str], match: str) -> None:
    headers = sign_headers(SECRET, "n-1", NOW, b"{}") | change
    with pytest.raises(WebhookSignatureError, match=match):
        verify_webhook(SECRET, headers, b"{}", now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = sign_headers(SECRET, "n-1", NOW, b"{}")
    del headers[missing]
    with pytest.raises(WebhookSignatureError, match=f"missing header {missing}"):
        verify_webhook(SECRET, headers, b"{}", now=NOW)


def test_another_secret_does_not_verify() -> None:
    headers = sign_headers(SECRET, "n-1", NOW, b"{}")
    with pytest.raises(WebhookSignatureError, match="no signature matches"):
        verify_webhook(new_secret(), headers, b"{}", now=NOW)


def test_a_malformed_secret_is_refused() -> None:
    with pytest.raises(WebhookSignatureError, match="not base64"):
        signature("whsec_***", "n-1", NOW, b"{}")


@hsettings(max_examples=50)
@given(body=st.binary(min_size=1, max_size=200), at=st.integers(0, 199), flip=st.integers(1, 255))
def test_any_change_to_the_body_is_detected(body: bytes, at: int, flip: int) -> None:
    headers = sign_headers(SECRET, "n-1", NOW, body)
    tampered = bytearray(body)
    tampered[at % len(body)] ^= flip
    with pytest.raises(WebhookSignatureError):
        verify_webhook(SECRET, headers, bytes(tampered), now=NOW)
