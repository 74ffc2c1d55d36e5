"""Audit events: one per change of a connection, or of the registry of spaces, members and
administrators (which names its space or its account and no connection)."""

from __future__ import annotations

import uuid
from enum import StrEnum

from account_connections.domain.fields import Model
from account_connections.domain.statuses import ConnectionStatus


class EventType(StrEnum):
    REQUESTED = "REQUESTED"
    STATUS_CHANGED = "STATUS_CHANGED"
    LINK_SENT = "LINK_SENT"
    LINK_REVOKED = "LINK_REVOKED"
    # The approval policy at work: an undecided approver's reminder (a new link), the escalation
    # to the policy's escalateTo, and each approver's approval (the one that reaches the quorum is
    # followed by the status change, in the same write).
    REMINDED = "REMINDED"
    ESCALATED = "ESCALATED"
    APPROVAL_RECORDED = "APPROVAL_RECORDED"
    ROLE_ATTACHED = "ROLE_ATTACHED"
    ROLE_REJECTED = "ROLE_REJECTED"
    ROLE_DETACHED = "ROLE_DETACHED"
    # A create replayed with its Idempotency-Key: a new connection token replaced the first.
    CONNECTION_TOKEN_REPLACED = "CONNECTION_TOKEN_REPLACED"
    # Operators' changes to the registry: they belong to no connection.
    SPACE_CHANGED = "SPACE_CHANGED"
    MEMBER_CHANGED = "MEMBER_CHANGED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    APPROVER_CHANGED = "APPROVER_CHANGED"
    APPROVER_REMOVED = "APPROVER_REMOVED"


class AuditEvent(Model):
    """One recorded change: of a connection, or (``connectionId`` None) of the registry of spaces,
    members and administrators, which names its space or its account."""

    eventId: str
    connectionId: str | None = None
    spaceId: str | None = None
    accountId: str | None = None
    type: EventType
    actor: str
    at: str
    fromStatus: ConnectionStatus | None = None
    toStatus: ConnectionStatus | None = None
    detail: str | None = None
    # A decision's (APPROVAL_RECORDED, and the status change of a rejection or the quorum): how the
    # decider showed their authority, EMAIL_LINK or ACCOUNT_PROOF.
    decisionMethod: str | None = None
    # Its place in its hash chain (domain.chain): the chain, its position from 1, the hash of the
    # event before it (null for the first) and its own, all set by the store that writes it.
    chain: str | None = None
    seq: int | None = None
    prevHash: str | None = None
    hash: str | None = None


def chain_of(event: AuditEvent) -> str:
    """The chain ``event`` belongs to: its connection's, or its registry partition's."""
    if event.connectionId is not None:
        return f"CONNECTION#{event.connectionId}"
    return f"REGISTRY#SPACE#{event.spaceId}" if event.spaceId else f"REGISTRY#ACCOUNT#{event.accountId}"


class AuditEventPage(Model):
    items: list[AuditEvent]
    nextToken: str | None = None


def registry_event(
    event_type: EventType, actor: str, at: str, detail: str, *, space_id: str | None = None,
    account_id: str | None = None,
) -> AuditEvent:  # fmt: skip
    """An operator's change of a space, a member or an administrator."""
    return AuditEvent(eventId=uuid.uuid4().hex, type=event_type, actor=actor, at=at, detail=detail,
                      spaceId=space_id, accountId=account_id)  # fmt: skip
