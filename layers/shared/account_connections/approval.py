"""The administrator's side of a request: the verification page and the decision.

A page view never writes. A decision is one transaction (consume the token, move the connection
out of PENDING_APPROVAL with who and when, append the event), then the answer to the waiting
workflow. Both refuse a token that is unknown (404) or no longer usable (410, saying why).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from account_connections.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DecisionFormStale,
    DecisionNotReady,
    InvalidRequest,
    TaskAlreadyClosed,
    VerificationTokenGone,
    VerificationTokenNotFound,
)
from account_connections.models import Connection, DecisionRequest, isoformat, utcnow
from account_connections.observability import logger, metrics
from account_connections.repository import Repository, Transition
from account_connections.statuses import ConnectionStatus
from account_connections.tokens import hash_token, sign, verify_signature
from account_connections.workflow import ApprovalWorkflow

GoneReason = Literal["used", "expired", "cancelled", "replaced"]
MAX_TOKEN_LENGTH = 512
ALREADY_DECIDED = "This request was already decided: only the first decision counts."
WINDOW_CLOSED = "the approval arrived after the workflow stopped waiting (the approval window closed)"

_GONE_DETAIL: dict[str, str] = {
    "used": "This link was already used: the request has been decided.",
    "expired": "This link expired: the approval window for this request has closed.",
    "cancelled": "The requester cancelled this request, so there is nothing left to decide.",
    "replaced": "A newer link was sent for this request: use the link in the most recent email.",
}


class VerificationView(BaseModel):
    """What the confirmation page shows, and the form's hidden fields."""

    token: str
    csrf: str | None
    connection: Connection
    requestDigest: str


class DecisionOutcome(BaseModel):
    """What ``POST /verify`` answers."""

    connectionId: str
    spaceId: str
    accountId: str
    displayName: str
    decision: Literal["approve", "reject"]
    status: ConnectionStatus
    decidedBy: str
    decidedAt: str
    paidTiersAuthorized: bool | None = None
    reason: str | None = None


def request_digest(connection: Connection) -> str:
    """SHA-256 over what the administrator is asked to approve: the verification step compares
    it with the digest the decision carried, so a request that changed since it was shown fails."""
    shown = {
        "connectionId": connection.connectionId,
        "spaceId": connection.spaceId,
        "accountId": connection.accountId,
        "displayName": connection.displayName,
        "description": connection.description,
        "roleArns": connection.roleArns,
        "requestedBy": connection.requestedBy,
        "expiresAt": connection.expiresAt,
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _gone_reason(token_state: str, connection: Connection) -> GoneReason | None:
    if token_state == "REPLACED":
        return "replaced"
    if token_state == "USED":
        return "used"
    if connection.status == ConnectionStatus.CANCELLED:
        return "cancelled"
    if connection.status == ConnectionStatus.EXPIRED or utcnow() >= datetime.fromisoformat(
        connection.expiresAt
    ):
        return "expired"
    if connection.status != ConnectionStatus.PENDING_APPROVAL or token_state != "ACTIVE":
        return "used"
    return None


def _open(repo: Repository, token: str) -> tuple[str, Connection, dict[str, Any]]:
    """The token's hash, its connection and the stored connection item (with its internals).

    Raises ``VerificationTokenNotFound`` and ``VerificationTokenGone``.
    """
    unknown = VerificationTokenNotFound("This link is not known: check that it was copied whole.")
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise unknown
    token_hash = hash_token(token)
    item = repo.get_token(token_hash)
    stored = repo.get_connection_item(str(item["connectionId"])) if item else None
    if item is None or stored is None:
        raise unknown
    try:
        connection = repo.get_connection(str(item["connectionId"]))
    except ConnectionNotFound as exc:
        raise unknown from exc
    reason = _gone_reason(str(item.get("state")), connection)
    if reason is not None:
        raise VerificationTokenGone(_GONE_DETAIL[reason], reason)
    return token_hash, connection, stored


def _csrf(stored: dict[str, Any], token_hash: str, digest: str) -> str | None:
    secret = stored.get("csrfSecret")
    return sign(str(secret), f"{token_hash}:{digest}") if secret else None


def view_page(repo: Repository, token: str) -> VerificationView:
    """The confirmation page's content. Reads only.

    Raises ``VerificationTokenNotFound`` (404) and ``VerificationTokenGone`` (410).
    """
    token_hash, connection, stored = _open(repo, token)
    digest = request_digest(connection)
    return VerificationView(token=token, csrf=_csrf(stored, token_hash, digest), connection=connection,
                            requestDigest=digest)  # fmt: skip


def decide(
    repo: Repository, workflow: ApprovalWorkflow, request: DecisionRequest, *, csrf: str | None, form: bool
) -> DecisionOutcome:
    """Record the administrator's decision and answer the waiting workflow.

    ``form`` decisions must carry the CSRF token of the page as shown: it binds the token and
    the request's digest, so a request that changed since is refused. Raises
    ``VerificationTokenNotFound``, ``VerificationTokenGone``, ``InvalidRequest``,
    ``DecisionFormStale``, ``DecisionNotReady``, ``ConnectionAlreadyDecided`` (a second decision,
    concurrent or later) and ``TaskAlreadyClosed`` (an approval after the window closed).
    """
    try:
        token_hash, connection, stored = _open(repo, request.token)
    except VerificationTokenGone as exc:
        if exc.reason == "used":
            raise ConnectionAlreadyDecided(ALREADY_DECIDED) from exc
        raise
    digest = request_digest(connection)
    if form:
        if not csrf:
            raise InvalidRequest("the form is missing its CSRF token",
                                 errors=[{"field": "csrf", "message": "is required"}])  # fmt: skip
        expected_secret = stored.get("csrfSecret")
        if not expected_secret or not verify_signature(str(expected_secret), f"{token_hash}:{digest}", csrf):
            raise DecisionFormStale(
                "this form no longer matches the request: open the link again and decide anew"
            )
    reason = (request.reason or "").strip() or None
    if request.decision == "reject" and reason is None:
        raise InvalidRequest("say why the request is rejected",
                             errors=[{"field": "reason", "message": "is required to reject"}])  # fmt: skip
    task_token = stored.get("taskToken")
    if not task_token:
        raise DecisionNotReady("the approval workflow is still starting: try again in a moment")
    approver = repo.get_approver(connection.accountId)
    decided_by = approver.email if approver else f"administrator of account {connection.accountId}"
    decided_at = isoformat(utcnow())
    approve = request.decision == "approve"
    fields: dict[str, Any] = {"decidedBy": decided_by, "decidedAt": decided_at}
    if approve:
        fields["paidTiersAuthorized"] = request.authorizePaidTiers
        detail = f"approved by {decided_by}" + (" with paid tiers" if request.authorizePaidTiers else "")
    else:
        fields["reason"] = reason
        detail = f"rejected by {decided_by}: {reason}"
    try:
        decided = repo.transition(
            connection,
            ConnectionStatus.APPROVED if approve else ConnectionStatus.REJECTED,
            decided_by,
            Transition(set_fields=fields, detail=detail,
                       extra_items=[repo.retire_token_op(token_hash, "USED", require_active=True)]),
        )  # fmt: skip
    except ConnectionAlreadyDecided as exc:
        # Another decision (or a cancel, or the expiry) got there first.
        raise ConnectionAlreadyDecided(ALREADY_DECIDED) from exc
    logger.info(
        "decision recorded", extra={"connection_id": connection.connectionId, "decision": request.decision}
    )
    metrics.add_metric(
        name="ConnectionsApproved" if approve else "ConnectionsRejected", unit="Count", value=1
    )
    waited = datetime.fromisoformat(decided_at) - datetime.fromisoformat(connection.createdAt)
    metrics.add_metric(name="TimeToDecision", unit="Seconds", value=round(waited.total_seconds(), 3))
    try:
        if approve:
            workflow.succeed(str(task_token), {
                "authorizePaidTiers": request.authorizePaidTiers,
                "decidedBy": decided_by,
                "decidedAt": decided_at,
                "requestDigest": digest,
            })  # fmt: skip
        else:
            workflow.fail(str(task_token), "Rejected", str(reason))
    except TaskAlreadyClosed:
        if not approve:
            # The rejection stands as recorded; the workflow had already ended on its own.
            logger.info(
                "workflow closed before the rejection", extra={"connection_id": connection.connectionId}
            )
        else:
            _fail_late_approval(repo, decided)
            raise
    return DecisionOutcome(
        connectionId=decided.connectionId, spaceId=decided.spaceId, accountId=decided.accountId,
        displayName=decided.displayName, decision=request.decision, status=decided.status,
        decidedBy=decided_by, decidedAt=decided_at, paidTiersAuthorized=decided.paidTiersAuthorized,
        reason=decided.reason,
    )  # fmt: skip


def _fail_late_approval(repo: Repository, approved: Connection) -> None:
    """An approval the workflow can no longer act on must not stay APPROVED forever."""
    logger.warning("approval reached a closed workflow", extra={"connection_id": approved.connectionId})
    try:
        repo.transition(approved, ConnectionStatus.FAILED, "system",
                        Transition(set_fields={"reason": WINDOW_CLOSED}, detail=WINDOW_CLOSED))  # fmt: skip
    except ConnectionAlreadyDecided:
        logger.info("late approval already recorded", extra={"connection_id": approved.connectionId})
