"""The audit log over HTTP: checkpoints and proofs for any party, searches for officers only,
scoped to their party, and every read of the log itself logged."""

from __future__ import annotations

import base64
from typing import Any

from broker.audit.checkpoint import open_checkpoint
from broker.audit.factory import public_log_key
from broker.core import merkle
from tests.exchange.helpers import CHILD, post, safeguarding
from tests.support import LiveBroker, demo_key


def get(broker: LiveBroker, client_id: str, path: str, **params: Any) -> Any:
    token = broker.token(client_id, demo_key(client_id))
    return broker.http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def test_any_party_can_check_an_exchange_is_in_the_log(broker: LiveBroker) -> None:
    answer = post(broker, "r9z-ed-safeguarding", safeguarding()).json()
    broker.services.audit.checkpoint_now()
    checkpoint = get(broker, "r9z-ed-safeguarding", "/v1/audit/checkpoint").json()
    proof = get(
        broker,
        "r9z-ed-safeguarding",
        "/v1/audit/proof/inclusion",
        exchange_id=answer["exchange_id"],
        tree_size=checkpoint["tree_size"],
    ).json()
    assert merkle.verify_inclusion(
        proof["leaf_index"],
        proof["tree_size"],
        bytes.fromhex(answer["receipt"]["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["proof"]],
        base64.b64decode(checkpoint["root_hash"]),
    )
    # The checkpoint is signed by the log key the broker publishes to every party.
    opened = open_checkpoint(checkpoint["note"], public_log_key(broker.settings))
    assert opened.tree_size == checkpoint["tree_size"]


def test_consistency_between_two_checkpoints(broker: LiveBroker) -> None:
    first = broker.services.audit.checkpoint_now()
    post(broker, "r9z-ed-safeguarding", safeguarding())
    second = broker.services.audit.checkpoint_now()
    proof = get(
        broker,
        "wcp-mash",
        "/v1/audit/proof/consistency",
        first=first.tree_size,
        second=second.tree_size,
    ).json()
    assert merkle.verify_consistency(
        first.tree_size,
        second.tree_size,
        first.root,
        second.root,
        [bytes.fromhex(h) for h in proof["proof"]],
    )


def test_search_by_subject_is_pseudonymised_and_scoped(broker: LiveBroker) -> None:
    post(broker, "r9z-ed-safeguarding", safeguarding())
    mine = get(
        broker, "r9z-governance", "/v1/exchanges", subject_type="nhs_number", subject_value=CHILD
    ).json()
    assert mine["items"]
    assert all(i["dataset"] == "ccc.child-protection" for i in mine["items"])
    assert CHILD not in str(mine)
    # The hospital's officers see what the hospital asked for and what it provides; being a
    # party to the agreement another party asked under is not enough.
    everything = get(broker, "broker-oversight", "/v1/exchanges", limit=500).json()["items"]
    hospital = get(broker, "r9z-governance", "/v1/exchanges", limit=500).json()["items"]
    assert len(hospital) <= len(everything)
    visible = {i["exchange_id"] for i in hospital}
    for item in everything:
        if item.get("party_id") != "R9Z" and not str(item.get("dataset")).startswith("r9z."):
            assert item["exchange_id"] not in visible


def test_partner_systems_cannot_search_the_log(broker: LiveBroker) -> None:
    assert get(broker, "r9z-ed-safeguarding", "/v1/exchanges").status_code == 403


def test_every_read_of_the_log_is_logged(broker: LiveBroker) -> None:
    get(broker, "ccc-governance", "/v1/exchanges", dataset="ccc.child-protection")
    reads = get(broker, "broker-oversight", "/v1/exchanges", limit=5).json()["items"]
    assert any(r["kind"] == "audit-read" and r["client_id"] == "ccc-governance" for r in reads), (
        reads
    )


def test_one_entry_and_404_out_of_scope(broker: LiveBroker) -> None:
    answer = post(
        broker,
        "ccc-school-admissions",
        {
            "agreement_id": "ISA-SCHOOL-ADMISSIONS",
            "purpose": "school-admission-address-check",
            "dataset": "ccc.council-tax",
            "subject": {"type": "uprn", "value": "100000000003"},
            "mode": "verify",
            "claims": {"address.postcode": "CX3 1DW"},
            "requested_by": {"user_id": "a-1", "role": "admissions-officer"},
        },
    ).json()
    exchange_id = answer["exchange_id"]
    council = get(broker, "ccc-governance", f"/v1/exchanges/{exchange_id}")
    assert council.status_code == 200
    assert council.json()["exchange_id"] == exchange_id
    assert get(broker, "r9z-governance", f"/v1/exchanges/{exchange_id}").status_code == 404
