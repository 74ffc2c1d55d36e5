"""The stores' contract: the same scenarios against the in-memory fakes (``tests.fakes``) and the
DynamoDB adapters (moto, the table from template.yaml), so that a logic test over the fakes
means what it would mean over the table: the same refusals, and nothing changed by a refused
write (a concurrent change, the live lock, a token consumed once, a retired link, a missing role)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import boto3
import pytest
from moto import mock_aws

from account_connections.adapters.dynamodb.keys import live_key
from account_connections.adapters.dynamodb.table import serialize
from account_connections.domain.audit import AuditEvent, EventType, registry_event
from account_connections.domain.chain import ChainHead, event_hash
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import (
    Approval,
    Connection,
    ConnectionSecrets,
    RoleAttachment,
    ShownRequest,
    StatusChange,
    connection_event,
)
from account_connections.domain.errors import (
    AccountProofRefused,
    ApprovalsMoved,
    ApproverAlreadyDecided,
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionAlreadyLive,
    ConnectionNotFound,
    DomainError,
    InvalidRequest,
    NotAuthorized,
    RegistryConflict,
    SpaceNotFound,
    TooManyLinks,
    TooManyRoles,
)
from account_connections.domain.limits import LinkLimit
from account_connections.domain.policy import PLAIN, ApprovalPolicy, RegisteredPolicyDiffers, copied_at_create
from account_connections.domain.registry import AddressSubscription, Approver, Member, Space, SpaceRole
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import LinkToken, TokenKind, TokenState
from account_connections.ports import (
    AuditLog,
    ConnectionQuery,
    ConnectionStore,
    EventQuery,
    LinkChange,
    RegistryStore,
    TokenStore,
    Verdict,
)
from tests.builders import (
    ACCOUNT,
    ADMIN_EMAIL,
    BASE_URL,
    OTHER_SPACE,
    SPACE,
    UNREGISTERED_ACCOUNT,
    recorded_role,
    role_arn,
    token_for,
)
from tests.builders import connection as a_connection
from tests.fakes import InMemoryAuditLog, InMemoryConnections, InMemoryRegistry
from tests.support import stores, table_definition

S: TypeAlias = ConnectionStatus
TABLE = "contract-test"
STAMP = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}


@dataclass
class Backend:
    name: str
    connections: ConnectionStore
    tokens: TokenStore
    registry: RegistryStore
    audit: AuditLog
    # Give the account's live lock to another connection (a state no port write produces alone).
    hand_lock: Callable[[str, str, str], None]


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        registry = InMemoryRegistry()
        connections = InMemoryConnections(registry=registry)

        def hand_memory_lock(space_id: str, account_id: str, holder: str) -> None:
            connections.live[(space_id, account_id)] = holder

        yield Backend("memory", connections, connections.tokens, registry,
                      InMemoryAuditLog(connections, registry), hand_memory_lock)  # fmt: skip
        return
    # Its own table (the folder's shared moto account may be active: a name of its own keeps them apart).
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(**table_definition(table))
        state = stores(table, ddb)

        def hand_table_lock(space_id: str, account_id: str, holder: str) -> None:
            ddb.put_item(
                TableName=table, Item=serialize({**live_key(space_id, account_id), "connectionId": holder})
            )

        yield Backend(
            "dynamodb", state.connections, state.tokens, state.registry, state.audit, hand_table_lock
        )
        ddb.delete_table(TableName=table)


# ---- arranging through the ports ---------------------------------------------------------------


def admit(registry: RegistryStore, connection: Connection) -> None:
    """What a create checks, in place unless it is already: its requester a SPACE_ADMIN of its
    space, its account registered (the plain policy)."""
    if registry.get_space(connection.spaceId) is None:
        registry.put_space(Space(spaceId=connection.spaceId, name=connection.spaceId, **STAMP))
    if registry.get_member_role(connection.spaceId, connection.requestedBy) is None:
        registry.put_member(Member(spaceId=connection.spaceId, userId=connection.requestedBy,
                                   role=SpaceRole.SPACE_ADMIN, **STAMP))  # fmt: skip
    if registry.get_approver(connection.accountId) is None:
        registry.put_approver(Approver(accountId=connection.accountId, email=ADMIN_EMAIL, **STAMP))


def created(backend: Backend, **fields: Any) -> tuple[Connection, LinkToken]:
    """A new request stored with its connection token, as ``create_connection`` stores it (its
    requester admitted to the space, its account registered)."""
    connection = a_connection(**fields)
    admit(backend.registry, connection)
    _, connection_token = token_for(connection, TokenKind.CONNECTION_TOKEN)
    return backend.connections.create(connection, connection_token, policy=PLAIN), connection_token


def link(
    backend: Backend,
    connection: Connection,
    connection_token: LinkToken,
    *,
    address: str = ADMIN_EMAIL,
    task_token: str | None = "task-1",
    at: datetime | None = None,
    limit: LinkLimit | None = None,
    policy: ApprovalPolicy | None = None,
) -> LinkToken:
    """Issue ``address`` a link as ``logic.links`` does, from a fresh read (made ``at``, a resend's
    ``limit``; ``task_token`` None: the workflow waits with the one it had; ``policy``: a new
    round): its previous link dies, the others live on. Returns the new token's record."""
    fresh, secrets = backend.connections.read(connection.connectionId)
    connection.with_chain(fresh.chain_head)  # the chain as it is now; the status as the caller saw it
    current = task_token or secrets.task_token or "task-1"
    _, token = token_for(connection, task_token=current, csrf_secret="ab" * 32, approver_email=address)
    made = isoformat(at or utcnow())
    token = token.model_copy(update={"createdAt": made, "round": 1})
    live = dict(secrets.links)
    retire = [live.pop(address)] if address in live else []
    links = {**live, address: token.tokenHash}
    copies = {"taskToken": current, "csrfSecret": "ab" * 32, "approverEmails": list(links),
              "approverPrincipals": []}  # fmt: skip
    backend.connections.replace_links(connection, LinkChange(
        at=made, issue=[token], links=links, notified=list(dict.fromkeys([*secrets.notified, address])),
        events=[connection_event(connection, EventType.LINK_SENT, "system", f"link emailed to {address}")],
        retire=retire, refresh=list(live.values()), verify_base_url=BASE_URL, task_token=task_token,
        csrf_secret=None if secrets.csrf_secret else "ab" * 32, policy=policy,
        round=secrets.approval_round + 1 if policy else None,
        connection_token=(connection_token.tokenHash, copies), limit=limit,
    ), revision=secrets.revision)  # fmt: skip
    return token


def approve(shown: Connection, by: str = ADMIN_EMAIL) -> StatusChange:
    return StatusChange(S.APPROVED, by, decidedBy=by, decidedAt=isoformat(utcnow()),
                        paidTiersAuthorized=False, detail=f"approved by {by}")  # fmt: skip


def approval(by: str = ADMIN_EMAIL) -> Approval:
    return Approval(approver=by, decisionMethod="EMAIL_LINK", at=isoformat(utcnow()))


def approved(shown: Connection, by: str = ADMIN_EMAIL, **fields: Any) -> Verdict:
    """The verdict of the approval that reaches a quorum of one (the plain policy)."""
    return Verdict(who=by, round=0, approval=approval(by), change=approve(shown, by), chain=shown.chain_head,
                   **fields)  # fmt: skip


def head(backend: Backend, connection: Connection) -> ChainHead:
    """The connection's chain head as stored now (what a decider reads)."""
    return backend.connections.get(connection.connectionId).chain_head


def rejected(by: str = ADMIN_EMAIL, **fields: Any) -> Verdict:
    change = StatusChange(S.REJECTED, by, decidedBy=by, reason="not ours")
    return Verdict(who=by, round=0, change=change, **fields)


def token_state(backend: Backend, token: LinkToken) -> tuple[TokenState, str | None, str | None]:
    stored = backend.tokens.get(token.tokenHash)
    assert stored is not None
    return stored.state, stored.taskToken, stored.csrfSecret


def decisions(backend: Backend, connection_id: str) -> list[AuditEvent]:
    """The approvals and status changes of the history, in its order."""
    wanted = (EventType.APPROVAL_RECORDED, EventType.STATUS_CHANGED)
    return [event for event in backend.connections.detail(connection_id)[2] if event.type in wanted]


def history(backend: Backend, connection_id: str) -> list[EventType]:
    return sorted(event.type for event in backend.connections.detail(connection_id)[2])


# ---- the live lock -----------------------------------------------------------------------------


def test_a_second_live_request_for_the_account_is_refused_in_its_space_only(backend: Backend) -> None:
    first, _ = created(backend)
    second = a_connection()
    with pytest.raises(ConnectionAlreadyLive):
        backend.connections.create(second, token_for(second, TokenKind.CONNECTION_TOKEN)[1], policy=PLAIN)
    with pytest.raises(ConnectionNotFound):
        backend.connections.get(second.connectionId)
    assert backend.connections.live_holder(SPACE, ACCOUNT) == first.connectionId
    elsewhere, _ = created(backend, space_id=OTHER_SPACE)
    assert backend.connections.live_holder(OTHER_SPACE, ACCOUNT) == elsewhere.connectionId


# ---- what a create checks in its one write ---------------------------------------------------

POLICY = ApprovalPolicy(
    approvers=["a@example.com", "b@example.com"], quorum=2, remindAfterSeconds=[3600, 7200],
    escalateAfterSeconds=10800, escalateTo=["c@example.com"],
    approverPrincipals=["arn:aws:iam::111122223333:role/Approver"],
)  # fmt: skip


def refused_create(backend: Backend, connection: Connection, policy: ApprovalPolicy = PLAIN) -> Exception:
    """What ``create`` raised for ``connection``, after checking that it wrote nothing: no
    connection, no lock, no token, no event."""
    _, token = token_for(connection, TokenKind.CONNECTION_TOKEN)
    lock = backend.connections.live_holder(connection.spaceId, connection.accountId)
    with pytest.raises(DomainError) as refused:
        backend.connections.create(connection, token, policy=policy)
    with pytest.raises(ConnectionNotFound):
        backend.connections.get(connection.connectionId)
    assert backend.connections.live_holder(connection.spaceId, connection.accountId) == lock
    assert backend.tokens.get(token.tokenHash) is None
    assert backend.audit.query_events(EventQuery(connection_id=connection.connectionId), 10, None).items == []
    return refused.value


@pytest.mark.parametrize(
    ("role", "detail"),
    [
        (None, "you are not a member of space demo"),
        (SpaceRole.LIMITED_ACCESS, "this operation needs the SPACE_ADMIN or POWER_USER role in space demo"),
    ],
)
def test_a_create_by_a_caller_whose_role_may_not_change_the_space_writes_nothing(
    backend: Backend, role: SpaceRole | None, detail: str
) -> None:
    # Given carol, a LIMITED_ACCESS member of demo or no member at all, and a registered account
    connection = a_connection(requested_by="carol")
    admit(backend.registry, a_connection())
    if role is not None:
        backend.registry.put_member(Member(spaceId=SPACE, userId="carol", role=role, **STAMP))
    # When her request is stored Then its transaction refuses it with the routes' own 403
    refused = refused_create(backend, connection)
    assert isinstance(refused, NotAuthorized) and refused.detail == detail
    # And a POWER_USER's passes the same check
    backend.registry.put_member(Member(spaceId=SPACE, userId="carol", role=SpaceRole.POWER_USER, **STAMP))
    _, token = token_for(connection, TokenKind.CONNECTION_TOKEN)
    assert backend.connections.create(connection, token, policy=PLAIN).requestedBy == "carol"


def test_a_create_for_an_account_nobody_administers_writes_nothing(backend: Backend) -> None:
    connection = a_connection(account_id=UNREGISTERED_ACCOUNT)
    admit(backend.registry, a_connection())  # alice may change demo; only ACCOUNT is registered
    refused = refused_create(backend, connection)
    assert isinstance(refused, ApproverNotRegistered)
    assert refused.detail == (
        f"no administrator is registered for account {UNREGISTERED_ACCOUNT}: ask an operator to register one"
    )


def test_a_create_that_assumed_another_policy_is_told_the_registered_one(backend: Backend) -> None:
    # Given an account whose registered policy is not the plain one
    connection = a_connection()
    admit(backend.registry, connection)
    backend.registry.put_approver(
        Approver(accountId=ACCOUNT, email="a@example.com", **POLICY.model_dump(), **STAMP)
    )
    # When a create assumes the plain policy Then it writes nothing and learns the registered one
    refused = refused_create(backend, connection, PLAIN)
    assert isinstance(refused, RegisteredPolicyDiffers)
    assert copied_at_create(refused.policy) == copied_at_create(POLICY)
    # Each field a request copies counts: one of them off refuses it too
    changes: list[dict[str, Any]] = [
        {"quorum": 1}, {"approverPrincipals": []}, {"remindAfterSeconds": [3600]},
        {"escalateAfterSeconds": None}, {"escalateTo": []},
    ]  # fmt: skip
    for change in changes:
        assert isinstance(refused_create(backend, connection, POLICY.model_copy(update=change)),
                          RegisteredPolicyDiffers)  # fmt: skip
    # And written again with the registered policy (the addresses are not what it copies), it is stored
    _, token = token_for(connection, TokenKind.CONNECTION_TOKEN)
    told = refused.policy.model_copy(update={"approvers": []})
    stored = backend.connections.create(connection.model_copy(update={"quorum": 2}), token, policy=told)
    assert backend.connections.get(stored.connectionId).quorum == 2


def test_a_create_refused_for_several_reasons_answers_the_first_check(backend: Backend) -> None:
    # Given an unregistered account whose lock in demo is held: mallory (no member) is told 403,
    # alice (SPACE_ADMIN) 422, as when the role and then the registration were read first
    admit(backend.registry, a_connection())
    backend.hand_lock(SPACE, UNREGISTERED_ACCOUNT, "another-connection")
    by_mallory = a_connection(account_id=UNREGISTERED_ACCOUNT, requested_by="mallory")
    assert isinstance(refused_create(backend, by_mallory), NotAuthorized)
    by_alice = a_connection(account_id=UNREGISTERED_ACCOUNT)
    assert isinstance(refused_create(backend, by_alice), ApproverNotRegistered)
    # A registered policy other than assumed comes before the lock (the create writes again, then
    # hears of the lock)
    backend.registry.put_approver(Approver(accountId=UNREGISTERED_ACCOUNT, **POLICY.model_dump(), **STAMP))
    assert isinstance(refused_create(backend, by_alice), RegisteredPolicyDiffers)
    assert isinstance(refused_create(backend, by_alice, POLICY), ConnectionAlreadyLive)


def test_a_registration_stored_before_policies_is_the_plain_policy_on_the_table() -> None:
    # An APPROVER item with none of the policy's fields (written before policies existed) passes
    # a create that assumed the plain policy
    # Its own table: the folder's shared moto account may be active, and it keeps what this makes.
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(**table_definition(table))
        state = stores(table, ddb)
        pending = a_connection()
        state.registry.put_space(Space(spaceId=SPACE, name="Demo", **STAMP))
        state.registry.put_member(Member(spaceId=SPACE, userId="alice", role=SpaceRole.SPACE_ADMIN, **STAMP))
        legacy = {"pk": f"APPROVER#{ACCOUNT}", "sk": "APPROVER", "accountId": ACCOUNT, "email": ADMIN_EMAIL}
        ddb.put_item(TableName=table, Item=serialize({**legacy, **STAMP}))
        stored = state.connections.create(
            pending, token_for(pending, TokenKind.CONNECTION_TOKEN)[1], policy=PLAIN
        )
        assert state.connections.get(stored.connectionId).quorum == 1


def test_leaving_the_live_statuses_frees_the_account(backend: Backend) -> None:
    pending, _ = created(backend)
    cancelled = backend.connections.transition(pending, StatusChange(S.CANCELLED, "alice", reason="no"))
    assert (cancelled.status, cancelled.version, cancelled.reason) == (S.CANCELLED, 2, "no")
    assert backend.connections.get(pending.connectionId) == cancelled
    assert backend.connections.live_holder(SPACE, ACCOUNT) is None
    again, _ = created(backend)
    assert backend.connections.live_holder(SPACE, ACCOUNT) == again.connectionId


def test_a_lock_held_by_another_connection_is_released_only_when_asked_not_to(backend: Backend) -> None:
    # Given a pending request whose account's lock (somehow) names another connection
    pending, _ = created(backend)
    backend.hand_lock(SPACE, ACCOUNT, "another-connection")
    failed = StatusChange(S.FAILED, "system", reason="the workflow failed")
    # When it fails releasing the lock Then the lock's condition refuses it
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.transition(pending, failed)
    assert backend.connections.get(pending.connectionId).status == S.PENDING_APPROVAL
    # When it fails keeping the lock Then it fails and the other keeps the account
    assert backend.connections.transition(pending, failed, release_live=False).status == S.FAILED
    assert backend.connections.live_holder(SPACE, ACCOUNT) == "another-connection"


# ---- concurrent changes ------------------------------------------------------------------------


def test_a_change_from_a_stale_read_is_refused_and_changes_nothing(backend: Backend) -> None:
    pending, _ = created(backend)
    approved = backend.connections.transition(pending, approve(pending))
    # A second writer still holding the pending read: neither another decision nor a cancel lands.
    for change in (approve(pending), StatusChange(S.CANCELLED, "alice")):
        with pytest.raises(ConnectionAlreadyDecided):
            backend.connections.transition(pending, change)
    # The same status at an older version (a read from before a change) is stale too.
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.transition(
            approved.model_copy(update={"version": 1}), StatusChange(S.FAILED, "x")
        )
    assert backend.connections.get(pending.connectionId) == approved
    assert history(backend, pending.connectionId) == [EventType.REQUESTED, EventType.STATUS_CHANGED]


@pytest.mark.parametrize(("source", "target"), [(S.PENDING_APPROVAL, S.VERIFIED), (S.APPROVED, S.CANCELLED)])
def test_no_transition_outside_the_allowed_ones(backend: Backend, source: S, target: S) -> None:
    pending, _ = created(backend)
    current = (
        pending if source == S.PENDING_APPROVAL else backend.connections.transition(pending, approve(pending))
    )
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.transition(current, StatusChange(target, "alice"))
    assert backend.connections.get(pending.connectionId).status == source


def test_a_verified_connection_disconnects_and_frees_the_account(backend: Backend) -> None:
    pending, _ = created(backend)
    approved = backend.connections.transition(pending, approve(pending))
    verified = backend.connections.transition(approved, StatusChange(S.VERIFIED, "system", verifiedAt="now"))
    assert backend.connections.live_holder(SPACE, ACCOUNT) == pending.connectionId
    gone = backend.connections.transition(verified, StatusChange(S.DISCONNECTED, "alice", disconnectedAt="t"))
    assert (gone.status, gone.version, gone.disconnectedAt) == (S.DISCONNECTED, 4, "t")
    assert backend.connections.live_holder(SPACE, ACCOUNT) is None


# ---- decisions ---------------------------------------------------------------------------------


def test_a_decision_consumes_its_token_once(backend: Backend) -> None:
    pending, connection_token = created(backend)
    token = link(backend, pending, connection_token)
    shown = ShownRequest.of(pending)
    # When the administrator approves through the link
    decided = backend.connections.record_decision(shown, approved(pending), token_hash=token.tokenHash)
    # Then the request is approved with who decided, and the link is used, its secrets gone
    assert (decided.status, decided.version, decided.decidedBy) == (S.APPROVED, 2, ADMIN_EMAIL)
    assert [a.approver for a in decided.approvals] == [ADMIN_EMAIL]
    assert backend.connections.get(pending.connectionId) == decided
    assert token_state(backend, token) == (TokenState.USED, None, None)
    # And a second decision, through the same link or the connection token, is refused
    for again in (token, connection_token):
        with pytest.raises(ConnectionAlreadyDecided):
            backend.connections.record_decision(shown, rejected(), token_hash=again.tokenHash)
    assert backend.connections.get(pending.connectionId).status == S.APPROVED
    assert token_state(backend, connection_token)[0] == TokenState.ACTIVE
    # The history has the approval, then the status change
    events = decisions(backend, pending.connectionId)
    assert [e.type for e in events] == [EventType.APPROVAL_RECORDED, EventType.STATUS_CHANGED]
    assert events[0].decisionMethod == "EMAIL_LINK" and events[0].actor == ADMIN_EMAIL


def test_a_decision_on_a_request_changed_since_shown_changes_nothing(backend: Backend) -> None:
    pending, connection_token = created(backend)
    token = link(backend, pending, connection_token)
    # Same version, but not what is stored: the digest differs.
    shown = ShownRequest.of(pending.model_copy(update={"displayName": "Something else"}))
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.record_decision(shown, approved(pending), token_hash=token.tokenHash)
    assert backend.connections.get(pending.connectionId).status == S.PENDING_APPROVAL
    assert token_state(backend, token) == (TokenState.ACTIVE, "task-1", "ab" * 32)
    assert backend.connections.live_holder(SPACE, ACCOUNT) == pending.connectionId


def test_a_rejection_frees_the_account(backend: Backend) -> None:
    pending, connection_token = created(backend)
    token = link(backend, pending, connection_token)
    decided = backend.connections.record_decision(
        ShownRequest.of(pending), rejected(chain=head(backend, pending)), token_hash=token.tokenHash
    )
    assert (decided.status, decided.reason, decided.approvals) == (S.REJECTED, "not ours", [])
    assert backend.connections.live_holder(SPACE, ACCOUNT) is None


QUORUM_2 = ApprovalPolicy(approvers=[ADMIN_EMAIL, "ops@example.com"], quorum=2)


def test_a_quorum_is_reached_by_distinct_approvers_exactly_once(backend: Backend) -> None:
    pending, connection_token = created(backend)
    first = link(backend, pending, connection_token, policy=QUORUM_2)
    second = link(backend, pending, connection_token, address="ops@example.com")
    _, secrets = backend.connections.read(pending.connectionId)
    assert (secrets.approvals_needed, secrets.approval_round, secrets.policy) == (2, 1, QUORUM_2)
    assert backend.connections.get(pending.connectionId).quorum == 2
    shown = ShownRequest.of(pending)
    # The first approval counts and moves no status
    one = Verdict(
        who=ADMIN_EMAIL, round=1, approval=approval(), needed=2, quorum=2, chain=head(backend, pending)
    )
    after_one = backend.connections.record_decision(shown, one, token_hash=first.tokenHash)
    assert (after_one.status, [a.approver for a in after_one.approvals]) == (
        S.PENDING_APPROVAL,
        [ADMIN_EMAIL],
    )
    assert backend.connections.read(pending.connectionId)[1].approvals_needed == 1
    # The same approver again (through the connection token, say) is refused
    with pytest.raises(ApproverAlreadyDecided):
        backend.connections.record_decision(
            shown, one._replace(consume=False), token_hash=connection_token.tokenHash
        )
    # A second approval from a stale read (still needing two) is told to read again, and changes nothing
    ops = Verdict(who="ops@example.com", round=1, approval=approval("ops@example.com"), needed=2, quorum=2,
                  chain=head(backend, pending))  # fmt: skip
    with pytest.raises(ApprovalsMoved):
        backend.connections.record_decision(shown, ops, token_hash=second.tokenHash)
    assert token_state(backend, second)[0] == TokenState.ACTIVE
    # Read again, it is the last: the request is approved in the same write
    last = ops._replace(needed=1, change=approve(pending, "ops@example.com"),
                   before=tuple(after_one.approvals), chain=after_one.chain_head)  # fmt: skip
    decided = backend.connections.record_decision(shown, last, token_hash=second.tokenHash)
    assert decided.status == S.APPROVED
    assert [a.approver for a in decided.approvals] == [ADMIN_EMAIL, "ops@example.com"]
    assert backend.connections.get(pending.connectionId) == decided
    types = [e.type for e in decisions(backend, pending.connectionId)]
    assert types == [EventType.APPROVAL_RECORDED, EventType.APPROVAL_RECORDED, EventType.STATUS_CHANGED]


def test_an_approval_of_an_earlier_round_is_told_to_read_again(backend: Backend) -> None:
    pending, connection_token = created(backend)
    link(backend, pending, connection_token, policy=QUORUM_2)
    link(backend, pending, connection_token, policy=QUORUM_2)  # a policy change: round 2
    token = link(backend, pending, connection_token, address="ops@example.com")
    stale = Verdict(who="ops@example.com", round=1, approval=approval("ops@example.com"), needed=2,
                    chain=head(backend, pending))  # fmt: skip
    with pytest.raises(ApprovalsMoved):
        backend.connections.record_decision(ShownRequest.of(pending), stale, token_hash=token.tokenHash)
    current = stale._replace(round=2)
    assert backend.connections.record_decision(
        ShownRequest.of(pending), current, token_hash=token.tokenHash
    ).status == (S.PENDING_APPROVAL)


def test_a_connection_token_decides_without_being_spent_and_a_proof_once(backend: Backend) -> None:
    pending, connection_token = created(backend)
    link(backend, pending, connection_token, policy=QUORUM_2)
    shown = ShownRequest.of(pending)
    role = "arn:aws:iam::111122223333:role/Admin"
    one = Verdict(who=role, round=1, approval=approval(role), needed=2, consume=False,
                  proof_signature="sig-1", chain=head(backend, pending))  # fmt: skip
    backend.connections.record_decision(shown, one, token_hash=connection_token.tokenHash)
    assert token_state(backend, connection_token)[0] == TokenState.ACTIVE
    # The same proof again, even for another principal, is refused
    other = one._replace(who="arn:aws:iam::111122223333:role/Other", needed=1, chain=head(backend, pending))
    with pytest.raises(AccountProofRefused):
        backend.connections.record_decision(shown, other, token_hash=connection_token.tokenHash)
    assert backend.connections.read(pending.connectionId)[1].approvals_needed == 1


# ---- links -------------------------------------------------------------------------------------


def test_a_new_link_retires_the_one_it_replaces(backend: Backend) -> None:
    pending, connection_token = created(backend)
    first = link(backend, pending, connection_token, task_token="task-1")
    second = link(backend, pending, connection_token, task_token=None)
    # The replaced link is retired and keeps no secret; the new one is live
    assert token_state(backend, first) == (TokenState.REPLACED, None, None)
    assert token_state(backend, second) == (TokenState.ACTIVE, "task-1", "ab" * 32)
    # The connection token carries the new link's copies; the connection keeps its link and secrets
    held = backend.tokens.get(connection_token.tokenHash)
    assert held is not None and (held.state, held.taskToken, held.approverEmails) == (
        TokenState.ACTIVE, "task-1", [ADMIN_EMAIL],
    )  # fmt: skip
    _, secrets = backend.connections.read(pending.connectionId)
    assert (secrets.links, secrets.task_token, secrets.csrf_secret, secrets.verify_base_url) == (
        {ADMIN_EMAIL: second.tokenHash}, "task-1", "ab" * 32, BASE_URL,
    )  # fmt: skip
    assert (secrets.connection_token_hash, secrets.notified, secrets.revision) == (
        connection_token.tokenHash, (ADMIN_EMAIL,), 2,
    )  # fmt: skip
    # A decision through the replaced link is refused
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.record_decision(
            ShownRequest.of(pending), approved(pending), token_hash=first.tokenHash
        )
    assert history(backend, pending.connectionId) == [
        EventType.LINK_SENT,
        EventType.LINK_SENT,
        EventType.REQUESTED,
    ]


def test_each_approver_has_a_link_and_a_new_wait_gives_the_others_its_task_token(backend: Backend) -> None:
    pending, connection_token = created(backend)
    mine = link(backend, pending, connection_token, policy=QUORUM_2)
    theirs = link(backend, pending, connection_token, address="ops@example.com")
    # When the workflow waits anew (task-2) and only ops@ gets a new link
    again = link(backend, pending, connection_token, address="ops@example.com", task_token="task-2")
    # Then admin@'s link lives on with the new task token; ops@'s old one died
    assert token_state(backend, mine) == (TokenState.ACTIVE, "task-2", "ab" * 32)
    assert token_state(backend, theirs) == (TokenState.REPLACED, None, None)
    assert token_state(backend, again)[:2] == (TokenState.ACTIVE, "task-2")
    _, secrets = backend.connections.read(pending.connectionId)
    assert secrets.links == {ADMIN_EMAIL: mine.tokenHash, "ops@example.com": again.tokenHash}
    assert (secrets.task_token, secrets.notified) == ("task-2", (ADMIN_EMAIL, "ops@example.com"))


def test_no_link_for_a_request_no_longer_in_its_status_or_moved_since_read(backend: Backend) -> None:
    pending, connection_token = created(backend)
    first = link(backend, pending, connection_token)
    _, secrets = backend.connections.read(pending.connectionId)
    _, late = token_for(pending)
    change = LinkChange(at=isoformat(utcnow()), issue=[late], links={ADMIN_EMAIL: late.tokenHash},
                        notified=[ADMIN_EMAIL], retire=[first.tokenHash],
                        events=[connection_event(pending, EventType.LINK_SENT, "alice", "late")])  # fmt: skip
    # A read from before another write of the links is stale
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.replace_links(pending, change, revision=secrets.revision - 1)
    backend.connections.transition(pending, StatusChange(S.CANCELLED, "alice"))
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.replace_links(pending, change, revision=secrets.revision)
    assert backend.tokens.get(late.tokenHash) is None
    assert token_state(backend, first)[0] == TokenState.ACTIVE


def test_a_link_replacing_an_unknown_token_is_refused(backend: Backend) -> None:
    pending, connection_token = created(backend)
    _, new = token_for(pending)
    sent = connection_event(pending, EventType.LINK_SENT, "a", "x")
    unknown = LinkChange(at=isoformat(utcnow()), issue=[new], links={ADMIN_EMAIL: new.tokenHash}, notified=[],
                         retire=["0" * 64], events=[sent])  # fmt: skip
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.replace_links(pending, unknown, revision=0)
    assert backend.tokens.get(new.tokenHash) is None
    assert backend.connections.read(pending.connectionId)[1].links == {}


# ---- the connection token, replaced --------------------------------------------------------------


def rotated(backend: Backend, pending: Connection, held: LinkToken) -> LinkToken:
    """A new connection token in place of ``held``, as ``replay_create`` makes it; returns its record."""
    _, token = token_for(pending, TokenKind.CONNECTION_TOKEN)
    current = backend.tokens.get(held.tokenHash)
    assert current is not None
    fresh = current.model_copy(update={"tokenHash": token.tokenHash})
    _, secrets = backend.connections.read(pending.connectionId)
    backend.connections.rotate_connection_token(pending, fresh, secrets=secrets, actor="alice")
    return fresh


def test_a_new_connection_token_retires_the_first_and_keeps_its_copies(backend: Backend) -> None:
    pending, connection_token = created(backend)
    first_link = link(backend, pending, connection_token)
    new = rotated(backend, pending, connection_token)
    # The first is replaced and keeps no secret; the new one is live with the copies a decision needs
    assert token_state(backend, connection_token) == (TokenState.REPLACED, None, None)
    assert token_state(backend, new) == (TokenState.ACTIVE, "task-1", "ab" * 32)
    stored = backend.tokens.get(new.tokenHash)
    assert stored is not None and (stored.kind, stored.approverEmails, stored.request) == (
        TokenKind.CONNECTION_TOKEN, [ADMIN_EMAIL], ShownRequest.of(pending),
    )  # fmt: skip
    _, secrets = backend.connections.read(pending.connectionId)
    assert (secrets.connection_token_hash, secrets.links) == (
        new.tokenHash,
        {ADMIN_EMAIL: first_link.tokenHash},
    )
    assert history(backend, pending.connectionId) == [
        EventType.CONNECTION_TOKEN_REPLACED, EventType.LINK_SENT, EventType.REQUESTED,
    ]  # fmt: skip
    # A decision through the replaced token is refused; through the new one it is recorded
    shown = ShownRequest.of(pending)
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.record_decision(shown, approved(pending), token_hash=connection_token.tokenHash)
    assert backend.connections.record_decision(shown, approved(pending), token_hash=new.tokenHash).status == (
        S.APPROVED
    )


def test_no_new_connection_token_from_a_stale_read_or_for_a_request_not_pending(backend: Backend) -> None:
    pending, connection_token = created(backend)
    _, before_link = backend.connections.read(pending.connectionId)
    link(backend, pending, connection_token)
    _, before_swap = backend.connections.read(pending.connectionId)
    rotated(backend, pending, connection_token)
    _, current = backend.connections.read(pending.connectionId)
    _, candidate = token_for(pending, TokenKind.CONNECTION_TOKEN)
    # A read from before a link was issued, or from before another replay, is stale
    for stale in (before_link, before_swap):
        with pytest.raises(ConnectionAlreadyDecided):
            backend.connections.rotate_connection_token(pending, candidate, secrets=stale, actor="alice")
    # A request no longer pending gets none
    backend.connections.transition(pending, StatusChange(S.CANCELLED, "alice"))
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.rotate_connection_token(pending, candidate, secrets=current, actor="alice")
    # And a refused swap changed nothing
    assert backend.tokens.get(candidate.tokenHash) is None
    assert backend.connections.read(pending.connectionId)[1] == current
    assert history(backend, pending.connectionId).count(EventType.CONNECTION_TOKEN_REPLACED) == 1


@pytest.mark.parametrize(
    ("role", "detail"),
    [
        (None, "you are not a member of space demo"),
        (SpaceRole.LIMITED_ACCESS, "this operation needs the SPACE_ADMIN or POWER_USER role in space demo"),
    ],
)
def test_no_new_connection_token_for_a_caller_who_may_no_longer_change_the_space(
    backend: Backend, role: SpaceRole | None, detail: str
) -> None:
    # Given a pending request whose requester was removed from the space, or demoted
    pending, connection_token = created(backend)
    link(backend, pending, connection_token)
    if role is None:
        assert backend.registry.delete_member(SPACE, "alice")
    else:
        backend.registry.put_member(Member(spaceId=SPACE, userId="alice", role=role, **STAMP))
    _, current = backend.connections.read(pending.connectionId)
    _, candidate = token_for(pending, TokenKind.CONNECTION_TOKEN)
    # When their replay swaps the token Then its write refuses them first, in the routes' words
    with pytest.raises(NotAuthorized) as refused:
        backend.connections.rotate_connection_token(pending, candidate, secrets=current, actor="alice")
    assert refused.value.detail == detail
    # And nothing changed
    assert backend.tokens.get(candidate.tokenHash) is None
    assert token_state(backend, connection_token)[0] == TokenState.ACTIVE
    assert backend.connections.read(pending.connectionId)[1] == current
    assert EventType.CONNECTION_TOKEN_REPLACED not in history(backend, pending.connectionId)


def test_resends_are_limited_to_one_a_minute_and_ten_links_in_all(backend: Backend) -> None:
    pending, connection_token = created(backend)
    start = utcnow()
    first = link(backend, pending, connection_token, at=start)  # the notify step's: no limit
    events = history(backend, pending.connectionId)

    def resend(after: timedelta, replaces: LinkToken) -> LinkToken:
        return link(backend, pending, connection_token, task_token=None, at=start + after, limit=LinkLimit())

    # A resend 30 seconds after the last link is refused, says when to retry, and changes nothing
    with pytest.raises(TooManyLinks) as refused:
        resend(timedelta(seconds=30), first)
    assert refused.value.retry_after == 30
    assert token_state(backend, first)[0] == TokenState.ACTIVE
    assert backend.connections.read(pending.connectionId)[1].links == {ADMIN_EMAIL: first.tokenHash}
    assert history(backend, pending.connectionId) == events
    # One a minute passes (the minute counted from the last link), up to ten links in all
    last = resend(timedelta(minutes=1), first)
    with pytest.raises(TooManyLinks) as again:
        resend(timedelta(minutes=1, seconds=59), last)
    assert again.value.retry_after == 1
    for minute in range(2, 10):
        last = resend(timedelta(minutes=minute), last)
    with pytest.raises(TooManyLinks) as spent:
        resend(timedelta(days=1), last)
    assert spent.value.retry_after is None
    assert backend.connections.read(pending.connectionId)[1].links == {ADMIN_EMAIL: last.tokenHash}
    assert history(backend, pending.connectionId).count(EventType.LINK_SENT) == 10
    # The workflow's own link (no limit) still goes: the approver must be reachable
    link(backend, pending, connection_token, at=start + timedelta(days=1))
    assert history(backend, pending.connectionId).count(EventType.LINK_SENT) == 11


def test_of_two_concurrent_resends_one_passes(backend: Backend) -> None:
    # Given two resends made from the same read of a request whose last link is two minutes old
    pending, connection_token = created(backend)
    start = utcnow()
    link(backend, pending, connection_token, at=start)
    at = start + timedelta(minutes=2)
    _, read = backend.connections.read(pending.connectionId)
    link(backend, pending, connection_token, task_token=None, at=at, limit=LinkLimit())
    # When the second is written (from a read after the first, so that only the limit stops it)
    # Then the store's condition refuses it: a minute from the first
    with pytest.raises(TooManyLinks) as refused:
        link(backend, pending, connection_token, task_token=None, at=at, limit=LinkLimit())
    assert refused.value.retry_after == 60
    assert history(backend, pending.connectionId).count(EventType.LINK_SENT) == 2


def test_a_resend_of_a_request_no_longer_pending_is_a_conflict_not_a_limit(backend: Backend) -> None:
    pending, connection_token = created(backend)
    start = utcnow()
    link(backend, pending, connection_token, at=start)
    backend.connections.transition(pending, StatusChange(S.CANCELLED, "alice"))
    # Within the minute, yet what refuses it is the status
    with pytest.raises(ConnectionAlreadyDecided):
        link(
            backend,
            pending,
            connection_token,
            task_token=None,
            at=start + timedelta(seconds=5),
            limit=LinkLimit(),
        )


def withdraw(backend: Backend, pending: Connection, secrets: ConnectionSecrets, held: LinkToken) -> None:
    """Every live link withdrawn with no successor, as ``logic.links.withdraw_links`` does."""
    backend.connections.replace_links(pending, LinkChange(
        at=isoformat(utcnow()), issue=[], links={}, notified=list(secrets.notified),
        events=[connection_event(pending, EventType.LINK_REVOKED, "oscar", "links withdrawn")],
        retire=list(secrets.links.values()), retire_as=TokenState.REVOKED,
        connection_token=(held.tokenHash, {"approverEmails": None, "approverPrincipals": None}),
    ), revision=secrets.revision)  # fmt: skip


def test_a_withdrawn_link_has_no_successor_and_the_connection_token_no_address(backend: Backend) -> None:
    pending, connection_token = created(backend)
    first = link(backend, pending, connection_token)
    _, secrets = backend.connections.read(pending.connectionId)
    withdraw(backend, pending, secrets, connection_token)
    # The link is revoked and keeps no secret; the connection has no live link
    assert token_state(backend, first) == (TokenState.REVOKED, None, None)
    _, after = backend.connections.read(pending.connectionId)
    assert (after.links, after.task_token, after.notified) == ({}, "task-1", (ADMIN_EMAIL,))
    # The connection token still opens the page, and names no approver now
    held = backend.tokens.get(connection_token.tokenHash)
    assert held is not None and (held.state, held.taskToken, held.approverEmails) == (
        TokenState.ACTIVE, "task-1", None,
    )  # fmt: skip
    # A second withdrawal, from the same (stale) read, is refused
    with pytest.raises(ConnectionAlreadyDecided):
        withdraw(backend, pending, secrets, connection_token)
    assert history(backend, pending.connectionId) == [EventType.LINK_REVOKED, EventType.LINK_SENT,
                                                      EventType.REQUESTED]  # fmt: skip
    # A link sent afterwards replaces nothing and works
    second = link(backend, pending, connection_token)
    assert token_state(backend, second)[0] == TokenState.ACTIVE


def test_no_withdrawal_once_the_link_or_the_status_changed(backend: Backend) -> None:
    pending, connection_token = created(backend)
    link(backend, pending, connection_token)
    _, secrets = backend.connections.read(pending.connectionId)
    # A resend got there first: the withdrawal of the link read is refused, the new link stays
    second = link(backend, pending, connection_token, task_token=None)
    with pytest.raises(ConnectionAlreadyDecided):
        withdraw(backend, pending, secrets, connection_token)
    assert token_state(backend, second)[0] == TokenState.ACTIVE
    # A cancelled request keeps its link's record as it was
    _, fresh = backend.connections.read(pending.connectionId)
    backend.connections.transition(pending, StatusChange(S.CANCELLED, "alice"))
    with pytest.raises(ConnectionAlreadyDecided):
        withdraw(backend, pending, fresh, connection_token)
    assert token_state(backend, second)[0] == TokenState.ACTIVE


def test_an_accounts_pending_requests(backend: Backend) -> None:
    older, _ = created(backend, created_ago=timedelta(minutes=9))
    newer, _ = created(backend, space_id=OTHER_SPACE)
    cancelled, _ = created(backend, space_id="third")
    backend.connections.transition(cancelled, StatusChange(S.CANCELLED, "alice"))
    created(backend, account_id=UNREGISTERED_ACCOUNT)
    found = backend.connections.pending_for_account(ACCOUNT)
    assert [c.connectionId for c in found] == [older.connectionId, newer.connectionId]
    assert backend.connections.pending_for_account("999999999999") == []


# ---- roles -------------------------------------------------------------------------------------


def test_roles_are_recorded_and_detached_while_the_status_holds(backend: Backend) -> None:
    pending, _ = created(backend)
    approved = backend.connections.transition(pending, approve(pending))
    build = RoleAttachment(roleArn=role_arn("BuildRole"), roleName="BuildRole", attached=True, checkedAt="t")
    refused = RoleAttachment(roleArn=role_arn("Other"), roleName="Other", attached=False, reason="no trust",
                             checkedAt="t")  # fmt: skip
    backend.connections.attach_role(approved, build, actor="system")
    backend.connections.attach_role(approved, refused, actor="system")
    # A writer holding the pending read cannot record a role
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.attach_role(
            pending, build.model_copy(update={"roleName": "Late"}), actor="system"
        )
    assert backend.connections.get_role(pending.connectionId, "BuildRole") == build
    assert backend.connections.detail(pending.connectionId)[1] == [build, refused]
    # A role that is not recorded cannot be detached; a recorded one can, once
    missing = build.model_copy(update={"roleName": "Missing"})
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.detach_role(approved, missing, actor="alice")
    backend.connections.detach_role(approved, build, actor="alice")
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.detach_role(approved, build, actor="alice")
    assert backend.connections.get_role(pending.connectionId, "BuildRole") is None
    events = backend.connections.detail(pending.connectionId)[2]
    # (events of one millisecond are ordered by their random ids: compare them as a set)
    assert sorted((e.type, e.detail) for e in events if e.type.startswith("ROLE")) == [
        (EventType.ROLE_ATTACHED, build.roleArn),
        (EventType.ROLE_DETACHED, build.roleArn),
        (EventType.ROLE_REJECTED, f"{refused.roleArn}: no trust"),
    ]


def test_a_connection_records_at_most_ten_roles(backend: Backend) -> None:
    pending, _ = created(backend)
    approved = backend.connections.transition(pending, approve(pending))
    for i in range(10):
        backend.connections.attach_role(
            approved, recorded_role(f"Role{i}", attached=i % 2 == 0), actor="system"
        )
    events = history(backend, pending.connectionId)
    # An eleventh role is refused, and nothing is written
    with pytest.raises(TooManyRoles):
        backend.connections.attach_role(approved, recorded_role("Eleventh"), actor="alice")
    assert backend.connections.get_role(pending.connectionId, "Eleventh") is None
    assert history(backend, pending.connectionId) == events
    # A recorded role recorded again replaces its record, counted once
    backend.connections.attach_role(approved, recorded_role("Role1"), actor="alice")
    assert backend.connections.get_role(pending.connectionId, "Role1") == recorded_role("Role1")
    assert len(backend.connections.detail(pending.connectionId)[1]) == 10
    # Detaching one (refused or not) makes room for exactly one
    backend.connections.detach_role(approved, recorded_role("Role3", attached=False), actor="alice")
    backend.connections.attach_role(approved, recorded_role("Eleventh"), actor="alice")
    with pytest.raises(TooManyRoles):
        backend.connections.attach_role(approved, recorded_role("Twelfth"), actor="alice")
    assert sorted(r.roleName for r in backend.connections.detail(pending.connectionId)[1]) == sorted(
        [f"Role{i}" for i in range(10) if i != 3] + ["Eleventh"]
    )


def test_concurrent_attaches_cannot_pass_ten_roles_on_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two attaches that both read nine recorded roles before either writes (an interleaving
    # the fakes, which write at once, cannot show): the count in the transaction refuses the second
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(**table_definition(TABLE))
        state = stores(TABLE, ddb)
        connections = state.connections
        pending = a_connection()
        admit(state.registry, pending)
        pending = connections.create(pending, token_for(pending, TokenKind.CONNECTION_TOKEN)[1], policy=PLAIN)
        approved = connections.transition(pending, approve(pending))
        for i in range(9):
            connections.attach_role(approved, recorded_role(f"Role{i}"), actor="system")
        seen = connections._recorded_role_names(pending.connectionId)
        monkeypatch.setattr(connections, "_recorded_role_names", lambda _: set(seen))
        connections.attach_role(approved, recorded_role("Tenth"), actor="alice")
        with pytest.raises(TooManyRoles):
            connections.attach_role(approved, recorded_role("Eleventh"), actor="bob")
        assert connections.get_role(pending.connectionId, "Eleventh") is None
        assert len(connections.detail(pending.connectionId)[1]) == 10


# ---- history ----------------------------------------------------------------------------------


def test_the_history_comes_in_pages_with_the_connection_and_its_roles(backend: Backend) -> None:
    pending, connection_token = created(backend)
    link(backend, pending, connection_token)
    approved = backend.connections.transition(pending, approve(pending))
    backend.connections.attach_role(approved, recorded_role("BuildRole"), actor="system")
    every = backend.connections.detail(pending.connectionId)[2]
    assert len(every) == 4
    # Pages of three, oldest first: the connection and its roles as they are, on each page
    connection, roles, page = backend.connections.detail_page(pending.connectionId, 3)
    assert (connection, roles) == (approved, [recorded_role("BuildRole")])
    assert page.items == every[:3] and page.next_token is not None
    again, roles_again, rest = backend.connections.detail_page(pending.connectionId, 3, page.next_token)
    assert (again, roles_again) == (approved, [recorded_role("BuildRole")])
    assert rest.items == every[3:] and rest.next_token is None
    # A page that ends where the history does hands no token
    assert backend.connections.detail_page(pending.connectionId, 4)[2].next_token is None
    with pytest.raises(ConnectionNotFound):
        backend.connections.detail_page("00000000-0000-4000-8000-000000000000", 2)


def test_a_history_token_is_good_for_its_connection_only(backend: Backend) -> None:
    one, _ = created(backend)
    other, _ = created(backend, space_id=OTHER_SPACE)
    for pending in (one, other):
        backend.connections.transition(pending, StatusChange(S.CANCELLED, "alice"))
    token = backend.connections.detail_page(other.connectionId, 1)[2].next_token
    created(backend)
    listed = backend.connections.list_space(SPACE, None, 1, None)
    assert token and listed.next_token
    for foreign in (token, listed.next_token, "not-a-token", token[:-2]):
        with pytest.raises(InvalidRequest) as refused:
            backend.connections.detail_page(one.connectionId, 1, foreign)
        assert refused.value.errors == [{"field": "historyNextToken", "message": "not a token of this query"}]


# ---- lists and the audit log -------------------------------------------------------------------


def test_a_space_lists_newest_first_and_by_status(backend: Backend) -> None:
    old, _ = created(backend, created_ago=timedelta(hours=3))
    backend.connections.transition(old, StatusChange(S.CANCELLED, "alice"))
    middle, _ = created(backend, created_ago=timedelta(hours=2), account_id=UNREGISTERED_ACCOUNT)
    new, _ = created(backend, created_ago=timedelta(hours=1))
    created(backend, space_id=OTHER_SPACE)
    page = backend.connections.list_space(SPACE, None, 2, None)
    assert [c.connectionId for c in page.items] == [new.connectionId, middle.connectionId]
    assert page.next_token is not None
    rest = backend.connections.list_space(SPACE, None, 2, page.next_token)
    assert [c.connectionId for c in rest.items] == [old.connectionId] and rest.next_token is None
    cancelled = backend.connections.list_space(SPACE, S.CANCELLED, 10, None)
    assert [c.connectionId for c in cancelled.items] == [old.connectionId]
    with pytest.raises(InvalidRequest):
        backend.connections.list_space(OTHER_SPACE, None, 2, page.next_token)


def test_auditors_query_connections_and_events(backend: Backend) -> None:
    old, _ = created(backend, created_ago=timedelta(days=3))
    backend.connections.transition(old, StatusChange(S.CANCELLED, "bob"))
    new, _ = created(backend, created_ago=timedelta(hours=1))
    other, _ = created(backend, space_id=OTHER_SPACE, account_id=UNREGISTERED_ACCOUNT, requested_by="dave")

    def ids(query: ConnectionQuery) -> list[str]:
        return [c.connectionId for c in backend.audit.query_connections(query, 10, None).items]

    assert ids(ConnectionQuery(account_id=ACCOUNT)) == [new.connectionId, old.connectionId]
    assert ids(ConnectionQuery(space_id=SPACE, status=S.CANCELLED)) == [old.connectionId]
    assert ids(ConnectionQuery(status=S.PENDING_APPROVAL)) == [other.connectionId, new.connectionId]
    day_ago = isoformat(utcnow() - timedelta(days=1))
    assert ids(ConnectionQuery(created_from=day_ago)) == [other.connectionId, new.connectionId]
    assert ids(ConnectionQuery(created_to=day_ago)) == [old.connectionId]
    first = backend.audit.query_connections(ConnectionQuery(), 2, None)
    assert len(first.items) == 2 and first.next_token is not None
    with pytest.raises(InvalidRequest):
        backend.audit.query_connections(ConnectionQuery(), 2, "not-a-token")

    def events(query: EventQuery) -> list[tuple[str | None, EventType]]:
        return sorted((e.connectionId, e.type) for e in backend.audit.query_events(query, 10, None).items)

    assert events(EventQuery(connection_id=old.connectionId)) == [
        (old.connectionId, EventType.REQUESTED), (old.connectionId, EventType.STATUS_CHANGED),
    ]  # fmt: skip
    assert events(EventQuery(actor="bob")) == [(old.connectionId, EventType.STATUS_CHANGED)]
    assert events(EventQuery(actor="dave")) == [(other.connectionId, EventType.REQUESTED)]


# ---- the registry ------------------------------------------------------------------------------


def test_the_registry_writes_each_change_with_its_event(backend: Backend) -> None:
    registry = backend.registry
    at = isoformat(utcnow())

    def by_oscar(kind: EventType) -> AuditEvent:
        return registry_event(kind, "oscar", at, str(kind), space_id=SPACE)

    member = Member(spaceId=SPACE, userId="alice", role=SpaceRole.SPACE_ADMIN, **STAMP)
    # A member of a space that does not exist is refused, with no event
    with pytest.raises(SpaceNotFound):
        registry.put_member(member, by_oscar(EventType.MEMBER_CHANGED))
    registry.put_space(Space(spaceId=SPACE, name="Demo space", **STAMP), by_oscar(EventType.SPACE_CHANGED))
    registry.put_member(member, by_oscar(EventType.MEMBER_CHANGED))
    assert registry.get_member_role(SPACE, "alice") == SpaceRole.SPACE_ADMIN
    assert registry.delete_member(SPACE, "alice", by_oscar(EventType.MEMBER_REMOVED))
    # Removing someone who is not a member writes nothing
    assert not registry.delete_member(SPACE, "alice", by_oscar(EventType.MEMBER_REMOVED))
    assert registry.get_member_role(SPACE, "alice") is None
    kinds = sorted(e.type for e in backend.audit.query_events(EventQuery(actor="oscar"), 10, None).items)
    assert kinds == [EventType.MEMBER_CHANGED, EventType.MEMBER_REMOVED, EventType.SPACE_CHANGED]


def test_administrators_by_account_and_by_address(backend: Backend) -> None:
    registry = backend.registry
    for account, email in (("333333333333", "a@example.com"), ("111111111111", "a@example.com"),
                           ("222222222222", "b@example.com")):  # fmt: skip
        registry.put_approver(
            Approver(accountId=account, email=email, subscriptionArn=f"arn:{email}", **STAMP)
        )
    first = registry.list_approvers(2, None)
    assert [a.accountId for a in first.items] == ["111111111111", "222222222222"]
    assert first.next_token is not None
    rest = registry.list_approvers(2, first.next_token)
    assert [a.accountId for a in rest.items] == ["333333333333"] and rest.next_token is None
    assert sorted(a.accountId for a in registry.approvers_with_email("a@example.com")) == [
        "111111111111", "333333333333",
    ]  # fmt: skip
    assert registry.delete_approver("111111111111")
    assert not registry.delete_approver("111111111111")
    assert registry.get_approver("111111111111") is None
    with pytest.raises(InvalidRequest):
        registry.list_approvers(2, backend.connections.list_space(SPACE, None, 1, None).next_token or "x")


def test_the_guarded_registry_refuses_what_changed_since_read_and_writes_nothing(backend: Backend) -> None:
    registry = backend.registry
    at = isoformat(utcnow())

    def changed() -> AuditEvent:
        return registry_event(EventType.APPROVER_CHANGED, "oscar", at, "changed", account_id=ACCOUNT)

    def recorded() -> int:
        return len(backend.audit.query_events(EventQuery(actor="oscar"), 50, None).items)

    admin = Approver(accountId=ACCOUNT, email=ADMIN_EMAIL, subscriptionArn="arn:admin", **STAMP)
    unread = AddressSubscription(email=ADMIN_EMAIL, subscriptionArn="arn:admin", accounts=[ACCOUNT])
    # A first registration: no approver, no record yet
    registry.register_approver(admin, changed(), replacing=None, serving=[unread], released=[])
    record = registry.get_subscription(ADMIN_EMAIL)
    assert record == unread.model_copy(update={"version": 1})
    # The same reads again (another operator's, stale now) lose: the registration, or the record
    with pytest.raises(RegistryConflict):
        registry.register_approver(admin, changed(), replacing=None, serving=[record], released=[])
    with pytest.raises(RegistryConflict):
        registry.register_approver(admin, changed(), replacing=admin, serving=[unread], released=[])
    moved = Approver(accountId=ACCOUNT, email="new@example.com", **{**STAMP, "updatedAt": at})
    new = AddressSubscription(email="new@example.com", accounts=[ACCOUNT])
    with pytest.raises(RegistryConflict):  # the released address read before the first write
        registry.register_approver(moved, changed(), replacing=admin, serving=[new], released=[unread])
    stale = admin.model_copy(update={"updatedAt": "2026-01-01T00:00:00.000Z"})
    with pytest.raises(RegistryConflict):  # the registration read before another one
        registry.register_approver(
            moved, changed(), replacing=stale, serving=[new], released=[record.without(ACCOUNT)]
        )
    assert registry.get_approver(ACCOUNT) == admin and registry.get_subscription("new@example.com") is None
    assert recorded() == 1
    # Moving the account as read: both records change with it
    registry.register_approver(
        moved, changed(), replacing=admin, serving=[new], released=[record.without(ACCOUNT)]
    )
    assert registry.get_approver(ACCOUNT) == moved
    released = registry.get_subscription(ADMIN_EMAIL)
    assert released is not None and (released.accounts, released.version) == ([], 2)
    # Unregistering: as read, or not at all
    new_record = registry.get_subscription("new@example.com")
    assert new_record is not None and new_record.version == 1
    with pytest.raises(RegistryConflict):
        registry.unregister_approver(admin, changed(), released=[new_record.without(ACCOUNT)])
    with pytest.raises(RegistryConflict):
        registry.unregister_approver(moved, changed(), released=[new])
    registry.unregister_approver(moved, changed(), released=[new_record.without(ACCOUNT)])
    assert registry.get_approver(ACCOUNT) is None and recorded() == 3
    # A record is saved and forgotten at its version only
    with pytest.raises(RegistryConflict):
        registry.save_subscription(released.model_copy(update={"version": 1}))
    saved = registry.save_subscription(released.model_copy(update={"subscriptionArn": None}))
    assert saved.version == 3 and registry.get_subscription(ADMIN_EMAIL) == saved
    with pytest.raises(RegistryConflict):
        registry.forget_subscription(released)
    registry.forget_subscription(saved)
    assert registry.get_subscription(ADMIN_EMAIL) is None


def test_a_policy_changes_the_records_of_all_its_addresses_at_once_or_not_at_all(backend: Backend) -> None:
    registry = backend.registry
    at = isoformat(utcnow())

    def changed() -> AuditEvent:
        return registry_event(EventType.APPROVER_CHANGED, "oscar", at, "changed", account_id=ACCOUNT)

    def accounts(email: str) -> list[str] | None:
        record = registry.get_subscription(email)
        return None if record is None else record.accounts

    # Given a policy of two approvers and an escalation, registered with its three records
    policy = Approver(accountId=ACCOUNT, approvers=["a@example.com", "b@example.com"], quorum=2,
                      remindAfterSeconds=[3600], escalateAfterSeconds=7200, escalateTo=["c@example.com"],
                      subscriptionArn="arn:a", **STAMP)  # fmt: skip
    unread = [AddressSubscription(email=email, accounts=[ACCOUNT]) for email in policy.addresses()]
    registry.register_approver(policy, changed(), replacing=None, serving=unread, released=[])
    # Then it reads back whole, and every address finds it, the escalation's too
    assert registry.get_approver(ACCOUNT) == policy and policy.email == "a@example.com"
    assert [accounts(email) for email in policy.addresses()] == [[ACCOUNT]] * 3
    for email in policy.addresses():
        assert [found.accountId for found in registry.approvers_with_email(email)] == [ACCOUNT]
    assert registry.approvers_with_email("d@example.com") == []
    # When a narrower policy keeps a@ and drops b@ and c@, but read c@'s record before it existed
    narrower = Approver(accountId=ACCOUNT, email="a@example.com", subscriptionArn="arn:a",
                        **{**STAMP, "updatedAt": at})  # fmt: skip
    a, b, c = (registry.get_subscription(email) for email in policy.addresses())
    assert a is not None and b is not None and c is not None
    with pytest.raises(RegistryConflict):
        registry.register_approver(narrower, changed(), replacing=policy, serving=[a],
                                   released=[b.without(ACCOUNT), unread[2].without(ACCOUNT)])  # fmt: skip
    # Then nothing changed, no record and not the registration
    assert registry.get_approver(ACCOUNT) == policy
    assert [accounts(email) for email in policy.addresses()] == [[ACCOUNT]] * 3
    # And as read, every record changes with it
    registry.register_approver(narrower, changed(), replacing=policy, serving=[a],
                               released=[b.without(ACCOUNT), c.without(ACCOUNT)])  # fmt: skip
    assert registry.get_approver(ACCOUNT) == narrower
    assert [accounts(email) for email in policy.addresses()] == [[ACCOUNT], [], []]
    assert registry.approvers_with_email("b@example.com") == []
    # A policy changed meanwhile (the registration as first read) refuses the removal
    a = registry.get_subscription("a@example.com")
    assert a is not None
    with pytest.raises(RegistryConflict):
        registry.unregister_approver(policy, changed(), released=[a.without(ACCOUNT)])
    registry.unregister_approver(narrower, changed(), released=[a.without(ACCOUNT)])
    assert registry.get_approver(ACCOUNT) is None and accounts("a@example.com") == []


def test_a_new_link_gives_the_connection_token_the_principals_registered_now(backend: Backend) -> None:
    # Given a connection token that copied a list of principals whose proofs count
    connection = a_connection()
    _, held = token_for(connection, TokenKind.CONNECTION_TOKEN)
    held = held.model_copy(update={"approverPrincipals": ["arn:aws:iam::111122223333:role/Approver"]})
    admit(backend.registry, connection)
    backend.connections.create(connection, held, policy=PLAIN)
    # When a link goes out after the registration dropped the list
    link(backend, connection, held)
    # Then the connection token no longer carries it: the old list does not outlive the registration
    stored = backend.tokens.get(held.tokenHash)
    assert stored is not None and not stored.approverPrincipals


# ---- hash chains -------------------------------------------------------------------------------


def assert_chained(events: list[AuditEvent], chain: str) -> None:
    """``events`` (in any order) are the whole chain ``chain``: places 1..n, each linked to the one
    before, each hash the SHA-256 of its canonical form (docs/audit.md)."""
    ordered = sorted(events, key=lambda event: event.seq or 0)
    assert [event.seq for event in ordered] == list(range(1, len(ordered) + 1)), [e.type for e in ordered]
    previous = None
    for event in ordered:
        assert (event.chain, event.prevHash) == (chain, previous)
        assert event.hash == event_hash(event.model_dump(mode="json"))
        previous = event.hash


def test_every_kind_of_connection_event_is_chained_in_its_write(backend: Backend) -> None:
    # A request, its links, an approval that reaches the quorum, a role attached and one detached
    pending, connection_token = created(backend)
    link(backend, pending, connection_token, policy=QUORUM_2)
    second = link(backend, pending, connection_token, address="ops@example.com")
    rotated(backend, pending, connection_token)
    shown = ShownRequest.of(pending)
    one = Verdict(
        who=ADMIN_EMAIL, round=1, approval=approval(), needed=2, quorum=2, chain=head(backend, pending)
    )
    first_token = backend.connections.read(pending.connectionId)[1].links[ADMIN_EMAIL]
    after = backend.connections.record_decision(shown, one, token_hash=first_token)
    last = Verdict(who="ops@example.com", round=1, approval=approval("ops@example.com"), needed=1, quorum=2,
                   change=approve(pending, "ops@example.com"), before=tuple(after.approvals),
                   chain=head(backend, pending))  # fmt: skip
    approved = backend.connections.record_decision(shown, last, token_hash=second.tokenHash)
    backend.connections.attach_role(approved, recorded_role("BuildRole"), actor="system")
    backend.connections.detach_role(approved, recorded_role("BuildRole"), actor="alice")
    events = backend.connections.detail(pending.connectionId)[2]
    kinds = {event.type for event in events}
    assert {EventType.REQUESTED, EventType.LINK_SENT, EventType.CONNECTION_TOKEN_REPLACED,
            EventType.APPROVAL_RECORDED, EventType.STATUS_CHANGED, EventType.ROLE_ATTACHED,
            EventType.ROLE_DETACHED} <= kinds  # fmt: skip
    assert_chained(events, f"CONNECTION#{pending.connectionId}")
    # The connection's head is the chain's last event
    last_event = max(events, key=lambda event: event.seq or 0)
    assert backend.connections.get(pending.connectionId).chain_head == ChainHead(
        last_event.seq or 0, last_event.hash, last_event.at
    )


def test_two_writers_from_one_read_cannot_fork_the_chain(backend: Backend) -> None:
    pending, _ = created(backend)
    approved = backend.connections.transition(pending, approve(pending))
    one, other = (backend.connections.get(pending.connectionId) for _ in range(2))
    backend.connections.attach_role(one, recorded_role("BuildRole"), actor="system")
    # The other read the same head: its write is refused, and changes nothing
    with pytest.raises(ConnectionAlreadyDecided):
        backend.connections.attach_role(other, recorded_role("OtherRole"), actor="alice")
    assert backend.connections.get_role(pending.connectionId, "OtherRole") is None
    assert_chained(backend.connections.detail(approved.connectionId)[2], f"CONNECTION#{pending.connectionId}")


def test_registry_changes_are_chained_per_partition(backend: Backend) -> None:
    registry = backend.registry
    registry.put_space(Space(spaceId="chained", name="Chained", **STAMP),
                       registry_event(EventType.SPACE_CHANGED, "oscar", "2026-12-02T10:00:00.000Z",
                                      "named Chained", space_id="chained"))  # fmt: skip
    registry.put_member(Member(spaceId="chained", userId="alice", role=SpaceRole.POWER_USER, **STAMP),
                        registry_event(EventType.MEMBER_CHANGED, "oscar", "2026-12-02T10:00:01.000Z",
                                       "alice is POWER_USER", space_id="chained"))  # fmt: skip
    registry.delete_member(
        "chained",
        "alice",
        registry_event(
            EventType.MEMBER_REMOVED, "oscar", "2026-12-02T10:00:02.000Z", "alice removed", space_id="chained"
        ),
    )
    approver = Approver(accountId="999988887777", email="chain@example.com", **STAMP)
    registry.register_approver(approver, registry_event(
        EventType.APPROVER_CHANGED, "oscar", "2026-12-02T10:00:03.000Z", "policy", account_id="999988887777",
    ), replacing=None, serving=[AddressSubscription(email="chain@example.com", accounts=["999988887777"])],
        released=[])  # fmt: skip
    events = backend.audit.query_events(EventQuery(actor="oscar"), 100, None).items
    assert_chained([e for e in events if e.spaceId == "chained"], "REGISTRY#SPACE#chained")
    assert_chained([e for e in events if e.accountId == "999988887777"], "REGISTRY#ACCOUNT#999988887777")
