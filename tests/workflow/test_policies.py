"""Approval policies in the real state machine (moto executes it, its waits on the real clock):
a quorum of two through two links, concurrent last approvals reaching APPROVED once, a reminder
replacing the undecided approver's link after its minute, and the escalation's backup who gets a
link after its minute and decides. The timed requests start together in one test, so that their
minutes overlap."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from account_connections.adapters.stepfunctions import StepFunctionsWorkflow
from account_connections.domain.access import Principal
from account_connections.domain.connection import CreateConnectionRequest
from account_connections.domain.registry import Approver
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.connections import create_connection
from tests.workflow.conftest import ADMIN_ACCOUNT, BASE_URL, OTHER_ACCOUNT, Email, Stack

S = ConnectionStatus
OPS1, OPS2, BACKUP = "ops1@example.com", "ops2@example.com", "backup@example.com"
STAMP = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
# The approval window of the timed requests: long enough never to close during the test.
WINDOW = 600
# A timer fires a minute after the request, and its wait's step sends within seconds of that.
TIMER_BOUND = 60 + 30


def _request(stack: Stack, account_id: str, space_id: str, timeout: int = WINDOW) -> str:
    created = create_connection(
        stack.connections, StepFunctionsWorkflow(stack.sfn, stack.state_machine),
        Principal(sub="alice", groups=frozenset()), space_id,
        CreateConnectionRequest(accountId=account_id, displayName=f"Policy {space_id}"),
        approval_timeout_seconds=timeout, verify_base_url=BASE_URL, correlation_id=f"corr-{space_id}",
    )  # fmt: skip
    return created.connectionId


def _emails_to(stack: Stack, address: str, connection_id: str, count: int, timeout: float) -> list[Email]:
    """The approval emails with links that ``address`` received for ``connection_id`` (at least
    ``count``, waiting up to ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        stack._drain("approvals", stack.emails)
        stack._drain("other-admin", stack.emails)  # the other account's emails
        found = [
            email for email in stack.emails
            if address in email.recipients and "/verify?token=" in email.body
            and stack.tokens_connection(email.token) == connection_id
        ]  # fmt: skip
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"{address} got {len(found)} of {count} links"
            return found
        time.sleep(0.2)


def _policy(stack: Stack, account_id: str, **policy: Any) -> None:
    stack.registry.put_approver(Approver(accountId=account_id, **policy, **STAMP))


def test_a_quorum_of_two_is_reached_through_two_links(stack: Stack) -> None:
    _policy(stack, ADMIN_ACCOUNT, approvers=[OPS1, OPS2], quorum=2)
    connection_id = _request(stack, ADMIN_ACCOUNT, "demo")
    [one] = _emails_to(stack, OPS1, connection_id, 1, 10)
    [two] = _emails_to(stack, OPS2, connection_id, 1, 10)
    assert stack.approve(one.token)["statusCode"] == 200
    # One approval of two: the workflow still waits, the other's page shows who approved
    assert stack.connections.get(connection_id).status == S.PENDING_APPROVAL
    assert OPS1 in stack.page(two.token)["body"]
    assert stack.approve(two.token)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    verified = stack.connections.get(connection_id)
    assert verified.status == S.VERIFIED and [a.approver for a in verified.approvals] == [OPS1, OPS2]
    # The plain path's transitions: quorum costs none
    assert stack.entered_states(connection_id) == [
        "NotifyApprover", "VerifyConnection", "AttachRoles", "RecordVerified", "NotifyRequesterVerified",
        "Verified",
    ]  # fmt: skip
    # Both approvers hear how it ended, the requester too
    _drain_until(stack, lambda: any("verified" in e.subject for e in stack.emails))
    [told] = [e for e in stack.emails if "verified" in e.subject]
    assert set(told.recipients) == {OPS1, OPS2}
    assert stack.drain_notices()[-1]["status"] == "VERIFIED"


def test_concurrent_last_approvals_reach_approved_exactly_once(stack: Stack) -> None:
    _policy(stack, ADMIN_ACCOUNT, approvers=[OPS1, OPS2, "ops3@example.com"], quorum=2)
    for round_ in range(3):
        connection_id = _request(stack, ADMIN_ACCOUNT, "demo")
        links = [_emails_to(stack, address, connection_id, 1, 10)[0].token
                 for address in (OPS1, OPS2, "ops3@example.com")]  # fmt: skip
        answers: list[int] = []
        start = threading.Barrier(3)

        def approve(token: str, start: threading.Barrier = start, answers: list[int] = answers) -> None:
            # Each reads its page while the request is pending, then all three post at once.
            csrf = re.search(r'name="csrf" value="([^"]+)"', stack.page(token)["body"])
            assert csrf, "the page has no decision form"
            start.wait()
            posted = stack.decide_form(token, {"decision": "approve"}, csrf=csrf.group(1))
            answers.append(posted["statusCode"])

        threads = [threading.Thread(target=approve, args=(token,)) for token in links]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Two approvals count; the third finds the request approved (409); APPROVED happened once
        assert len(answers) == 3 and sorted(answers)[:2] == [200, 200] and answers.count(200) == 2, answers
        assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
        _, _, history = stack.connections.detail(connection_id)
        approved = [e for e in history if e.toStatus == S.APPROVED]
        assert len(approved) == 1, f"round {round_}: {history}"
        assert stack.connections.get(connection_id).status == S.VERIFIED
        stack.emails.clear()
        # Free the account for the next round
        stack.requester_http("http_cancel_connection", connection_id)


def test_reminders_and_the_escalation_run_on_the_clock(stack: Stack) -> None:
    # Given a quorum-2 policy reminding after a minute, and another escalating after a minute
    _policy(stack, ADMIN_ACCOUNT, approvers=[OPS1, OPS2], quorum=2, remindAfterSeconds=[60])
    _policy(stack, OTHER_ACCOUNT, approvers=[OPS1], escalateAfterSeconds=60, escalateTo=[BACKUP])
    reminded = _request(stack, ADMIN_ACCOUNT, "demo")
    escalated = _request(stack, OTHER_ACCOUNT, "demo")
    started = time.monotonic()
    [ops1_first] = _emails_to(stack, OPS1, reminded, 1, 10)
    [ops2_first] = _emails_to(stack, OPS2, reminded, 1, 10)
    _emails_to(stack, OPS1, escalated, 1, 10)
    # ops1 approves the first before its minute is up: only ops2 is reminded
    assert stack.approve(ops1_first.token)["statusCode"] == 200
    reminder = _emails_to(stack, OPS2, reminded, 2, TIMER_BOUND)[-1]
    assert time.monotonic() - started >= 55, "the reminder came before its minute"
    assert reminder.subject.startswith("Reminder:") and reminder.token != ops2_first.token
    assert stack.page(ops2_first.token)["statusCode"] == 410
    assert len(_emails_to(stack, OPS1, reminded, 1, 0)) == 1
    # The backup got a link after the other's minute, and counts as an approver
    [backup] = _emails_to(stack, BACKUP, escalated, 1, TIMER_BOUND)
    assert "escalated to you" in backup.body
    # The reminded approver reaches the quorum through the new link; the backup decides the other
    assert stack.approve(reminder.token)["statusCode"] == 200
    assert stack.approve(backup.token)["statusCode"] == 200
    for connection_id in (reminded, escalated):
        assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
        assert stack.connections.get(connection_id).status == S.VERIFIED
    assert stack.connections.get(escalated).decidedBy == BACKUP
    # The history says what happened, and the timers cost transitions only where used
    _, _, history = stack.connections.detail(reminded)
    assert [e.type.value for e in history].count("REMINDED") == 1
    _, _, history = stack.connections.detail(escalated)
    assert "ESCALATED" in [e.type.value for e in history]
    timer_round = ["NotifyApprover", "TimerFired", "NextTimer", "NotifyApprover"]
    for connection_id in (reminded, escalated):
        assert stack.entered_states(connection_id)[:4] == timer_round


def _drain_until(stack: Stack, done: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        stack._drain("approvals", stack.emails)
        time.sleep(0.1)
    assert done()
