"""Requesters' use cases: create, list, read and cancel connection requests."""

from __future__ import annotations

import uuid
from datetime import timedelta

from account_connections.domain.access import Principal
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import (
    Connection,
    ConnectionDetail,
    ConnectionPage,
    CreateConnectionRequest,
    CreateConnectionResponse,
    RoleArn,
    ShownRequest,
    StatusChange,
)
from account_connections.domain.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    InvalidRequest,
    RegistryConflict,
    TaskAlreadyClosed,
    WorkflowUnavailable,
)
from account_connections.domain.limits import MAX_HISTORY_PAGE
from account_connections.domain.policy import (
    FIRST_ROUND,
    PLAIN,
    ApprovalPolicy,
    RegisteredPolicyDiffers,
    timers,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TOKEN_RETENTION, LinkToken, TokenKind, TokenState, new_token
from account_connections.logic import backoff
from account_connections.logic.access import require_space_role
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, MemberLookup, TokenStore, Workflow

WORKFLOW_NOT_STARTED = "the approval workflow could not be started"
# A replayed create reads again this many times when a link or another replay changed the request,
# after a short random pause each time (``logic.backoff``).
REPLAY_ATTEMPTS = 3
# A create is written again with the registered policy when it assumed another: this many writes
# at most (the policy would have to change between each two).
POLICY_ATTEMPTS = 3


def check_role_arns(account_id: str, role_arns: list[str], field: str = "roleArns") -> list[RoleArn]:
    """Each ARN must name a role in the connection's account, each role name once.
    Raises ``InvalidRequest`` naming the offending entry."""
    parsed: list[RoleArn] = []
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, arn in enumerate(role_arns):
        role = RoleArn.parse(arn)
        name = f"{field}[{index}]" if field == "roleArns" else field
        if role.account_id != account_id:
            problems.append({"field": name, "message": f"must be a role in account {account_id}"})
        elif role.name in seen:
            problems.append({"field": name, "message": f"role {role.name} is listed twice"})
        seen.add(role.name)
        parsed.append(role)
    if problems:
        raise InvalidRequest("a role cannot be attached to this connection", errors=problems)
    return parsed


def create_connection(
    connections: ConnectionStore,
    workflow: Workflow,
    principal: Principal,
    space_id: str,
    request: CreateConnectionRequest,
    *,
    approval_timeout_seconds: int,
    verify_base_url: str,
    correlation_id: str,
) -> CreateConnectionResponse:
    """Store the request with its connection token and start its approval workflow.

    The store's one write checks the caller's role in the space and the account's registration
    (nothing is read first): the request copies the plain policy's quorum, principals and timers
    unless the store answers with the registered policy, and then it is written again with that.

    Raises ``InvalidRequest`` (a role of another account), ``NotAuthorized`` (not a member, or a
    role that may not change the space), ``ApproverNotRegistered``, ``ConnectionAlreadyLive``,
    ``RegistryConflict`` (the policy changed at every attempt), ``WorkflowUnavailable``.
    """
    check_role_arns(request.accountId, request.roleArns)
    now = utcnow()
    expires = now + timedelta(seconds=approval_timeout_seconds)
    requested = Connection(
        connectionId=str(uuid.uuid4()),
        spaceId=space_id,
        accountId=request.accountId,
        displayName=request.displayName,
        description=request.description,
        roleArns=list(request.roleArns),
        status=ConnectionStatus.PENDING_APPROVAL,
        requestedBy=principal.sub,
        createdAt=isoformat(now),
        updatedAt=isoformat(now),
        expiresAt=isoformat(expires),
    )
    policy: ApprovalPolicy = PLAIN
    for _ in range(POLICY_ATTEMPTS):
        connection = requested.model_copy(update={"quorum": policy.quorum})
        token, token_hash = new_token()
        try:
            connection = connections.create(connection, LinkToken(
                tokenHash=token_hash, connectionId=connection.connectionId, kind=TokenKind.CONNECTION_TOKEN,
                createdAt=connection.createdAt, expiresAt=connection.expiresAt,
                ttl=int((expires + TOKEN_RETENTION).timestamp()),
                request=ShownRequest.of(connection), requesterEmail=principal.email,
                approverPrincipals=policy.approverPrincipals or None, quorum=policy.quorum,
            ), policy=policy)  # fmt: skip
        except RegisteredPolicyDiffers as differs:
            policy = differs.policy  # nothing was written: again, with the policy as registered
            continue
        break
    else:
        raise RegistryConflict(
            f"the approval policy of account {request.accountId} kept changing while the request was "
            "stored; try again"
        )
    # The policy's timers, as the workflow runs them: it waits with the current one, and each that
    # fires (a reminder, the escalation) makes it wait anew with the next, until the last closes
    # the approval window.
    schedule = [timer.model_dump() for timer in timers(policy, approval_timeout_seconds)]
    try:
        workflow.start(
            connection.connectionId,
            {
                "connectionId": connection.connectionId,
                "approvalTimeoutSeconds": approval_timeout_seconds,
                "timers": {"current": schedule[0], "next": 1, "fired": FIRST_ROUND.model_dump()},
                "schedule": schedule,
                "verifyBaseUrl": verify_base_url,
                "correlationId": correlation_id,
                "requestedAt": connection.createdAt,
            },
        )
    except Exception as exc:
        # A request nobody can approve must not stay pending: record why and tell the caller.
        logger.exception("approval workflow did not start", extra={"connection_id": connection.connectionId})
        connections.transition(connection, StatusChange(
            ConnectionStatus.FAILED, "system", detail=WORKFLOW_NOT_STARTED, reason=WORKFLOW_NOT_STARTED
        ))  # fmt: skip
        raise WorkflowUnavailable("the approval workflow could not be started; try again later") from exc
    metrics.add_metric(name="ConnectionsRequested", unit="Count", value=1)
    logger.info(
        "connection requested", extra={"connection_id": connection.connectionId, "space_id": space_id}
    )
    return CreateConnectionResponse(**connection.model_dump(), connectionToken=token)


def in_space(connection: Connection, space_id: str) -> Connection:
    """``connection`` if it is the space's. Raises ``ConnectionNotFound``."""
    if connection.spaceId != space_id:
        # Another space's connection is reported exactly like a missing one.
        raise ConnectionNotFound(f"connection {connection.connectionId} does not exist")
    return connection


def list_connections(
    connections: ConnectionStore,
    space_id: str,
    status: ConnectionStatus | None,
    limit: int,
    next_token: str | None,
) -> ConnectionPage:
    page = connections.list_space(space_id, status, limit, next_token)
    return ConnectionPage(items=page.items, nextToken=page.next_token)


def get_connection(
    connections: ConnectionStore,
    space_id: str,
    connection_id: str,
    *,
    history_limit: int = MAX_HISTORY_PAGE,
    history_next_token: str | None = None,
) -> ConnectionDetail:
    """The connection with its roles and one page of its history (oldest first; the first page
    unless ``history_next_token``). Raises ``ConnectionNotFound``, ``InvalidRequest`` (a foreign
    history token)."""
    connection, roles, history = connections.detail_page(connection_id, history_limit, history_next_token)
    in_space(connection, space_id)
    return ConnectionDetail(**connection.model_dump(), roles=roles, history=history.items,
                            historyNextToken=history.next_token)  # fmt: skip


def cancel_connection(
    connections: ConnectionStore, workflow: Workflow, principal: Principal, space_id: str, connection_id: str
) -> Connection:
    """Pending -> CANCELLED (the workflow ends, every link dies); verified -> DISCONNECTED.

    Raises ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (any other status, or a race lost).
    """
    connection, secrets = connections.read(connection_id)
    in_space(connection, space_id)
    if connection.status == ConnectionStatus.PENDING_APPROVAL:
        cancelled = connections.transition(connection, StatusChange(
            ConnectionStatus.CANCELLED, principal.sub, detail="cancelled by the requester",
            reason=f"cancelled by {principal.sub}",
        ))  # fmt: skip
        # Links check the connection's status, so they died with the transition. The workflow
        # ends now if it already waits; if not, its notify step finds the request not pending.
        task_token = _task_token(connections, connection_id, secrets.task_token)
        if task_token:
            try:
                workflow.fail(task_token, "Cancelled", f"cancelled by {principal.sub}")
            except TaskAlreadyClosed:
                logger.info("workflow already closed at cancel", extra={"connection_id": connection_id})
        logger.info("connection cancelled", extra={"connection_id": connection_id})
        return cancelled
    if connection.status == ConnectionStatus.VERIFIED:
        disconnected = connections.transition(connection, StatusChange(
            ConnectionStatus.DISCONNECTED, principal.sub, detail="disconnected by the requester",
            disconnectedAt=isoformat(utcnow()),
        ))  # fmt: skip
        metrics.add_metric(name="ConnectionsDisconnected", unit="Count", value=1)
        return disconnected
    raise ConnectionAlreadyDecided(
        f"a {connection.status} connection can be neither cancelled nor disconnected"
    )


def _task_token(connections: ConnectionStore, connection_id: str, read: str | None) -> str | None:
    """The task token the workflow waits with: as read, or (the notify step may have stored it
    between the read and the cancel) as stored now."""
    if read:
        return read
    try:
        return connections.read(connection_id)[1].task_token
    except ConnectionNotFound:
        return None


def replay_create(
    connections: ConnectionStore,
    tokens: TokenStore,
    members: MemberLookup,
    principal: Principal,
    stored: CreateConnectionResponse,
) -> CreateConnectionResponse:
    """The answer to a create replayed with its Idempotency-Key and body: the stored response
    (kept without its connection token) with a new connection token that replaces the first. The
    caller lost the first response, and only one connection token is ever live, so the first one
    answers 410 from now on. A connection no longer pending has nothing to decide: the answer
    carries no token (``connectionToken`` empty).

    The new token carries the old one's copies (the request as shown, the addresses, the waiting
    workflow's task token and CSRF secret), read with the connection: the swap is conditional on
    the connection still pending with that connection token and link, else it reads again.

    Only a caller who may still change the space is answered: the swap checks it in its write;
    an answer without a token (nothing is written) reads the caller's role first.
    Raises ``NotAuthorized``, ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (changed at
    every attempt).
    """
    for _ in backoff.attempts(REPLAY_ATTEMPTS):
        connection, secrets = connections.read(stored.connectionId)
        held = tokens.get(secrets.connection_token_hash) if secrets.connection_token_hash else None
        log = {"connection_id": connection.connectionId, "status": connection.status}
        if connection.status != ConnectionStatus.PENDING_APPROVAL or held is None:
            require_space_role(members, principal, connection.spaceId, mutate=True)
            logger.info("create replayed after the request left pending", extra=log)
            return stored.model_copy(update={"connectionToken": ""})
        token, token_hash = new_token()
        fresh = held.model_copy(update={"tokenHash": token_hash, "state": TokenState.ACTIVE,
                                        "createdAt": isoformat(utcnow())})  # fmt: skip
        try:
            connections.rotate_connection_token(connection, fresh, secrets=secrets, actor=principal.sub)
        except ConnectionAlreadyDecided:
            continue  # a decision, a new link or another replay came first: read again
        logger.info(
            "create replayed: connection token replaced", extra={"connection_id": connection.connectionId}
        )
        return stored.model_copy(update={"connectionToken": token})
    raise ConnectionAlreadyDecided(
        "the request kept changing while its connection token was replaced; try again"
    )
