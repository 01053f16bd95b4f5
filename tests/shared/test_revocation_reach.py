"""A revocation made through one instance reaches the other within a bounded number of its poll
cycles (one), counted by driving the poll, not by a clock: each instance reads the stored agreement
state every ``policy_poll_seconds`` and denies what a recorded revocation covers before it
rebuilds. Both then serve the same new bundle (ETag and bytes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from broker.agreements.authoring import revoke
from broker.agreements.loader import signature_path
from broker.agreements.signing import load_private_key
from tests.exchange.helpers import entry, post, safeguarding
from tests.shared.conftest import REPO
from tests.shared.test_state import HOSPITAL_ED, bundle
from tests.support import LiveBroker

Pair = tuple[LiveBroker, LiveBroker]
REVOKED = "ISA-SAFEGUARDING-CHILDREN"
MAX_CYCLES = 1
"""Poll cycles of the other instance until it refuses: with ``policy_poll_seconds`` 0.5 (the
default) a revocation denies everywhere within about 0.5 s plus one cheap query."""


def revoke_through(broker: LiveBroker) -> None:
    """As an operator revokes on one host: a signed revocation in that instance's agreements
    directory (what ``broker agreements revoke`` writes), seen by that instance's next poll."""
    key = load_private_key((REPO / "agreements" / "demo-keys" / "R9Z.pem").read_bytes())
    root = broker.settings.agreements_dir
    revoke(root, REVOKED, "R9Z", key, "pilot ends", now=dt.datetime.now(dt.UTC), demo=True)


def cycles_until_refused(broker: LiveBroker, limit: int = 5) -> int:
    for cycle in range(1, limit + 1):
        broker.services.policy_runtime.poll()
        if post(broker, HOSPITAL_ED, safeguarding()).status_code == 403:
            return cycle
    raise AssertionError(f"still allowed after {limit} poll cycles")


def assert_refused_as_revoked(broker: LiveBroker) -> None:
    refused = post(broker, HOSPITAL_ED, safeguarding())
    assert refused.status_code == 403, refused.text
    assert any(REVOKED in reason for reason in refused.json()["reasons"]), refused.json()
    assert entry(broker, refused.json()["exchange_id"])["decision"] == "deny"


def test_a_forged_revocation_on_one_host_reaches_no_instance(pair: Pair) -> None:
    """A revocation signed with a key the trust store does not hold, dropped into one instance's
    directory: that instance still allows, records nothing, and the other never hears of it."""
    a, b = pair
    forged_key = ECKey.generate_key("P-256", private=True)
    root = a.settings.agreements_dir
    path = revoke(root, REVOKED, "R9Z", forged_key, "forged", now=dt.datetime.now(dt.UTC))
    try:
        state = a.services.policy_runtime.store.state()
        assert a.services.policy_runtime.poll() is True
        assert a.services.policy_runtime.store.state() == state  # nothing recorded
        assert b.services.policy_runtime.poll() is False
        for broker in pair:
            allowed = post(broker, HOSPITAL_ED, safeguarding())
            assert allowed.status_code == 200, allowed.text
    finally:
        path.unlink()
        signature_path(path).unlink()
        a.services.policy_runtime.poll()


def test_a_revocation_through_one_instance_reaches_the_other_within_one_poll(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    for broker in pair:
        allowed = post(broker, HOSPITAL_ED, safeguarding())
        assert allowed.status_code == 200, allowed.text
    before = bundle(a).headers["ETag"]
    assert bundle(b).headers["ETag"] == before

    revoke_through(a)
    # A's rebuild has not finished (held back here): the revocation denies on A all the same,
    # and A has recorded it in the database already.
    a_runtime = a.services.policy_runtime
    monkeypatch.setattr(a_runtime, "refresh", lambda: None)
    assert cycles_until_refused(a) == 1  # its own directory changed: applied at once
    assert_refused_as_revoked(a)
    # B's directory never sees the file: the revocation A recorded in the database reaches it.
    # Meanwhile B says it is behind, so a load balancer sends it nothing.
    assert b.http.get("/readyz").status_code == 503
    # B's rebuild is refused this time (its policy directory is gone): the recorded revocation
    # denies all the same, before any rebuild.
    runtime = b.services.policy_runtime
    monkeypatch.setattr(runtime, "policy_dir", tmp_path / "no-policy-here")
    assert cycles_until_refused(b) <= MAX_CYCLES
    assert runtime.last_error is not None
    assert_refused_as_revoked(b)
    monkeypatch.undo()
    assert a_runtime.refresh().error is None

    # A refused rebuild is not retried every poll (the same inputs give the same refusal), and
    # the instance stays not ready; once the policy is back, a rebuild serves the new revision.
    assert runtime.poll() is False
    assert b.http.get("/readyz").status_code == 503
    assert runtime.refresh().error is None
    assert a_runtime.poll() is False
    on_a, on_b = bundle(a), bundle(b)
    assert on_a.headers["ETag"] == on_b.headers["ETag"] != before
    assert on_a.content == on_b.content
    for broker in pair:
        assert broker.http.get("/readyz").status_code == 200
        assert_refused_as_revoked(broker)
