"""The workflow steps' logic over the fakes: notify the administrator, verify the approved request,
attach its roles, record how it ended."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import pytest
from pydantic import SecretStr

from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import Connection, StatusChange, request_digest
from account_connections.domain.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionNotPending,
    DependencyUnavailable,
    VerificationFailed,
    VerificationTokenGone,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.approval import WINDOW_CLOSED, view_page
from account_connections.logic.connections import cancel_connection
from account_connections.logic.registry import delete_approver
from account_connections.steps.attach_roles import attach_roles
from account_connections.steps.contract import (
    AttachRolesInput,
    Decision,
    NotifyApproverInput,
    RecordOutcomeInput,
    StepError,
    VerifyConnectionInput,
)
from account_connections.steps.notify_approver import notify_approver
from account_connections.steps.record_outcome import NO_DECISION, record_outcome
from account_connections.steps.verify_connection import verify_connection
from tests.builders import ACCOUNT, ADMIN_EMAIL, BASE_URL, RUNNER, SPACE, connection
from tests.fakes import FakeMailer, InMemoryConnections
from tests.unit.world import ALICE, BUILD_ROLE, OSCAR, UNTRUSTED_ROLE, World

S: TypeAlias = ConnectionStatus


def _notify(world: World, connection_id: str, task_token: str = "task-1") -> None:
    notify_approver(world.connections, world.registry, world.mailer, world.workflow, NotifyApproverInput(
        connectionId=connection_id, verifyBaseUrl=BASE_URL, taskToken=SecretStr(task_token),
    ))  # fmt: skip


# ---- notify the administrator ------------------------------------------------------------------


def test_notify_sends_the_link_and_answers_when(world: World) -> None:
    created = world.request()
    request = NotifyApproverInput(
        connectionId=created.connectionId, verifyBaseUrl=BASE_URL, taskToken=SecretStr("task-1")
    )
    output = notify_approver(world.connections, world.registry, world.mailer, world.workflow, request)
    assert output.connectionId == created.connectionId and output.sentAt
    assert [email.account_id for email in world.mailer.emails] == [ACCOUNT]


def test_notify_for_a_request_cancelled_before_ends_cleanly_without_email(world: World) -> None:
    created = world.request()
    cancel_connection(world.connections, world.workflow, ALICE, SPACE, created.connectionId)
    with pytest.raises(ConnectionNotPending):
        _notify(world, created.connectionId)
    assert world.mailer.emails == [] and world.connections.secrets(created.connectionId).task_token is None


def test_notify_for_a_request_cancelled_meanwhile_stores_and_sends_nothing(world: World) -> None:
    # Given the request is cancelled between the step's read and its write
    created = world.request()

    class Racing(InMemoryConnections):
        def read(self, connection_id: str) -> tuple[Connection, Any]:
            seen = super().read(connection_id)
            if seen[0].status == S.PENDING_APPROVAL:
                self.transition(seen[0], StatusChange(S.CANCELLED, "alice"))
            return seen

    racing = Racing(tokens=world.tokens)
    racing.records, racing.live = world.connections.records, world.connections.live
    world.connections = racing
    with pytest.raises(ConnectionNotPending):
        _notify(world, created.connectionId)
    assert world.mailer.emails == []
    assert [t.kind for t in world.tokens.stored.values()] == ["CONNECTION_TOKEN"]


def test_notify_without_an_administrator_fails_the_step(world: World) -> None:
    created = world.request()
    delete_approver(world.registry, world.subscriptions, world.connections, OSCAR, ACCOUNT)
    with pytest.raises(ApproverNotRegistered):
        _notify(world, created.connectionId)
    assert world.mailer.emails == []


def test_a_notify_retried_after_sns_failed_sends_a_link_that_works(world: World) -> None:
    # Given SNS is throttled on the first attempt
    created = world.request()
    world.mailer.unavailable = True
    with pytest.raises(DependencyUnavailable):
        _notify(world, created.connectionId)
    # When the workflow retries the step
    world.mailer.unavailable = False
    _notify(world, created.connectionId)
    # Then the one email sent carries a link that opens the page
    [email] = world.mailer.emails
    assert (
        view_page(world.connections, world.tokens, email.token).connection.connectionId
        == created.connectionId
    )


# ---- verify the approved request ---------------------------------------------------------------


def _decision(of: Connection, digest: str | None = None) -> VerifyConnectionInput:
    decided = Decision(
        decidedBy=ADMIN_EMAIL, decidedAt=isoformat(utcnow()), requestDigest=digest or request_digest(of)
    )
    return VerifyConnectionInput(connectionId=of.connectionId, decision=decided)


def test_an_approved_request_as_shown_that_holds_its_account_is_verified() -> None:
    approved = connection(S.APPROVED, version=2)
    assert verify_connection(InMemoryConnections(approved), _decision(approved)).verified is True
    verified = connection(S.VERIFIED, version=3)  # a retried step
    assert verify_connection(InMemoryConnections(verified), _decision(verified, "other")).verified is True


def test_a_request_changed_after_the_administrator_saw_it_is_not_verified() -> None:
    approved = connection(S.APPROVED, version=2)
    with pytest.raises(VerificationFailed) as refused:
        verify_connection(InMemoryConnections(approved), _decision(approved, "0" * 64))
    assert "changed after the administrator saw it" in refused.value.detail


def test_a_request_whose_account_is_live_elsewhere_is_not_verified() -> None:
    approved = connection(S.APPROVED, version=2)
    store = InMemoryConnections()
    store.seed(approved, live=False)
    store.live[(SPACE, ACCOUNT)] = "another-connection"
    with pytest.raises(VerificationFailed) as refused:
        verify_connection(store, _decision(approved))
    assert "another live connection" in refused.value.detail


@pytest.mark.parametrize("status", [S.PENDING_APPROVAL, S.REJECTED, S.CANCELLED, S.FAILED])
def test_a_request_that_is_not_approved_is_not_verified(status: S) -> None:
    other = connection(status)
    with pytest.raises(VerificationFailed) as refused:
        verify_connection(InMemoryConnections(other), _decision(other))
    assert f"the request is {status}" in refused.value.detail


# ---- attach the roles --------------------------------------------------------------------------


def test_each_role_is_checked_and_recorded_attached_or_with_why(world: World) -> None:
    approved = connection(S.APPROVED, version=2, role_arns=[BUILD_ROLE, UNTRUSTED_ROLE])
    world.connections.seed(approved)
    output = attach_roles(
        world.connections, world.verifier, RUNNER, AttachRolesInput(connectionId=approved.connectionId)
    )
    assert output.attached == ["BuildRole"]
    [rejected] = output.rejected
    assert (rejected.roleName, rejected.roleArn) == ("UntrustedRole", UNTRUSTED_ROLE)
    assert "does not allow sts:AssumeRole" in rejected.reason
    _, roles, _ = world.connections.detail(approved.connectionId)
    assert [(r.roleName, r.attached) for r in roles] == [("BuildRole", True), ("UntrustedRole", False)]
    # The connection keeps its status: a refused role does not fail it
    assert world.connections.get(approved.connectionId).status == S.APPROVED


def test_a_retried_attach_checks_nothing_twice(world: World) -> None:
    approved = connection(S.APPROVED, version=2, role_arns=[BUILD_ROLE, UNTRUSTED_ROLE])
    world.connections.seed(approved)
    step = AttachRolesInput(connectionId=approved.connectionId)
    first = attach_roles(world.connections, world.verifier, RUNNER, step)
    events = len(world.connections.events)
    again = attach_roles(world.connections, world.verifier, RUNNER, step)
    assert again == first and len(world.connections.events) == events
    assert world.verifier.opened == [("aws", ACCOUNT)]


def test_a_throttled_check_records_nothing_so_the_retry_checks_again(world: World) -> None:
    approved = connection(S.APPROVED, version=2, role_arns=[BUILD_ROLE])
    world.connections.seed(approved)
    world.verifier.transient = True
    step = AttachRolesInput(connectionId=approved.connectionId)
    with pytest.raises(DependencyUnavailable):
        attach_roles(world.connections, world.verifier, RUNNER, step)
    assert world.connections.detail(approved.connectionId)[1] == []
    world.verifier.transient = False
    assert attach_roles(world.connections, world.verifier, RUNNER, step).attached == ["BuildRole"]


def test_no_roles_for_a_request_that_is_no_longer_approved(world: World) -> None:
    cancelled = connection(S.FAILED, role_arns=[BUILD_ROLE])
    world.connections.seed(cancelled)
    with pytest.raises(VerificationFailed):
        attach_roles(
            world.connections, world.verifier, RUNNER, AttachRolesInput(connectionId=cancelled.connectionId)
        )
    assert world.verifier.opened == []


# ---- record the outcome ------------------------------------------------------------------------


def _outcome(store: InMemoryConnections, of: Connection, outcome: str, **fields: Any) -> Connection:
    record_outcome(
        store,
        FakeMailer(),
        RecordOutcomeInput(connectionId=of.connectionId, outcome=outcome, **fields),  # type: ignore[arg-type]
    )
    return store.get(of.connectionId)


def test_an_approved_request_becomes_verified_once_and_the_requester_is_told() -> None:
    approved = connection(S.APPROVED, version=2)
    store = InMemoryConnections(approved)
    notice = record_outcome(store, FakeMailer(), RecordOutcomeInput(
        connectionId=approved.connectionId, outcome="VERIFIED", paidTiersAuthorized=True,
    ))  # fmt: skip
    assert (notice.status, notice.paidTiersAuthorized, notice.requestedBy) == (S.VERIFIED, True, "alice")
    assert notice.verifiedAt and store.get(approved.connectionId).verifiedAt == notice.verifiedAt
    # A retried step changes nothing
    again = record_outcome(
        store, FakeMailer(), RecordOutcomeInput(connectionId=approved.connectionId, outcome="VERIFIED")
    )
    assert again.verifiedAt == notice.verifiedAt and store.transitions == [S.VERIFIED]
    assert store.live_holder(SPACE, ACCOUNT) == approved.connectionId


def test_verified_is_not_recorded_for_a_request_that_is_not_approved() -> None:
    pending = connection()
    store = InMemoryConnections(pending)
    with pytest.raises(VerificationFailed):
        _outcome(store, pending, "VERIFIED")
    assert store.transitions == []


def test_a_request_nobody_decided_expires_and_frees_the_account() -> None:
    pending = connection()
    store = InMemoryConnections(pending)
    ended = _outcome(store, pending, "EXPIRED")
    assert (ended.status, ended.reason) == (S.EXPIRED, NO_DECISION)
    assert store.live_holder(SPACE, ACCOUNT) is None


def test_an_approval_that_lost_the_race_to_the_timeout_fails() -> None:
    approved = connection(S.APPROVED, version=2)
    store = InMemoryConnections(approved)
    ended = _outcome(store, approved, "EXPIRED")
    assert (ended.status, ended.reason) == (S.FAILED, WINDOW_CLOSED)


def test_a_workflow_error_fails_the_request_with_the_lambda_errors_message() -> None:
    approved = connection(S.APPROVED, version=2)
    store = InMemoryConnections(approved)
    cause = json.dumps({"errorMessage": "the request changed after the administrator saw it"})
    ended = _outcome(store, approved, "FAILED", error=StepError(Error="VerificationFailed", Cause=cause))
    assert (ended.status, ended.reason) == (
        S.FAILED,
        "VerificationFailed: the request changed after the administrator saw it",
    )
    assert store.live_holder(SPACE, ACCOUNT) is None


def test_a_failure_leaves_another_connections_lock_alone() -> None:
    pending = connection()
    store = InMemoryConnections()
    store.seed(pending, live=False)
    store.live[(SPACE, ACCOUNT)] = "another-connection"
    assert _outcome(store, pending, "FAILED").status == S.FAILED
    assert store.live_holder(SPACE, ACCOUNT) == "another-connection"


@pytest.mark.parametrize(("status", "outcome"), [
    (S.REJECTED, "REJECTED"), (S.CANCELLED, "FAILED"), (S.CANCELLED, "EXPIRED"), (S.VERIFIED, "FAILED"),
])  # fmt: skip
def test_a_request_that_already_ended_keeps_its_end(status: S, outcome: str) -> None:
    ended = connection(status)
    store = InMemoryConnections(ended)
    notice = record_outcome(
        store,
        FakeMailer(),
        RecordOutcomeInput(connectionId=ended.connectionId, outcome=outcome),  # type: ignore[arg-type]
    )
    assert notice.status == status and store.transitions == []


def test_an_outcome_that_loses_a_race_reads_again_and_decides_anew() -> None:
    # Given the administrator approves just as the timeout is recorded
    pending = connection()

    class Racing(InMemoryConnections):
        raced = False

        def transition(
            self, read: Connection, change: StatusChange, *, release_live: bool = True
        ) -> Connection:
            if not self.raced:
                self.raced = True
                super().transition(read, StatusChange(S.APPROVED, ADMIN_EMAIL))
            return super().transition(read, change, release_live=release_live)

    store = Racing(pending)
    # Then the expiry, read again, fails the approval the workflow no longer waits for
    ended = _outcome(store, pending, "EXPIRED")
    assert (ended.status, ended.reason) == (S.FAILED, WINDOW_CLOSED)
    assert store.transitions == [S.APPROVED, S.FAILED]


def test_an_outcome_that_keeps_losing_races_gives_up() -> None:
    pending = connection()

    class Contended(InMemoryConnections):
        def transition(
            self, read: Connection, change: StatusChange, *, release_live: bool = True
        ) -> Connection:
            raise ConnectionAlreadyDecided("lost")

    with pytest.raises(ConnectionAlreadyDecided):
        _outcome(Contended(pending), pending, "EXPIRED")


def test_an_expired_link_cannot_be_opened_once_the_request_expired(world: World) -> None:
    created, email = world.waiting()
    stored = world.connections.get(created.connectionId)
    _outcome(world.connections, stored, "EXPIRED")
    with pytest.raises(VerificationTokenGone) as gone:
        view_page(world.connections, world.tokens, email.token)
    assert gone.value.reason == "expired"
