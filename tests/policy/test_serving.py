from __future__ import annotations

import pytest

from broker.policy.serving import bundle_reply


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        (None, 200),
        ('"rev-1"', 304),
        ('W/"rev-1"', 304),
        ('"rev-0", "rev-1"', 304),
        ("*", 304),
        ('"rev-0"', 200),
        ("rev-1", 200),
    ],
    ids=["no-header", "same", "weak-same", "in-list", "star", "older", "unquoted"],
)
def test_etag_and_304(if_none_match: str | None, status: int) -> None:
    reply = bundle_reply(b"tar", "rev-1", if_none_match)
    assert reply.status == status
    assert reply.headers["ETag"] == '"rev-1"'
    assert reply.body == (b"tar" if status == 200 else b"")
