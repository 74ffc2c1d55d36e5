"""The administrator's side of a request: the verification page and the decision.

A page view never writes: it reads the token's item, then the connection (two reads; one when
the token's own item already says it was used or replaced). A decision reads only its token's
item, which keeps the request as shown, the address the link went to, and copies of the task
token and CSRF secret; then one transaction (consume the token, move the connection out of
PENDING_APPROVAL with who and when, provided it is still pending with the version and digest
shown, append the event), then the answer to the waiting workflow: three AWS calls. The
connection is read only to explain a refusal. Both refuse a token that is unknown (404) or no
longer usable (410, saying why).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from account_connections.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DecisionFormStale,
    DecisionNotReady,
    DomainError,
    InvalidRequest,
    TaskAlreadyClosed,
    VerificationTokenGone,
    VerificationTokenNotFound,
)
from account_connections.models import (
    Connection,
    DecisionRequest,
    ShownRequest,
    isoformat,
    request_digest,
    utcnow,
)
from account_connections.observability import logger, metrics
from account_connections.repository import Repository, Transition
from account_connections.statuses import ConnectionStatus
from account_connections.tokens import hash_token, sign, verify_signature
from account_connections.workflow import ApprovalWorkflow

GoneReason = Literal["used", "expired", "cancelled", "replaced"]
MAX_TOKEN_LENGTH = 512
ALREADY_DECIDED = "This request was already decided: only the first decision counts."
WINDOW_CLOSED = "the approval arrived after the workflow stopped waiting (the approval window closed)"
UNKNOWN = "This link is not known: check that it was copied whole."
STALE_FORM = "this form no longer matches the request: open the link again and decide anew"
CHANGED = "the request changed after this link was sent: ask the requester to send a new link"
NOT_READY = "the approval workflow is still starting: try again in a moment"
_RETIRED: dict[str, GoneReason] = {"REPLACED": "replaced", "USED": "used"}

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


def _retired(token_state: str) -> GoneReason | None:
    """Why a token no longer works, as far as its own item says."""
    return _RETIRED.get(token_state)


def _gone_reason(token_state: str, connection: Connection) -> GoneReason | None:
    """Why a token no longer works, from its state and its connection's."""
    retired = _retired(token_state)
    if retired is not None:
        return retired
    if connection.status == ConnectionStatus.CANCELLED:
        return "cancelled"
    if connection.status == ConnectionStatus.EXPIRED or utcnow() >= datetime.fromisoformat(
        connection.expiresAt
    ):
        return "expired"
    if connection.status != ConnectionStatus.PENDING_APPROVAL or token_state != "ACTIVE":
        return "used"
    return None


def _token_item(repo: Repository, token: str) -> tuple[str, dict[str, Any]]:
    """The token's hash and its stored item. Raises ``VerificationTokenNotFound``."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise VerificationTokenNotFound(UNKNOWN)
    token_hash = hash_token(token)
    item = repo.get_token(token_hash)
    if item is None:
        raise VerificationTokenNotFound(UNKNOWN)
    return token_hash, item


def _connection_of(repo: Repository, item: dict[str, Any]) -> Connection:
    try:
        return repo.get_connection(str(item["connectionId"]))
    except ConnectionNotFound as exc:
        raise VerificationTokenNotFound(UNKNOWN) from exc


def _csrf(item: dict[str, Any], token_hash: str, digest: str) -> str | None:
    secret = item.get("csrfSecret")
    return sign(str(secret), f"{token_hash}:{digest}") if secret else None


def view_page(repo: Repository, token: str) -> VerificationView:
    """The confirmation page's content: the connection as it stands. Reads only.

    Raises ``VerificationTokenNotFound`` (404) and ``VerificationTokenGone`` (410).
    """
    token_hash, item = _token_item(repo, token)
    state = str(item.get("state"))
    retired = _retired(state)  # a used or replaced link says so from its own item
    if retired is not None:
        raise VerificationTokenGone(_GONE_DETAIL[retired], retired)
    connection = _connection_of(repo, item)
    reason = _gone_reason(state, connection)
    if reason is not None:
        raise VerificationTokenGone(_GONE_DETAIL[reason], reason)
    digest = request_digest(connection)
    return VerificationView(token=token, csrf=_csrf(item, token_hash, digest), connection=connection,
                            requestDigest=digest)  # fmt: skip


def _refusal(repo: Repository, item: dict[str, Any], otherwise: DomainError) -> DomainError:
    """What a refused decision answers: a link that no longer works says so (``used`` is a second
    decision: 409), else ``otherwise``. Reads the connection: refusals only."""
    reason = _gone_reason(str(item.get("state")), _connection_of(repo, item))
    if reason == "used":
        return ConnectionAlreadyDecided(ALREADY_DECIDED)
    if reason is not None:
        return VerificationTokenGone(_GONE_DETAIL[reason], reason)
    return otherwise


def decide(
    repo: Repository, workflow: ApprovalWorkflow, request: DecisionRequest, *, csrf: str | None, form: bool
) -> DecisionOutcome:
    """Record the administrator's decision and answer the waiting workflow.

    Reads only the token's item: the request as shown, the administrator's address, the task
    token and the CSRF secret are on it. The transaction requires the token ``ACTIVE`` and the
    connection ``PENDING_APPROVAL`` with the version and ``requestDigest`` shown, so one decision
    wins and a request that changed since is refused. ``form`` decisions must carry the CSRF token
    of the page as shown: it binds the token and the request's digest. Raises
    ``VerificationTokenNotFound``, ``VerificationTokenGone``, ``InvalidRequest``,
    ``DecisionFormStale``, ``DecisionNotReady``, ``ConnectionAlreadyDecided`` (a second decision,
    concurrent or later) and ``TaskAlreadyClosed`` (an approval after the window closed).
    """
    token_hash, item = _token_item(repo, request.token)
    task_token = item.get("taskToken")
    if (
        item.get("state") != "ACTIVE"
        or not task_token
        or "request" not in item
        or utcnow() >= datetime.fromisoformat(str(item["expiresAt"]))
    ):
        # Used, replaced or expired; or the workflow has not sent its first link yet.
        raise _refusal(repo, item, DecisionNotReady(NOT_READY))
    shown = ShownRequest.model_validate(item["request"])
    digest = request_digest(shown)
    if form:
        if not csrf:
            raise _refusal(repo, item, InvalidRequest("the form is missing its CSRF token",
                           errors=[{"field": "csrf", "message": "is required"}]))  # fmt: skip
        secret = item.get("csrfSecret")
        if not secret or not verify_signature(str(secret), f"{token_hash}:{digest}", csrf):
            raise _refusal(repo, item, DecisionFormStale(STALE_FORM))
    reason = (request.reason or "").strip() or None
    if request.decision == "reject" and reason is None:
        raise _refusal(repo, item, InvalidRequest("say why the request is rejected",
                       errors=[{"field": "reason", "message": "is required to reject"}]))  # fmt: skip
    # The address the link went to. A link resent while no administrator was registered has none.
    decided_by = str(item.get("approverEmail") or f"administrator of account {shown.accountId}")
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
            shown.pending(),
            ConnectionStatus.APPROVED if approve else ConnectionStatus.REJECTED,
            decided_by,
            Transition(set_fields=fields, detail=detail, expect={"requestDigest": digest},
                       extra_items=[repo.retire_token_op(token_hash, "USED", require_active=True)]),
        )  # fmt: skip
    except ConnectionAlreadyDecided as exc:
        # Another decision, a cancel, a resend or the expiry got there first; or (the token still
        # active, the request still pending) the request is no longer the one shown.
        raise _refusal(repo, repo.get_token(token_hash) or item, DecisionFormStale(CHANGED)) from exc
    logger.info(
        "decision recorded", extra={"connection_id": shown.connectionId, "decision": request.decision}
    )
    metrics.add_metric(
        name="ConnectionsApproved" if approve else "ConnectionsRejected", unit="Count", value=1
    )
    waited = datetime.fromisoformat(decided_at) - datetime.fromisoformat(shown.createdAt)
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
            logger.info("workflow closed before the rejection", extra={"connection_id": shown.connectionId})
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
