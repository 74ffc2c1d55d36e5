"""Decisions that prove authority (SPEC.md, "Decisions"), through the real decision function,
state machine and table, with real signed proofs checked by an STS double that verifies SigV4
(tests/proofs.py). The finding that opened this: a requester approved their own request with the
connection token from their own 201, and the history said the administrator did."""

from __future__ import annotations

import json
from typing import Any

import pytest

from account_connections.adapters.stepfunctions import StepFunctionsWorkflow
from account_connections.domain.access import Principal
from account_connections.domain.connection import CreateConnectionRequest
from account_connections.domain.registry import Approver, Member, SpaceRole
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.connections import create_connection
from tests.proofs import ADMIN_SESSION, FakeSts
from tests.workflow.conftest import ADMIN_ACCOUNT, ADMIN_EMAIL, BASE_URL, OTHER_ACCOUNT, SPACE, Stack

OTHER_SESSION = f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/Admin/someone"


def body(answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(answer["body"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_requesters_own_connection_token_moves_nothing_without_a_proof(
    stack: Stack, decision: str
) -> None:
    # Given bob's request and the connection token from his own 201
    connection_id, connection_token = stack.request(requester="bob")
    stack.wait_for_email()
    before = stack.dump()
    # When he decides with it, as JSON and through the page's form
    fields: dict[str, Any] = {"reason": "mine"} if decision == "reject" else {"authorizePaidTiers": True}
    answer = stack.decide_json(connection_token, decision, **fields)
    form = stack.decide_form(connection_token, {"decision": decision, "reason": "mine"})
    # Then both are refused and nothing changed: the request is still pending
    assert answer["statusCode"] == 403 and "account proof" in body(answer)["detail"]
    assert form["statusCode"] == 403 and "acctconn prove" in form["body"]
    assert stack.dump() == before
    assert stack.connections.get(connection_id).status == ConnectionStatus.PENDING_APPROVAL


def test_a_connection_token_with_a_proof_of_the_account_decides_as_the_proven_principal(
    stack: Stack, sts: FakeSts
) -> None:
    connection_id, connection_token = stack.request(requester="bob")
    stack.wait_for_email()
    page = stack.page(connection_token)
    assert f"acctconn prove {connection_id}" in page["body"] and 'name="accountProof"' in page["body"]
    answer = stack.decide_json(
        connection_token, "approve", accountProof=sts.proof(connection_id, ADMIN_SESSION)
    )
    assert answer["statusCode"] == 200, answer["body"]
    assert body(answer)["decidedBy"] == ADMIN_SESSION and body(answer)["decisionMethod"] == "ACCOUNT_PROOF"
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection, _, history = stack.connections.detail(connection_id)
    assert connection.status == ConnectionStatus.VERIFIED
    assert (connection.decidedBy, connection.decisionMethod) == (ADMIN_SESSION, "ACCOUNT_PROOF")
    assert any(event.actor == ADMIN_SESSION and "account proof" in (event.detail or "") for event in history)
    # The registered administrator is told that it happened without their link.
    notice = stack.wait_for_email(count=2)
    assert "account proof" in notice.subject and ADMIN_SESSION in notice.body
    assert notice.account_id == ADMIN_ACCOUNT


def test_a_proof_from_another_account_or_forged_or_for_another_request_is_refused(
    stack: Stack, sts: FakeSts
) -> None:
    connection_id, connection_token = stack.request()
    stack.wait_for_email()
    before = stack.dump()
    elsewhere = stack.decide_json(
        connection_token, "approve", accountProof=sts.proof(connection_id, OTHER_SESSION)
    )
    assert elsewhere["statusCode"] == 403 and OTHER_ACCOUNT in body(elsewhere)["detail"]
    forged = sts.proof(connection_id, ADMIN_SESSION)
    auth = forged["headers"]["Authorization"]
    forged["headers"]["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    refused = stack.decide_json(connection_token, "approve", accountProof=forged)
    assert refused["statusCode"] == 403 and "SignatureDoesNotMatch" in body(refused)["detail"]
    for_another = sts.proof("00000000-0000-4000-8000-000000000000", ADMIN_SESSION)
    assert stack.decide_json(connection_token, "approve", accountProof=for_another)["statusCode"] == 403
    assert stack.dump() == before


def test_a_proof_by_the_requester_themselves_is_refused(stack: Stack, sts: FakeSts) -> None:
    # A requester whose identity is an IAM principal of the account (the sub is the role's ARN).
    requester = "arn:aws:iam::111122223333:role/Admin"
    stack.registry.put_member(Member(spaceId=SPACE, userId=requester, role=SpaceRole.POWER_USER,
                                     updatedAt="2026-11-01T00:00:00.000Z", updatedBy="oscar"))  # fmt: skip
    connection_id, connection_token = stack.request(requester=requester)
    stack.wait_for_email()
    answer = stack.decide_json(
        connection_token, "approve", accountProof=sts.proof(connection_id, ADMIN_SESSION)
    )
    assert answer["statusCode"] == 403 and "own request" in body(answer)["detail"]
    assert stack.connections.get(connection_id).status == ConnectionStatus.PENDING_APPROVAL


def test_a_link_sent_to_the_requesters_own_address_does_not_decide(stack: Stack) -> None:
    # The requester is the account's registered administrator (the JWT's email claim says so).
    created = create_connection(
        stack.connections, StepFunctionsWorkflow(stack.sfn, stack.state_machine),
        Principal(sub="alice", groups=frozenset(), email=ADMIN_EMAIL.upper()), SPACE,
        CreateConnectionRequest(accountId=ADMIN_ACCOUNT, displayName="Self-service"),
        approval_timeout_seconds=3600, verify_base_url=BASE_URL, correlation_id="corr-self",
    )  # fmt: skip
    link = stack.wait_for_email().token
    answer = stack.decide_json(link, "approve")
    assert answer["statusCode"] == 403 and "own request" in body(answer)["detail"]
    assert stack.connections.get(created.connectionId).status == ConnectionStatus.PENDING_APPROVAL


def test_approver_principals_limit_whose_proofs_count(stack: Stack, sts: FakeSts) -> None:
    only = ["arn:aws:iam::111122223333:role/Approver"]
    stamp = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
    stack.registry.put_approver(
        Approver(accountId=ADMIN_ACCOUNT, email=ADMIN_EMAIL, approverPrincipals=only, **stamp)
    )
    connection_id, connection_token = stack.request()
    stack.wait_for_email()
    admin = stack.decide_json(
        connection_token, "approve", accountProof=sts.proof(connection_id, ADMIN_SESSION)
    )
    assert admin["statusCode"] == 403 and "not one of the principals" in body(admin)["detail"]
    approver = "arn:aws:sts::111122223333:assumed-role/Approver/carla"
    answer = stack.decide_json(connection_token, "approve", accountProof=sts.proof(connection_id, approver))
    assert answer["statusCode"] == 200, answer["body"]
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"


def test_with_require_account_proof_an_emailed_link_needs_a_proof_too(
    stack: Stack, sts: FakeSts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from account_connections.settings import load_settings

    monkeypatch.setenv("REQUIRE_ACCOUNT_PROOF", "true")
    load_settings.cache_clear()
    connection_id, _ = stack.request()
    link = stack.wait_for_email().token
    assert 'name="accountProof"' in stack.page(link)["body"]
    alone = stack.decide_json(link, "approve")
    assert alone["statusCode"] == 403 and "account proof" in body(alone)["detail"]
    answer = stack.decide_json(link, "approve", accountProof=sts.proof(connection_id, ADMIN_SESSION))
    assert answer["statusCode"] == 200, answer["body"]
    # Two factors: the mailbox decides (EMAIL_LINK), and the principal it proved is recorded.
    decided = stack.connections.get(connection_id)
    assert (decided.decidedBy, decided.decisionMethod, decided.provenPrincipal) == (
        ADMIN_EMAIL, "EMAIL_LINK", ADMIN_SESSION,
    )  # fmt: skip


def test_without_the_requirement_an_emailed_link_needs_no_proof(stack: Stack) -> None:
    connection_id, _ = stack.request()
    link = stack.wait_for_email().token
    assert 'name="accountProof"' not in stack.page(link)["body"]
    answer = stack.decide_json(link, "approve")
    assert answer["statusCode"] == 200 and body(answer)["decisionMethod"] == "EMAIL_LINK"
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
