"""The approval workflow end to end: the real ASL file running in moto, each Lambda step running
our real handler, the administrator deciding through the real /verify handler."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from account_connections.adapters.stepfunctions import StepFunctionsWorkflow
from account_connections.domain.access import Principal
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.connections import cancel_connection
from tests.builders import LinkClock
from tests.workflow.conftest import ADMIN_ACCOUNT, ADMIN_EMAIL, BASE_URL, Stack, role_arn

APPROVED_PATH = ["NotifyApprover", "VerifyConnection", "AttachRoles", "RecordVerified",
                 "NotifyRequesterVerified", "Verified"]  # fmt: skip
REJECTED_PATH = ["NotifyApprover", "ConfirmRejected", "NotifyRequesterEnded", "Ended"]
CANCELLED_PATH = ["NotifyApprover", "ConfirmEnded", "NotifyRequesterEnded", "Ended"]
EXPIRED_PATH = ["NotifyApprover", "TimerFired", "RecordExpired", "NotifyRequesterEnded", "Ended"]


def test_approval_verifies_the_connection_and_attaches_its_roles(stack: Stack) -> None:
    # Given a request for two roles, and the administrator's email
    connection_id, _ = stack.request([role_arn("BuildRole"), role_arn("DeployRole", path="/deploy/")])
    email = stack.wait_for_email()
    assert email.account_id == ADMIN_ACCOUNT
    assert email.link.startswith(f"{BASE_URL}/verify?token=")

    # When the administrator verifies the space without paid tiers
    answer = stack.approve(email.token)

    # Then the page confirms, and the workflow verifies the connection with both roles
    assert answer["statusCode"] == 200, answer["body"]
    assert "Request approved" in answer["body"]
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection, roles, history = stack.connections.detail(connection_id)
    assert connection.status == ConnectionStatus.VERIFIED
    assert connection.paidTiersAuthorized is False
    assert connection.decidedBy == ADMIN_EMAIL
    assert connection.verifiedAt and connection.decidedAt and connection.verifiedAt >= connection.decidedAt
    assert {(role.roleName, role.attached) for role in roles} == {("BuildRole", True), ("DeployRole", True)}
    assert [(event.fromStatus, event.toStatus) for event in history if event.type == "STATUS_CHANGED"] == [
        (ConnectionStatus.PENDING_APPROVAL, ConnectionStatus.APPROVED),
        (ConnectionStatus.APPROVED, ConnectionStatus.VERIFIED),
    ]
    assert [event.type for event in history].count("ROLE_ATTACHED") == 2
    # And every state of the approved path ran, in order
    assert stack.entered_states(connection_id) == APPROVED_PATH
    # And the requester hears of it on the events topic
    notice = stack.drain_notices()[-1]
    assert notice["status"] == "VERIFIED" and notice["connectionId"] == connection_id
    assert notice["attributes"] == {"status": "VERIFIED", "accountId": ADMIN_ACCOUNT, "spaceId": "demo"}


def test_approval_with_paid_tiers_records_them(stack: Stack) -> None:
    connection_id, _ = stack.request()
    answer = stack.approve(stack.wait_for_email().token, paid=True)
    assert "Paid tiers: authorized" in answer["body"]
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection = stack.connections.get(connection_id)
    assert connection.status == ConnectionStatus.VERIFIED
    assert connection.paidTiersAuthorized is True
    assert stack.drain_notices()[-1]["paidTiersAuthorized"] is True


def test_rejection_records_the_reason_and_tells_the_requester(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    answer = stack.decide_form(token, {"decision": "reject", "reason": "Not one of our accounts."})
    assert answer["statusCode"] == 200, answer["body"]
    assert "Not one of our accounts." in answer["body"]
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection = stack.connections.get(connection_id)
    assert connection.status == ConnectionStatus.REJECTED
    assert connection.reason == "Not one of our accounts."
    assert connection.decidedBy == ADMIN_EMAIL
    assert stack.entered_states(connection_id) == REJECTED_PATH
    notice = stack.drain_notices()[-1]
    assert (notice["status"], notice["reason"]) == ("REJECTED", "Not one of our accounts.")
    # The account is free again: a new request for it can be made.
    stack.request()


def test_a_request_nobody_decides_expires_and_its_link_dies(stack: Stack) -> None:
    connection_id, _ = stack.request(timeout=2)
    token = stack.wait_for_email().token
    assert stack.page(token)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection = stack.connections.get(connection_id)
    assert connection.status == ConnectionStatus.EXPIRED
    assert stack.entered_states(connection_id) == EXPIRED_PATH
    page = stack.page(token)
    assert page["statusCode"] == 410
    assert "expired" in page["body"]
    assert stack.drain_notices()[-1]["status"] == "EXPIRED"
    assert stack.requester_http("http_resend_connection", connection_id)["statusCode"] == 409


def test_cancel_while_waiting_ends_the_workflow_and_kills_the_links(stack: Stack) -> None:
    connection_id, connection_token = stack.request()
    token = stack.wait_for_email().token
    alice = Principal("alice", frozenset())
    cancel_connection(stack.connections, StepFunctionsWorkflow(stack.sfn), alice, "demo", connection_id)
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    assert stack.entered_states(connection_id) == [
        "NotifyApprover",
        "ConfirmEnded",
        "NotifyRequesterEnded",
        "Ended",
    ]
    assert stack.connections.get(connection_id).status == ConnectionStatus.CANCELLED
    # The requester hears it on the events topic, the approver who got the link by email
    assert stack.drain_notices()[-1]["status"] == "CANCELLED"
    told = stack.wait_for_email(count=2)
    assert "was cancelled by the requester" in told.body and told.account_id == ADMIN_ACCOUNT
    for dead in (token, connection_token):
        page = stack.page(dead)
        assert page["statusCode"] == 410
        assert "cancelled" in page["body"]
    assert stack.decide_json(token, "approve")["statusCode"] == 410


def test_resend_replaces_the_link_at_once(stack: Stack, link_clock: LinkClock) -> None:
    connection_id, _ = stack.request()
    old = stack.wait_for_email().token
    link_clock.advance()
    sent = stack.requester_http("http_resend_connection", connection_id)
    assert sent["statusCode"] == 200, sent["body"]
    new = stack.wait_for_email(count=2).token
    assert new != old
    old_page = stack.page(old)
    assert old_page["statusCode"] == 410 and "newer link" in old_page["body"]
    assert stack.approve(new)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    assert stack.connections.get(connection_id).status == ConnectionStatus.VERIFIED


def test_a_resend_within_the_minute_is_429_with_when_to_retry_and_changes_nothing(
    stack: Stack, link_clock: LinkClock
) -> None:
    # Given the first link went out 15 seconds ago
    connection_id, _ = stack.request()
    first = stack.wait_for_email().token
    link_clock.advance(timedelta(seconds=15))
    before = stack.dump()
    # When alice asks for a new link
    refused = stack.requester_http("http_resend_connection", connection_id)
    # Then she is told to retry in 45 seconds, as a problem; no email, no token, no event
    assert refused["statusCode"] == 429, refused["body"]
    assert refused["headers"]["Retry-After"] == "45"
    assert refused["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(refused["body"])
    assert (problem["status"], problem["title"]) == (429, "Too many links")
    assert "45 seconds" in problem["detail"]
    assert stack.dump() == before
    with pytest.raises(AssertionError):
        stack.wait_for_email(count=2, timeout=0.3)
    assert stack.page(first)["statusCode"] == 200
    # When she asks again once the minute has passed Then the new link goes
    link_clock.advance(timedelta(seconds=45))
    assert stack.requester_http("http_resend_connection", connection_id)["statusCode"] == 200
    assert stack.wait_for_email(count=2).token != first


def test_after_ten_links_a_resend_is_429_without_a_time_to_retry(stack: Stack, link_clock: LinkClock) -> None:
    connection_id, _ = stack.request()
    stack.wait_for_email()
    for _ in range(9):
        link_clock.advance()
        assert stack.requester_http("http_resend_connection", connection_id)["statusCode"] == 200
    link_clock.advance(timedelta(minutes=30))  # within the request's hour
    refused = stack.requester_http("http_resend_connection", connection_id)
    assert refused["statusCode"] == 429
    assert "Retry-After" not in refused["headers"]
    assert "10 links" in json.loads(refused["body"])["detail"]
