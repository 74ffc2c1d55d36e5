"""The second way to decide, end to end on the local stack (README, "Decide with an account proof"):
the requester hands over the connection token; whoever decides with it proves control of the
account with `acctconn prove`, signed with the seeded Admin role's credentials from the emulated
STS, which the service itself sends to the emulated STS (which checks the signature as AWS does)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.client import StackClient, wait_for
from tests.e2e.test_account_proofs import credentials_of, prove

pytestmark = pytest.mark.e2e

ACCOUNT = "111122223333"


def _request(client: StackClient, user: str = "bob") -> tuple[str, dict[str, str], str]:
    space_id = client.new_space({"alice": "SPACE_ADMIN", "bob": "POWER_USER"})
    marker = f"Proof {uuid.uuid4().hex[:8]}"
    created = client.create_connection(user, space_id, ACCOUNT, displayName=marker)
    assert created.status == 201, created.text
    client.email_about(marker)  # the workflow waits for a decision
    return space_id, created.json(), marker


def test_the_requesters_token_alone_decides_nothing(client: StackClient) -> None:
    space_id, created, _ = _request(client)
    for decision in ("approve", "reject"):
        answer = client.request("POST", "/verify", json_body={
            "token": created["connectionToken"], "decision": decision, "reason": "my own",
        })  # fmt: skip
        assert answer.status == 403, answer.text
        assert "acctconn prove" in answer.json()["detail"]
    assert client.connection(space_id, created["connectionId"])["status"] == "PENDING_APPROVAL"


def test_a_proof_from_the_account_decides_and_the_administrator_is_told(client: StackClient) -> None:
    space_id, created, marker = _request(client)
    connection_id = created["connectionId"]
    page = client.request("GET", f"/verify?token={created['connectionToken']}")
    assert page.status == 200 and f"acctconn prove {connection_id}" in page.text
    proof = prove(credentials_of(client, ACCOUNT), connection_id)
    answer = client.request("POST", "/verify", json_body={
        "token": created["connectionToken"], "decision": "approve", "accountProof": proof,
    })  # fmt: skip
    assert answer.status == 200, answer.text
    decided_by = answer.json()["decidedBy"]
    assert decided_by.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/")
    assert answer.json()["decisionMethod"] == "ACCOUNT_PROOF"
    verified = client.wait_for_status(space_id, connection_id, "VERIFIED")
    assert (verified["decidedBy"], verified["decisionMethod"]) == (decided_by, "ACCOUNT_PROOF")

    def notice() -> dict[str, str] | None:
        return next((mail for mail in client.outbox() if connection_id in mail["body"]
                     and "account proof" in mail["subject"]), None)  # fmt: skip

    told = wait_for(notice, 30, "the administrator was not told")
    assert told["to"] == "admin@example.com" and decided_by in told["body"]
    # The same proof cannot decide again (and the request is decided anyway).
    again = client.request("POST", "/verify", json_body={
        "token": created["connectionToken"], "decision": "reject", "reason": "again", "accountProof": proof,
    })  # fmt: skip
    assert again.status in (409, 410), again.text


def test_a_proof_signed_for_another_connection_or_account_is_refused(client: StackClient) -> None:
    space_id, created, _ = _request(client)
    other_account = prove(credentials_of(client, "444455556666"), created["connectionId"])
    other_request = prove(credentials_of(client, ACCOUNT), str(uuid.uuid4()))
    for proof in (other_account, other_request):
        answer = client.request("POST", "/verify", json_body={
            "token": created["connectionToken"], "decision": "approve", "accountProof": proof,
        })  # fmt: skip
        assert answer.status == 403, answer.text
    assert client.connection(space_id, created["connectionId"])["status"] == "PENDING_APPROVAL"
