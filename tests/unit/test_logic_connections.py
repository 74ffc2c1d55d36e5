"""Requesters' use cases over the fakes: create, list, get and cancel a connection request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeAlias

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.access import Principal
from account_connections.domain.audit import EventType
from account_connections.domain.connection import (
    Connection,
    ConnectionSecrets,
    CreateConnectionRequest,
    CreateConnectionResponse,
    RoleAttachment,
    StatusChange,
)
from account_connections.domain.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionAlreadyLive,
    ConnectionNotFound,
    InvalidRequest,
    NotAuthorized,
    RegistryConflict,
    TaskAlreadyClosed,
    VerificationTokenGone,
    WorkflowUnavailable,
)
from account_connections.domain.policy import ApprovalPolicy, timers
from account_connections.domain.registry import Approver
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import LinkToken, TokenKind, TokenState, hash_token
from account_connections.logic import backoff
from account_connections.logic.approval import view_page
from account_connections.logic.connections import (
    REPLAY_ATTEMPTS,
    WORKFLOW_NOT_STARTED,
    cancel_connection,
    create_connection,
    get_connection,
    list_connections,
    replay_create,
)
from account_connections.logic.links import resend_link
from tests.builders import (
    ACCOUNT,
    ADMIN_EMAIL,
    BASE_URL,
    OTHER_SPACE,
    SPACE,
    UNREGISTERED_ACCOUNT,
    LinkClock,
    connection,
    history_events,
    role_arn,
)
from tests.fakes import FakeWorkflow, InMemoryConnections
from tests.unit.world import ALICE, BOB, BUILD_ROLE, STAMP, TIMEOUT, World

S: TypeAlias = ConnectionStatus


# ---- create ------------------------------------------------------------------------------------


def test_a_request_is_stored_pending_with_its_token_and_its_workflow_started(world: World) -> None:
    # When alice asks to connect the account
    created = world.request(role_arns=[BUILD_ROLE])
    # Then she gets the pending request and its connection token, and the workflow starts for it
    assert (created.status, created.requestedBy, created.roleArns) == (
        S.PENDING_APPROVAL,
        "alice",
        [BUILD_ROLE],
    )
    expires = datetime.fromisoformat(created.expiresAt) - datetime.fromisoformat(created.createdAt)
    assert expires == timedelta(seconds=TIMEOUT)
    # The plain policy's one timer: the approval window
    window = {"number": 1, "seconds": TIMEOUT, "remind": False, "escalate": False, "expire": True}
    assert world.workflow.starts == [(created.connectionId, {
        "connectionId": created.connectionId, "approvalTimeoutSeconds": TIMEOUT, "verifyBaseUrl": BASE_URL,
        "correlationId": "corr-1", "requestedAt": created.createdAt, "schedule": [window],
        "timers": {"current": window, "next": 1,
                   "fired": {"number": 0, "seconds": 0, "remind": False, "escalate": False, "expire": False}},
    })]  # fmt: skip
    stored = world.connections.get(created.connectionId)
    assert stored.model_dump() == {k: v for k, v in created.model_dump().items() if k != "connectionToken"}
    # The table keeps only the token's hash, with the request as it will be shown
    token = world.tokens.get(hash_token(created.connectionToken))
    assert token is not None and token.kind == TokenKind.CONNECTION_TOKEN and token.quorum == 1
    assert token.request is not None and token.request.displayName == "Production"
    assert created.connectionToken not in str(world.tokens.stored) + str(world.connections.events)
    assert [event.type for event in world.connections.events] == [EventType.REQUESTED]


def test_no_administrator_no_request(world: World) -> None:
    with pytest.raises(ApproverNotRegistered) as refused:
        world.request(account_id=UNREGISTERED_ACCOUNT)
    assert status_of(refused.value) == 422
    assert "ask an operator" in refused.value.detail
    assert world.connections.list_space(SPACE, None, 10, None).items == []
    assert world.workflow.starts == []


def test_a_create_copies_the_registered_policy_it_learns_from_its_refused_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an account whose policy is not the plain one
    policy = {"approvers": ["ops1@example.com", "ops2@example.com"], "quorum": 2,
              "remindAfterSeconds": [3600], "escalateAfterSeconds": 7200, "escalateTo": ["sec@example.com"],
              "approverPrincipals": ["arn:aws:iam::111122223333:role/Approver"]}  # fmt: skip
    world.registry.put_approver(Approver(accountId=ACCOUNT, **policy, **STAMP))
    writes: list[ApprovalPolicy] = []
    create = world.connections.create

    def counted(connection: Connection, token: LinkToken, *, policy: ApprovalPolicy) -> Connection:
        writes.append(policy)
        return create(connection, token, policy=policy)

    monkeypatch.setattr(world.connections, "create", counted)
    # When alice asks: the first write assumed the plain policy and was told the registered one
    created = world.request()
    assert [p.quorum for p in writes] == [1, 2]
    # Then the request, its connection token and its workflow's timers are the registered policy's
    assert created.quorum == 2 and world.connections.get(created.connectionId).quorum == 2
    token = world.tokens.get(hash_token(created.connectionToken))
    assert token is not None and (token.quorum, token.approverPrincipals) == (2, policy["approverPrincipals"])
    registered = world.registry.get_approver(ACCOUNT)
    assert registered is not None
    [(_, started)] = world.workflow.starts
    assert started["schedule"] == [timer.model_dump() for timer in timers(registered.policy(), TIMEOUT)]
    assert [event.type for event in world.connections.events] == [EventType.REQUESTED]


@pytest.mark.parametrize(
    ("who", "detail"),
    [
        ("carol", "this operation needs the SPACE_ADMIN or POWER_USER role in space demo"),
        ("mallory", "you are not a member of space demo"),
    ],
)
def test_a_create_by_a_caller_who_may_not_change_the_space_is_refused_and_writes_nothing(
    world: World, who: str, detail: str
) -> None:
    with pytest.raises(NotAuthorized) as refused:
        create_connection(
            world.connections, world.workflow, Principal(sub=who, groups=frozenset()), SPACE,
            CreateConnectionRequest(accountId=ACCOUNT, displayName="Production"),
            approval_timeout_seconds=TIMEOUT, verify_base_url=BASE_URL, correlation_id="corr-1",
        )  # fmt: skip
    assert (status_of(refused.value), refused.value.detail) == (403, detail)
    assert world.connections.records == {} and world.tokens.stored == {} and world.connections.live == {}
    assert world.connections.events == [] and world.workflow.starts == []


def test_a_policy_that_changes_at_every_write_is_a_conflict_and_nothing_is_stored(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an operator who changes the account's quorum just before each write of the request
    create = world.connections.create

    def raced(connection: Connection, token: LinkToken, *, policy: ApprovalPolicy) -> Connection:
        registered = world.registry.get_approver(ACCOUNT)
        assert registered is not None
        changed = {"quorum": registered.quorum % 2 + 1, "approvers": ["a@x.example", "b@x.example"]}
        world.registry.put_approver(registered.model_copy(update=changed))
        return create(connection, token, policy=policy)

    monkeypatch.setattr(world.connections, "create", raced)
    with pytest.raises(RegistryConflict) as refused:
        world.request()
    assert status_of(refused.value) == 409
    assert world.connections.records == {} and world.workflow.starts == []


def test_a_second_live_request_for_the_account_is_a_conflict_in_that_space_only(world: World) -> None:
    first = world.request()
    with pytest.raises(ConnectionAlreadyLive) as refused:
        world.request(display_name="Again")
    assert status_of(refused.value) == 409
    assert [c.connectionId for c in world.connections.list_space(SPACE, None, 10, None).items] == [
        first.connectionId
    ]
    assert len(world.workflow.starts) == 1
    # Another space may connect the same account
    assert world.request(space_id=OTHER_SPACE).status == S.PENDING_APPROVAL


def test_a_workflow_that_does_not_start_fails_the_request_and_frees_the_account(world: World) -> None:
    # Given Step Functions refuses to start executions
    world.workflow.start_error = RuntimeError("throttled")
    # When alice asks
    with pytest.raises(WorkflowUnavailable) as refused:
        world.request()
    # Then she is told to try later, and the request is recorded FAILED with why
    assert status_of(refused.value) == 503
    [failed] = world.connections.list_space(SPACE, None, 10, None).items
    assert (failed.status, failed.reason) == (S.FAILED, WORKFLOW_NOT_STARTED)
    assert world.connections.transitions == [S.FAILED]
    # And once the workflow is back, the account can be asked for again
    world.workflow.start_error = None
    assert world.request().status == S.PENDING_APPROVAL


@pytest.mark.parametrize(
    ("role_arns", "field", "message"),
    [
        ([BUILD_ROLE, role_arn("Deploy", "210987654321")], "roleArns[1]", "must be a role in account"),
        ([BUILD_ROLE, "arn:aws:iam::111122223333:role/other/BuildRole"], "roleArns[1]", "listed twice"),
    ],
)
def test_roles_of_another_account_or_twice_are_refused(
    world: World, role_arns: list[str], field: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        world.request(role_arns=role_arns)
    assert [error["field"] for error in refused.value.errors] == [field]
    assert message in refused.value.errors[0]["message"]
    assert world.connections.records == {} and world.workflow.starts == []


# ---- list and get ------------------------------------------------------------------------------


def test_a_space_lists_its_requests_newest_first_page_by_page() -> None:
    old = connection(S.REJECTED, created_ago=timedelta(days=2))
    new = connection(created_ago=timedelta(hours=1))
    elsewhere = connection(space_id=OTHER_SPACE)
    store = InMemoryConnections(old, new, elsewhere)
    first = list_connections(store, SPACE, None, 1, None)
    assert [c.connectionId for c in first.items] == [new.connectionId] and first.nextToken
    second = list_connections(store, SPACE, None, 1, first.nextToken)
    assert [c.connectionId for c in second.items] == [old.connectionId] and second.nextToken is None
    rejected = list_connections(store, SPACE, S.REJECTED, 10, None)
    assert [c.connectionId for c in rejected.items] == [old.connectionId]


def test_a_connection_is_read_with_its_roles_and_history(world: World) -> None:
    created = world.request(role_arns=[BUILD_ROLE])
    world.notify(created.connectionId)
    detail = get_connection(world.connections, SPACE, created.connectionId)
    assert detail.connectionId == created.connectionId and detail.roles == []
    assert [event.type for event in detail.history] == [EventType.REQUESTED, EventType.LINK_SENT]
    assert "connectionToken" not in detail.model_dump()


def test_the_history_comes_in_pages_oldest_first_with_the_connection_on_each(world: World) -> None:
    # Given a request with 150 events in its history, a role recorded
    created = world.request()
    stored = world.connections.get(created.connectionId)
    world.connections.events.extend(history_events(stored, 149))
    every = world.connections.detail(created.connectionId)[2]
    # When it is read Then the first 100 events come (oldest first) with a token for the rest
    first = get_connection(world.connections, SPACE, created.connectionId)
    assert first.history == every[:100] and first.historyNextToken
    assert first.history[0].type == EventType.REQUESTED
    second = get_connection(world.connections, SPACE, created.connectionId,
                            history_next_token=first.historyNextToken)  # fmt: skip
    assert second.history == every[100:] and second.historyNextToken is None
    assert second.model_dump(exclude={"history", "historyNextToken"}) == first.model_dump(
        exclude={"history", "historyNextToken"}
    )
    # A smaller page, followed to the end, gives every event once
    pages, token = [], None
    while True:
        page = get_connection(world.connections, SPACE, created.connectionId, history_limit=7,
                              history_next_token=token)  # fmt: skip
        pages.extend(page.history)
        token = page.historyNextToken
        if token is None:
            break
    assert pages == every


def test_a_history_token_of_another_query_is_refused(world: World) -> None:
    created, other = world.request(), world.request(space_id=OTHER_SPACE)
    for one in (created, other):
        world.connections.events.extend(history_events(world.connections.get(one.connectionId), 3))
    token = get_connection(
        world.connections, OTHER_SPACE, other.connectionId, history_limit=1
    ).historyNextToken
    listed = list_connections(world.connections, SPACE, None, 1, None)
    assert token
    for foreign in (token, "not-a-token", listed.nextToken or "x"):
        with pytest.raises(InvalidRequest) as refused:
            get_connection(world.connections, SPACE, created.connectionId, history_next_token=foreign)
        assert refused.value.errors[0]["field"] == "historyNextToken"


@pytest.mark.parametrize("space_id", [OTHER_SPACE, "nowhere"])
def test_another_spaces_connection_is_not_found(world: World, space_id: str) -> None:
    created = world.request()
    with pytest.raises(ConnectionNotFound) as refused:
        get_connection(world.connections, space_id, created.connectionId)
    with pytest.raises(ConnectionNotFound) as same:
        get_connection(world.connections, SPACE, "00000000-0000-0000-0000-000000000000")
    # Exactly as a missing one: nothing tells that it exists elsewhere
    assert type(refused.value) is type(same.value) and status_of(refused.value) == 404


# ---- cancel ------------------------------------------------------------------------------------


def test_cancelling_a_waiting_request_ends_its_workflow_and_frees_the_account(world: World) -> None:
    # Given a request whose workflow waits for the decision
    created, _ = world.waiting()
    # When alice cancels it
    cancelled = cancel_connection(world.connections, world.workflow, ALICE, SPACE, created.connectionId)
    # Then it is CANCELLED, once, and the waiting task fails as "Cancelled"
    assert (cancelled.status, cancelled.reason) == (S.CANCELLED, "cancelled by alice")
    assert world.connections.get(created.connectionId).status == S.CANCELLED
    assert world.connections.transitions == [S.CANCELLED]
    assert world.workflow.failed == [("task-1", "Cancelled", "cancelled by alice")]
    assert world.connections.live_holder(SPACE, ACCOUNT) is None


def test_cancelling_before_the_workflow_waits_answers_no_task() -> None:
    pending = connection()
    workflow = FakeWorkflow()
    cancelled = cancel_connection(InMemoryConnections(pending), workflow, ALICE, SPACE, pending.connectionId)
    assert cancelled.status == S.CANCELLED
    assert workflow.failed == []


def test_cancelling_answers_the_task_the_notify_step_stored_meanwhile() -> None:
    # Given the notify step stores its task token between the cancel's read and its write
    pending = connection()

    class Racing(InMemoryConnections):
        def transition(
            self, read: Connection, change: StatusChange, *, release_live: bool = True
        ) -> Connection:
            record = self.records[read.connectionId]
            record.secrets = replace(record.secrets, task_token="late-task")
            return super().transition(read, change, release_live=release_live)

    workflow = FakeWorkflow()
    cancel_connection(Racing(pending), workflow, ALICE, SPACE, pending.connectionId)
    # Then the cancel still ends that workflow
    assert workflow.failed == [("late-task", "Cancelled", "cancelled by alice")]


def test_a_workflow_already_closed_does_not_undo_the_cancel(world: World) -> None:
    created, _ = world.waiting()
    world.workflow.close("task-1")
    cancelled = cancel_connection(world.connections, world.workflow, ALICE, SPACE, created.connectionId)
    assert cancelled.status == S.CANCELLED
    with pytest.raises(TaskAlreadyClosed):  # nothing was answered
        world.workflow.fail("task-1", "x", "y")


def test_cancelling_a_verified_connection_disconnects_it() -> None:
    verified = connection(S.VERIFIED, version=3)
    roles = [RoleAttachment(roleArn=BUILD_ROLE, roleName="BuildRole", attached=True, checkedAt="t")]
    store = InMemoryConnections()
    store.seed(verified, roles=roles)
    workflow = FakeWorkflow()
    gone = cancel_connection(store, workflow, ALICE, SPACE, verified.connectionId)
    assert (gone.status, gone.version) == (S.DISCONNECTED, 4) and gone.disconnectedAt
    assert store.get(verified.connectionId).status == S.DISCONNECTED
    assert store.live_holder(SPACE, ACCOUNT) is None
    assert workflow.failed == []
    [event] = store.events
    assert (event.fromStatus, event.toStatus, event.actor) == (S.VERIFIED, S.DISCONNECTED, "alice")


@pytest.mark.parametrize("status", [S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED, S.FAILED, S.DISCONNECTED])
def test_other_statuses_can_be_neither_cancelled_nor_disconnected(status: S) -> None:
    decided = connection(status)
    store = InMemoryConnections(decided)
    with pytest.raises(ConnectionAlreadyDecided) as refused:
        cancel_connection(store, FakeWorkflow(), ALICE, SPACE, decided.connectionId)
    assert status_of(refused.value) == 409
    assert store.get(decided.connectionId).status == status and store.events == []


def test_another_spaces_connection_cannot_be_cancelled(world: World) -> None:
    created, _ = world.waiting(space_id=OTHER_SPACE)
    with pytest.raises(ConnectionNotFound):
        cancel_connection(world.connections, world.workflow, ALICE, SPACE, created.connectionId)
    assert world.connections.get(created.connectionId).status == S.PENDING_APPROVAL
    assert world.workflow.failed == []


def test_a_cancel_that_loses_a_race_is_a_conflict() -> None:
    # Given the request is decided between the cancel's read and its write
    pending = connection()

    class Stale(InMemoryConnections):
        def read(self, connection_id: str) -> tuple[Connection, ConnectionSecrets]:
            seen = super().read(connection_id)
            if seen[0].status == S.PENDING_APPROVAL:
                self.transition(seen[0], StatusChange(S.APPROVED, ADMIN_EMAIL))
            return seen

    store = Stale(pending)
    with pytest.raises(ConnectionAlreadyDecided) as refused:
        cancel_connection(store, FakeWorkflow(), ALICE, SPACE, pending.connectionId)
    assert status_of(refused.value) == 409
    assert store.get(pending.connectionId).status == S.APPROVED


# ---- a create replayed with its Idempotency-Key -------------------------------------------------


def _stored(created: CreateConnectionResponse) -> CreateConnectionResponse:
    """The response as the idempotency record keeps it: without its connection token."""
    return created.model_copy(update={"connectionToken": ""})


def test_a_replay_gets_a_new_connection_token_that_replaces_the_first(world: World) -> None:
    created, _ = world.waiting()
    # When the create is replayed (the caller lost the first response)
    again = replay_create(world.connections, world.tokens, world.registry, ALICE, _stored(created))
    # Then it answers the same connection with a new token, and the first one is gone ("replaced")
    assert again.model_copy(update={"connectionToken": ""}) == _stored(created)
    assert again.connectionToken and again.connectionToken != created.connectionToken
    with pytest.raises(VerificationTokenGone) as gone:
        view_page(world.connections, world.tokens, created.connectionToken)
    assert gone.value.reason == "replaced"
    first = world.tokens.get(hash_token(created.connectionToken))
    assert first is not None and (first.state, first.taskToken, first.csrfSecret) == (
        TokenState.REPLACED,
        None,
        None,
    )
    # The new one opens the page with everything a decision needs (the workflow's task token too)
    view = view_page(world.connections, world.tokens, again.connectionToken)
    assert view.csrf and view.proofNeeded
    held = world.tokens.get(hash_token(again.connectionToken))
    assert held is not None and (held.kind, held.taskToken, held.approverEmails) == (
        TokenKind.CONNECTION_TOKEN, "task-1", [ADMIN_EMAIL],
    )  # fmt: skip
    assert world.connections.secrets(created.connectionId).connection_token_hash == hash_token(
        again.connectionToken
    )
    assert [e.type for e in world.connections.events][-1] == EventType.CONNECTION_TOKEN_REPLACED
    assert world.connections.events[-1].actor == "alice"


@pytest.mark.parametrize("status", [S.CANCELLED, S.APPROVED])
def test_a_replay_after_the_request_left_pending_has_no_token_and_changes_nothing(
    world: World, status: S
) -> None:
    created, _ = world.waiting()
    stored = world.connections.get(created.connectionId)
    world.connections.transition(stored, StatusChange(status, "x"), release_live=False)
    events, tokens = list(world.connections.events), dict(world.tokens.stored)
    again = replay_create(world.connections, world.tokens, world.registry, ALICE, _stored(created))
    assert again == _stored(created)  # connectionToken empty
    assert (world.connections.events, world.tokens.stored) == (events, tokens)


class _Racing(InMemoryConnections):
    """A store where ``race(connection_id)`` runs before each of the first ``times`` swaps of the
    connection token: a link issued between the replay's read and its write."""

    def __init__(self, world: World, race: Callable[[str], object], times: int) -> None:
        super().__init__(tokens=world.tokens, registry=world.registry)
        self.race, self.times = race, times

    def rotate_connection_token(
        self, connection: Connection, token: LinkToken, *, secrets: ConnectionSecrets, actor: str
    ) -> None:
        if self.times:
            self.times -= 1
            self.race(connection.connectionId)
        super().rotate_connection_token(connection, token, secrets=secrets, actor=actor)


def test_a_replay_that_loses_a_race_with_the_first_link_reads_again_and_carries_its_copies(
    pauses: list[float],
) -> None:
    # Given a create replayed while the workflow sends its first link
    world = World.seeded()
    world.connections = _Racing(world, world.notify, times=1)
    created = world.request()
    again = replay_create(world.connections, world.tokens, world.registry, ALICE, _stored(created))
    # Then the new connection token was made after the link, with the waiting workflow's copies
    held = world.tokens.get(hash_token(again.connectionToken))
    link = world.tokens.get(hash_token(world.mailer.emails[-1].token))
    assert held is not None and link is not None
    assert (held.state, held.taskToken, held.csrfSecret) == (TokenState.ACTIVE, "task-1", link.csrfSecret)
    assert view_page(world.connections, world.tokens, again.connectionToken).csrf
    # And it paused before it read again
    assert len(pauses) == 1 and 0 <= pauses[0] <= backoff.bound(1)


@pytest.mark.parametrize("pending", [True, False])
def test_a_replay_by_a_requester_removed_from_the_space_is_refused_and_writes_nothing(
    world: World, pending: bool
) -> None:
    created, _ = world.waiting()
    if not pending:
        cancel_connection(world.connections, world.workflow, ALICE, SPACE, created.connectionId)
    assert world.registry.delete_member(SPACE, "alice")
    tokens, events = dict(world.tokens.stored), list(world.connections.events)
    with pytest.raises(NotAuthorized) as refused:
        replay_create(world.connections, world.tokens, world.registry, ALICE, _stored(created))
    assert (status_of(refused.value), refused.value.detail) == (403, "you are not a member of space demo")
    assert world.tokens.stored == tokens and world.connections.events == events


def test_a_replay_that_keeps_losing_is_a_conflict_and_leaves_the_first_token(link_clock: LinkClock) -> None:
    world = World.seeded(link_clock)

    def resend(connection_id: str) -> None:
        world.clock.advance()  # resends are rate-limited: each a minute after the last link
        resend_link(world.connections, world.registry, world.mailer, BOB, SPACE, connection_id)

    world.connections = _Racing(world, resend, times=REPLAY_ATTEMPTS)
    created, _ = world.waiting()
    with pytest.raises(ConnectionAlreadyDecided) as lost:
        replay_create(world.connections, world.tokens, world.registry, ALICE, _stored(created))
    assert status_of(lost.value) == 409
    assert view_page(world.connections, world.tokens, created.connectionToken).csrf
