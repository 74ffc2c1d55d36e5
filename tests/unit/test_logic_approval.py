"""The administrator's side over the fakes: the confirmation page and the decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import DecisionRequest, request_digest
from account_connections.domain.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    DecisionFormStale,
    DecisionNotReady,
    DomainError,
    InvalidRequest,
    TaskAlreadyClosed,
    VerificationTokenGone,
    VerificationTokenNotFound,
)
from account_connections.domain.policy import Timer
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import LinkToken, TokenState, hash_token
from account_connections.logic.approval import (
    ALREADY_DECIDED,
    WINDOW_CLOSED,
    DecisionOutcome,
    decide,
    view_page,
)
from account_connections.logic.connections import cancel_connection
from account_connections.logic.links import resend_link
from account_connections.logic.registry import delete_approver
from tests.builders import ACCOUNT, ADMIN_EMAIL, SPACE
from tests.fakes import InMemoryTokens
from tests.unit.world import ALICE, BOB, OSCAR, World

S: TypeAlias = ConnectionStatus
Decision = Literal["approve", "reject"]


def _decide(
    world: World,
    token: str,
    decision: Decision = "approve",
    *,
    form: bool = False,
    csrf: str | None = None,
    require_account_proof: bool = False,
    **fields: Any,
) -> DecisionOutcome:
    request = DecisionRequest(token=token, decision=decision, **fields)
    ports = world.connections, world.tokens, world.workflow, world.proofs, world.mailer
    return decide(*ports, request, csrf=csrf, form=form, require_account_proof=require_account_proof)


def _snapshot(world: World) -> tuple[str, str, str]:
    """Everything a decision could change, to prove a refused one changed nothing."""
    records = {
        key: (record.connection, record.secrets, record.roles)
        for key, record in world.connections.records.items()
    }
    return str(records), str(world.tokens.stored), str(world.connections.events)


# ---- the page ----------------------------------------------------------------------------------


def test_the_page_shows_the_request_as_it_stands_and_writes_nothing(world: World) -> None:
    created, email = world.waiting()
    before = _snapshot(world)
    view = view_page(world.connections, world.tokens, email.token)
    stored = world.connections.get(created.connectionId)
    assert view.connection == stored and view.token == email.token
    assert view.requestDigest == request_digest(stored) and view.csrf
    assert _snapshot(world) == before


def test_the_connection_token_opens_the_page_before_the_workflow_waits_without_a_form(world: World) -> None:
    created = world.request()
    view = view_page(world.connections, world.tokens, created.connectionToken)
    assert view.connection.connectionId == created.connectionId
    assert view.csrf is None  # nothing to decide yet


@pytest.mark.parametrize("token", ["not-a-token-we-issued", "", "x" * 513, "tökén"])
def test_an_unknown_link_is_not_found(world: World, token: str) -> None:
    world.waiting()
    with pytest.raises(VerificationTokenNotFound) as refused:
        view_page(world.connections, world.tokens, token)
    assert status_of(refused.value) == 404 and "not known" in refused.value.detail


def _used(world: World) -> str:
    _, email = world.waiting()
    _decide(world, email.token)
    return email.token


def _replaced(world: World) -> str:
    created, email = world.waiting()
    world.clock.advance()  # a minute later: links are rate-limited
    resend_link(world.connections, world.registry, world.mailer, ALICE, SPACE, created.connectionId)
    return email.token


def _cancelled(world: World) -> str:
    created, email = world.waiting()
    cancel_connection(world.connections, world.workflow, ALICE, SPACE, created.connectionId)
    return email.token


def _expired(world: World) -> str:
    _, email = world.waiting(timeout=1)
    # The window closed: the stored request and its link both expired a minute ago.
    past = isoformat(utcnow() - timedelta(minutes=1))
    for record in world.connections.records.values():
        record.connection = record.connection.model_copy(update={"expiresAt": past})
    for key, token in world.tokens.stored.items():
        world.tokens.stored[key] = token.model_copy(update={"expiresAt": past})
    return email.token


GONE = {"used": _used, "replaced": _replaced, "cancelled": _cancelled, "expired": _expired}


@pytest.mark.parametrize("reason", list(GONE))
def test_a_link_that_no_longer_works_says_why(world: World, reason: str) -> None:
    token = GONE[reason](world)
    with pytest.raises(VerificationTokenGone) as refused:
        view_page(world.connections, world.tokens, token)
    assert (refused.value.reason, status_of(refused.value)) == (reason, 410)


@pytest.mark.parametrize(("reason", "error", "code"), [
    ("used", ConnectionAlreadyDecided, 409),  # a second decision
    ("replaced", VerificationTokenGone, 410),
    ("cancelled", VerificationTokenGone, 410),
    ("expired", VerificationTokenGone, 410),
])  # fmt: skip
def test_a_decision_through_a_dead_link_changes_nothing(
    world: World, reason: str, error: type[DomainError], code: int
) -> None:
    token = GONE[reason](world)
    before = _snapshot(world)
    answered = len(world.workflow.succeeded) + len(world.workflow.failed)
    with pytest.raises(error) as refused:
        _decide(world, token, "reject", reason="no")
    assert status_of(refused.value) == code
    assert _snapshot(world) == before
    assert len(world.workflow.succeeded) + len(world.workflow.failed) == answered


# ---- deciding ----------------------------------------------------------------------------------


def test_approving_through_the_form_records_who_and_answers_the_workflow(world: World) -> None:
    # Given the administrator opened the emailed link
    created, email = world.waiting()
    view = view_page(world.connections, world.tokens, email.token)
    # When they verify the space, with paid tiers, from the page's form
    outcome = _decide(world, email.token, form=True, csrf=view.csrf, authorizePaidTiers=True)
    # Then the request is approved by their address, and the waiting workflow goes on
    assert (outcome.status, outcome.decidedBy, outcome.paidTiersAuthorized) == (S.APPROVED, ADMIN_EMAIL, True)
    stored = world.connections.get(created.connectionId)
    assert (stored.status, stored.decidedBy, stored.decidedAt) == (S.APPROVED, ADMIN_EMAIL, outcome.decidedAt)
    assert world.connections.transitions == [S.APPROVED]
    assert world.workflow.succeeded == [("task-1", {
        "authorizePaidTiers": True, "decidedBy": ADMIN_EMAIL, "decidedAt": outcome.decidedAt,
        "requestDigest": view.requestDigest,
    })]  # fmt: skip
    # And the link is spent, its copy of the task token gone
    used = world.tokens.get(hash_token(email.token))
    assert used is not None and (used.state, used.taskToken, used.csrfSecret) == (TokenState.USED, None, None)
    assert world.connections.events[-1].actor == ADMIN_EMAIL


def test_a_json_decision_needs_no_csrf(world: World) -> None:
    _, email = world.waiting()
    assert _decide(world, email.token, form=False).status == S.APPROVED


def test_rejecting_needs_a_reason_and_frees_the_account(world: World) -> None:
    created, email = world.waiting()
    for blank in (None, "   "):
        with pytest.raises(InvalidRequest) as refused:
            _decide(world, email.token, "reject", reason=blank)
        assert [error["field"] for error in refused.value.errors] == ["reason"]
    assert world.connections.get(created.connectionId).status == S.PENDING_APPROVAL
    outcome = _decide(world, email.token, "reject", reason="  not our account  ")
    assert (outcome.status, outcome.reason) == (S.REJECTED, "not our account")
    assert world.workflow.failed == [("task-1", "Rejected", "not our account")]
    assert world.connections.live_holder(SPACE, ACCOUNT) is None


def test_a_form_needs_its_csrf_token(world: World) -> None:
    _, email = world.waiting()
    before = _snapshot(world)
    with pytest.raises(InvalidRequest) as missing:
        _decide(world, email.token, form=True, csrf=None)
    assert [error["field"] for error in missing.value.errors] == ["csrf"]
    with pytest.raises(DecisionFormStale) as forged:
        _decide(world, email.token, form=True, csrf="0" * 64)
    assert status_of(forged.value) == 409
    for odd in ("éé", "\u202e" + "0" * 63, "\ud800"):  # hmac.compare_digest refuses non-ASCII str
        with pytest.raises(DecisionFormStale):
            _decide(world, email.token, form=True, csrf=odd)
    assert _snapshot(world) == before and world.workflow.succeeded == []


def test_one_decision_per_request(world: World) -> None:
    created, email = world.waiting()
    _decide(world, email.token)
    # A second decision, through the same link or through the connection token, is a conflict
    for token in (email.token, created.connectionToken):
        with pytest.raises(ConnectionAlreadyDecided) as refused:
            _decide(world, token, "reject", reason="changed my mind")
        assert refused.value.detail == ALREADY_DECIDED
    assert world.connections.get(created.connectionId).status == S.APPROVED
    assert world.workflow.failed == []


def test_the_connection_token_is_not_ready_before_the_workflow_waits(world: World) -> None:
    created = world.request()
    with pytest.raises(DecisionNotReady) as refused:
        _decide(world, created.connectionToken)
    assert status_of(refused.value) == 409
    assert world.connections.get(created.connectionId).status == S.PENDING_APPROVAL


def _change_request(world: World, connection_id: str) -> None:
    """The stored request changes (same version) after its link was sent."""
    record = world.connections.records[connection_id]
    record.connection = record.connection.model_copy(update={"displayName": "Something else"})
    record.secrets = replace(record.secrets, request_digest=request_digest(record.connection))


def test_a_request_changed_since_it_was_shown_cannot_be_decided(world: World) -> None:
    created, email = world.waiting()
    view = view_page(world.connections, world.tokens, email.token)
    _change_request(world, created.connectionId)
    before = _snapshot(world)
    # Neither the form shown before (its CSRF binds the request shown) nor a JSON decision lands
    with pytest.raises(DecisionFormStale):
        _decide(world, email.token, form=True, csrf=view.csrf)
    with pytest.raises(DecisionFormStale) as refused:
        _decide(world, email.token)
    assert "changed" in refused.value.detail and status_of(refused.value) == 409
    assert _snapshot(world) == before and world.workflow.succeeded == []


def test_an_approval_after_the_workflow_stopped_waiting_fails_the_request(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the workflow no longer waits: its window closed between the write and the answer
    created, email = world.waiting()
    world.workflow.close("task-1")
    closed_at = datetime.fromisoformat(created.expiresAt) + timedelta(seconds=1)
    answer = world.workflow.succeed

    def late(task_token: str, output: dict[str, Any]) -> None:
        monkeypatch.setattr("account_connections.logic.approval.utcnow", lambda: closed_at)
        answer(task_token, output)

    monkeypatch.setattr(world.workflow, "succeed", late)
    # When the administrator approves
    with pytest.raises(TaskAlreadyClosed) as refused:
        _decide(world, email.token)
    # Then they are told, and the request does not stay APPROVED: it FAILED, saying why
    assert status_of(refused.value) == 409
    stored = world.connections.get(created.connectionId)
    assert (stored.status, stored.reason) == (S.FAILED, WINDOW_CLOSED)
    assert world.connections.transitions == [S.APPROVED, S.FAILED]
    assert world.connections.live_holder(SPACE, ACCOUNT) is None


def test_a_rejection_after_the_workflow_stopped_waiting_stands(world: World) -> None:
    created, email = world.waiting()
    world.workflow.close("task-1")
    assert _decide(world, email.token, "reject", reason="no").status == S.REJECTED
    assert world.connections.get(created.connectionId).status == S.REJECTED


def test_an_approval_that_met_a_task_a_timer_closed_waits_for_the_next_round(world: World) -> None:
    # Given a reminder's timer closed the task the link carries, and the workflow waits anew
    created, email = world.waiting()
    world.workflow.close("task-1")
    # When the administrator approves before the next wait stored its task token
    outcome = _decide(world, email.token)
    # Then the approval stands (the window is open), and the next wait answers it
    assert outcome.status == S.APPROVED
    assert world.connections.transitions == [S.APPROVED]
    world.notify(created.connectionId, "task-2", Timer(number=1, seconds=60, remind=True))
    assert [token for token, _ in world.workflow.succeeded] == ["task-2"]
    assert world.workflow.succeeded[0][1]["decidedBy"] == ADMIN_EMAIL


def test_an_approval_that_met_a_closed_task_answers_the_new_one_already_stored(world: World) -> None:
    created, email = world.waiting()
    world.workflow.close("task-1")
    token = world.tokens.get(hash_token(email.token))
    assert token is not None
    world.notify(created.connectionId, "task-2", Timer(number=1, seconds=3600, escalate=True))
    # The link still carries the old task token when it is read: the decision meets a closed task
    world.tokens.stored[token.tokenHash] = token
    assert _decide(world, email.token).status == S.APPROVED
    assert [token for token, _ in world.workflow.succeeded] == ["task-2"]


def test_a_resend_while_nobody_is_registered_is_refused(world: World) -> None:
    created, _ = world.waiting()
    delete_approver(world.registry, world.subscriptions, world.connections, OSCAR, ACCOUNT)
    world.clock.advance()
    sent = len(world.mailer.emails)
    with pytest.raises(ApproverNotRegistered) as refused:
        resend_link(world.connections, world.registry, world.mailer, ALICE, SPACE, created.connectionId)
    assert status_of(refused.value) == 422
    assert len(world.mailer.emails) == sent


def test_a_decision_racing_a_resend_through_the_old_link_loses(world: World) -> None:
    # Given the old link is read for a decision just before bob's resend retires it
    created, email = world.waiting()
    old_hash = hash_token(email.token)
    world.clock.advance()

    class Racing(InMemoryTokens):
        def get(self, token_hash: str) -> LinkToken | None:
            seen = super().get(token_hash)
            if token_hash == old_hash and seen is not None and seen.state == TokenState.ACTIVE:
                resend_link(world.connections, world.registry, world.mailer, BOB, SPACE, created.connectionId)
            return seen

    racing = Racing()
    racing.stored = world.tokens.stored
    # When the decision through the old link is written
    with pytest.raises(VerificationTokenGone) as refused:
        approve = DecisionRequest(token=email.token, decision="approve")
        decide(
            world.connections,
            racing,
            world.workflow,
            world.proofs,
            world.mailer,
            approve,
            csrf=None,
            form=False,
        )
    # Then it is refused as replaced, and the request waits for a decision through the new link
    assert refused.value.reason == "replaced"
    assert world.connections.get(created.connectionId).status == S.PENDING_APPROVAL
    assert world.workflow.succeeded == []
    assert _decide(world, world.mailer.emails[-1].token).status == S.APPROVED
