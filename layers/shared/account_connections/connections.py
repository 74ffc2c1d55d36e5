"""Requesters' logic: create, list, read and cancel connection requests.

Takes and returns models; receives its ports (repository, workflow) as arguments.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from account_connections.authz import Principal
from account_connections.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    InvalidRequest,
    TaskAlreadyClosed,
    WorkflowUnavailable,
)
from account_connections.models import (
    AuditEvent,
    Connection,
    ConnectionDetail,
    ConnectionPage,
    CreateConnectionRequest,
    CreateConnectionResponse,
    EventType,
    RoleArn,
    ShownRequest,
    isoformat,
    utcnow,
)
from account_connections.observability import logger, metrics
from account_connections.repository import Repository, Transition
from account_connections.statuses import ConnectionStatus
from account_connections.tokens import new_token
from account_connections.workflow import ApprovalWorkflow

CONNECTION_TOKEN = "CONNECTION_TOKEN"
LINK = "LINK"
# Retired links are kept this long past their expiry, so that they answer 410 rather than 404.
TOKEN_RETENTION = timedelta(days=30)


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


def token_item(
    token_hash: str, connection_id: str, kind: str, created_at: str, expires_at: str, ttl: int, **extra: Any
) -> dict[str, Any]:
    """A ``TOKEN#<hash>`` item. ``extra`` carries what a decision reads from it alone: the request as
    shown (``request``), the administrator's address (``approverEmail``) and, once the workflow
    waits, ``taskToken`` and ``csrfSecret`` (see links.py)."""
    return {
        "pk": f"TOKEN#{token_hash}", "sk": "TOKEN", "connectionId": connection_id, "kind": kind,
        "state": "ACTIVE", "createdAt": created_at, "expiresAt": expires_at, "ttl": ttl, **extra,
    }  # fmt: skip


def create_connection(
    repo: Repository,
    workflow: ApprovalWorkflow,
    principal: Principal,
    space_id: str,
    request: CreateConnectionRequest,
    *,
    approval_timeout_seconds: int,
    verify_base_url: str,
    correlation_id: str,
) -> CreateConnectionResponse:
    """Store the request with its connection token and start its approval workflow.

    Raises ``InvalidRequest`` (a role of another account), ``ApproverNotRegistered``,
    ``ConnectionAlreadyLive``, ``WorkflowUnavailable``.
    """
    check_role_arns(request.accountId, request.roleArns)
    approver = repo.get_approver(request.accountId)
    if approver is None:
        raise ApproverNotRegistered(
            f"no administrator is registered for account {request.accountId}: ask an operator to register one"
        )
    now = utcnow()
    expires = now + timedelta(seconds=approval_timeout_seconds)
    connection = Connection(
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
    token, token_hash = new_token()
    event = AuditEvent(
        eventId=f"{connection.version:06d}",
        connectionId=connection.connectionId,
        spaceId=space_id,
        accountId=request.accountId,
        type=EventType.REQUESTED,
        actor=principal.sub,
        at=connection.createdAt,
        toStatus=ConnectionStatus.PENDING_APPROVAL,
        detail=f"requested by {principal.sub}",
    )
    ttl = int((expires + TOKEN_RETENTION).timestamp())
    repo.create_connection(
        connection,
        event,
        connection_token_hash=token_hash,
        token_item=token_item(
            token_hash,
            connection.connectionId,
            CONNECTION_TOKEN,
            connection.createdAt,
            connection.expiresAt,
            ttl,
            request=ShownRequest.of(connection).model_dump(exclude_none=True),
            approverEmail=approver.email,
        ),
    )
    try:
        workflow.start(
            connection.connectionId,
            {
                "connectionId": connection.connectionId,
                "approvalTimeoutSeconds": approval_timeout_seconds,
                "verifyBaseUrl": verify_base_url,
                "correlationId": correlation_id,
                "requestedAt": connection.createdAt,
            },
        )
    except Exception as exc:
        # A request nobody can approve must not stay pending: record why and tell the caller.
        logger.exception("approval workflow did not start", extra={"connection_id": connection.connectionId})
        repo.transition(connection, ConnectionStatus.FAILED, "system",
                        Transition(set_fields={"reason": "the approval workflow could not be started"},
                                   detail="the approval workflow could not be started"))  # fmt: skip
        raise WorkflowUnavailable("the approval workflow could not be started; try again later") from exc
    metrics.add_metric(name="ConnectionsRequested", unit="Count", value=1)
    logger.info(
        "connection requested", extra={"connection_id": connection.connectionId, "space_id": space_id}
    )
    return CreateConnectionResponse(**connection.model_dump(), connectionToken=token)


def _in_space(connection: Connection, space_id: str) -> Connection:
    if connection.spaceId != space_id:
        # Another space's connection is reported exactly like a missing one.
        raise ConnectionNotFound(f"connection {connection.connectionId} does not exist")
    return connection


def list_connections(
    repo: Repository, space_id: str, status: ConnectionStatus | None, limit: int, next_token: str | None
) -> ConnectionPage:
    page = repo.list_space_connections(space_id, status, limit, next_token)
    items = [Connection.model_validate(item) for item in page.items]
    return ConnectionPage(items=items, nextToken=page.next_token)


def get_connection(repo: Repository, space_id: str, connection_id: str) -> ConnectionDetail:
    """Raises ``ConnectionNotFound``."""
    connection, roles, history = repo.get_connection_detail(connection_id)
    _in_space(connection, space_id)
    return ConnectionDetail(**connection.model_dump(), roles=roles, history=history)


def cancel_connection(
    repo: Repository, workflow: ApprovalWorkflow, principal: Principal, space_id: str, connection_id: str
) -> Connection:
    """Pending -> CANCELLED (the workflow ends, every link dies); verified -> DISCONNECTED.

    Raises ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (any other status, or a race lost).
    """
    connection = _in_space(repo.get_connection(connection_id), space_id)
    if connection.status == ConnectionStatus.PENDING_APPROVAL:
        cancelled = repo.transition(
            connection, ConnectionStatus.CANCELLED, principal.sub,
            Transition(set_fields={"reason": f"cancelled by {principal.sub}"},
                       detail="cancelled by the requester"),
        )  # fmt: skip
        # Links check the connection's status, so they died with the transition. The workflow
        # ends now if it already waits; if not, its notify step finds the request not pending.
        stored = repo.get_connection_item(connection_id) or {}
        task_token = stored.get("taskToken")
        if task_token:
            try:
                workflow.fail(task_token, "Cancelled", f"cancelled by {principal.sub}")
            except TaskAlreadyClosed:
                logger.info("workflow already closed at cancel", extra={"connection_id": connection_id})
        logger.info("connection cancelled", extra={"connection_id": connection_id})
        return cancelled
    if connection.status == ConnectionStatus.VERIFIED:
        disconnected = repo.transition(
            connection, ConnectionStatus.DISCONNECTED, principal.sub,
            Transition(set_fields={"disconnectedAt": isoformat(utcnow())},
                       detail="disconnected by the requester"),
        )  # fmt: skip
        metrics.add_metric(name="ConnectionsDisconnected", unit="Count", value=1)
        return disconnected
    raise ConnectionAlreadyDecided(
        f"a {connection.status} connection can be neither cancelled nor disconnected"
    )
