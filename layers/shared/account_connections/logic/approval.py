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

from pydantic import Field

from account_connections.domain.chain import ChainHead
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import (
    Approval,
    Connection,
    DecisionMethod,
    DecisionRequest,
    ShownRequest,
    StatusChange,
    request_digest,
)
from account_connections.domain.errors import (
    ApprovalsMoved,
    ApproverAlreadyDecided,
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DecisionFormStale,
    DecisionNotReady,
    DomainError,
    InvalidRequest,
    NotAuthorized,
    TaskAlreadyClosed,
    VerificationTokenGone,
    VerificationTokenNotFound,
)
from account_connections.domain.fields import Model
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import (
    LinkToken,
    TokenKind,
    TokenState,
    hash_token,
    sign,
    verify_signature,
)
from account_connections.logic import backoff
from account_connections.logic.authority import Decider, decider, proof_needed, proof_notice
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, Mailer, ProofVerifier, TokenStore, Verdict, Workflow

GoneReason = Literal["used", "expired", "cancelled", "replaced", "revoked"]
MAX_TOKEN_LENGTH = 512
ALREADY_DECIDED = "This request was already decided: only the first decision counts."
WINDOW_CLOSED = "the approval arrived after the workflow stopped waiting (the approval window closed)"
UNKNOWN = "This link is not known: check that it was copied whole."
STALE_FORM = "this form no longer matches the request: open the link again and decide anew"
CHANGED = "the request changed after this link was sent: ask the requester to send a new link"
NOT_READY = "the approval workflow is still starting: try again in a moment"
_RETIRED: dict[TokenState, GoneReason] = {
    TokenState.REPLACED: "replaced", TokenState.USED: "used", TokenState.REVOKED: "revoked",
}  # fmt: skip

_GONE_DETAIL: dict[str, str] = {
    "used": "This link was already used: the request has been decided.",
    "expired": "This link expired: the approval window for this request has closed.",
    "cancelled": "The requester cancelled this request, so there is nothing left to decide.",
    "replaced": "A newer link was sent for this request: use the link in the most recent email.",
    "revoked": "This link was withdrawn: the account's administrator was unregistered. The request "
    "waits for the next administrator, who gets a new link.",
}


class VerificationView(Model):
    """What the confirmation page shows, and the form's hidden fields."""

    token: str
    csrf: str | None
    connection: Connection
    requestDigest: str
    # A connection token (or a deployment that requires proofs): the form asks for an account proof.
    proofNeeded: bool = False


class DecisionOutcome(Model):
    """What ``POST /verify`` answers: the decision, and the request as it now is (still pending
    when an approval did not reach the quorum: ``approvals`` lists who has approved so far)."""

    connectionId: str
    spaceId: str
    accountId: str
    displayName: str
    decision: Literal["approve", "reject"]
    status: ConnectionStatus
    decidedBy: str
    decidedAt: str
    decisionMethod: DecisionMethod
    paidTiersAuthorized: bool | None = None
    reason: str | None = None
    quorum: int = 1
    approvals: list[Approval] = Field(default_factory=list)


def _retired(token_state: TokenState) -> GoneReason | None:
    """Why a token no longer works, as far as its own item says."""
    return _RETIRED.get(token_state)


def _gone_reason(token_state: TokenState, connection: Connection) -> GoneReason | None:
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
    if connection.status != ConnectionStatus.PENDING_APPROVAL or token_state != TokenState.ACTIVE:
        return "used"
    return None


def _token(tokens: TokenStore, token: str) -> LinkToken:
    """The token's stored record. Raises ``VerificationTokenNotFound``."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise VerificationTokenNotFound(UNKNOWN)
    found = tokens.get(hash_token(token))
    if found is None:
        raise VerificationTokenNotFound(UNKNOWN)
    return found


def _connection_of(connections: ConnectionStore, token: LinkToken) -> Connection:
    try:
        return connections.get(token.connectionId)
    except ConnectionNotFound as exc:
        raise VerificationTokenNotFound(UNKNOWN) from exc


def _csrf(token: LinkToken, digest: str) -> str | None:
    return sign(token.csrfSecret, f"{token.tokenHash}:{digest}") if token.csrfSecret else None


def view_page(
    connections: ConnectionStore, tokens: TokenStore, token: str, *, require_account_proof: bool = False
) -> VerificationView:
    """The confirmation page's content: the connection as it stands. Reads only.

    Raises ``VerificationTokenNotFound`` (404) and ``VerificationTokenGone`` (410).
    """
    found = _token(tokens, token)
    retired = _retired(found.state)  # a used or replaced link says so from its own item
    if retired is not None:
        raise VerificationTokenGone(_GONE_DETAIL[retired], retired)
    connection = _connection_of(connections, found)
    reason = _gone_reason(found.state, connection)
    if reason is not None:
        raise VerificationTokenGone(_GONE_DETAIL[reason], reason)
    digest = request_digest(connection)
    return VerificationView(
        token=token, csrf=_csrf(found, digest), connection=connection, requestDigest=digest,
        proofNeeded=proof_needed(found, require_account_proof),
    )  # fmt: skip


def _refusal(connections: ConnectionStore, token: LinkToken, otherwise: DomainError) -> DomainError:
    """What a refused decision answers: a link that no longer works says so (``used`` is a second
    decision: 409), else ``otherwise``. Reads the connection: refusals only."""
    reason = _gone_reason(token.state, _connection_of(connections, token))
    if reason == "used":
        return ConnectionAlreadyDecided(ALREADY_DECIDED)
    if reason is not None:
        return VerificationTokenGone(_GONE_DETAIL[reason], reason)
    return otherwise


def decide(
    connections: ConnectionStore,
    tokens: TokenStore,
    workflow: Workflow,
    proofs: ProofVerifier,
    mailer: Mailer,
    request: DecisionRequest,
    *,
    csrf: str | None,
    form: bool,
    require_account_proof: bool = False,
) -> DecisionOutcome:
    """Record the administrator's decision and answer the waiting workflow.

    Reads only the token's item: the request as shown, the administrator's address, the task
    token and the CSRF secret are on it. The transaction requires the token ``ACTIVE`` and the
    connection ``PENDING_APPROVAL`` with the version and ``requestDigest`` shown, so one decision
    wins and a request that changed since is refused. ``form`` decisions must carry the CSRF token
    of the page as shown: it binds the token and the request's digest. Raises
    ``VerificationTokenNotFound``, ``VerificationTokenGone``, ``InvalidRequest``,
    ``DecisionFormStale``, ``DecisionNotReady``, ``ConnectionAlreadyDecided`` (a second decision,
    concurrent or later), ``TaskAlreadyClosed`` (an approval after the window closed), and what
    ``logic.authority.decider`` raises: who may decide, and the account proof they give.
    """
    token = _token(tokens, request.token)
    task_token = token.taskToken
    if (
        token.state != TokenState.ACTIVE
        or not task_token
        or token.request is None
        or utcnow() >= datetime.fromisoformat(token.expiresAt)
    ):
        # Used, replaced or expired; or the workflow has not sent its first link yet.
        raise _refusal(connections, token, DecisionNotReady(NOT_READY))
    shown: ShownRequest = token.request
    digest = request_digest(shown)
    if form:
        if not csrf:
            raise _refusal(connections, token, InvalidRequest("the form is missing its CSRF token",
                           errors=[{"field": "csrf", "message": "is required"}]))  # fmt: skip
        if not token.csrfSecret or not verify_signature(
            token.csrfSecret, f"{token.tokenHash}:{digest}", csrf
        ):
            raise _refusal(connections, token, DecisionFormStale(STALE_FORM))
    reason = (request.reason or "").strip() or None
    if request.decision == "reject" and reason is None:
        raise _refusal(connections, token, InvalidRequest("say why the request is rejected",
                       errors=[{"field": "reason", "message": "is required to reject"}]))  # fmt: skip
    try:
        who = decider(token, shown, request.accountProof, proofs, require_account_proof=require_account_proof)
    except NotAuthorized as exc:  # AccountProofRefused too
        # A link that no longer works says so first (the connection is read on refusals only).
        raise _refusal(connections, token, exc) from exc
    decided_at = isoformat(utcnow())
    approve = request.decision == "approve"
    try:
        if approve:
            decided = _approve(connections, token, shown, who, decided_at, request.authorizePaidTiers)
        else:
            decided = _reject(connections, token, shown, who, decided_at, str(reason))
    except ApproverAlreadyDecided:
        raise
    except ConnectionAlreadyDecided as exc:
        # Another decision, a cancel, a resend or the expiry got there first; or (the token still
        # active, the request still pending) the request is no longer the one shown.
        raise _refusal(connections, tokens.get(token.tokenHash) or token, DecisionFormStale(CHANGED)) from exc
    ended = decided.status != ConnectionStatus.PENDING_APPROVAL
    logger.info("decision recorded", extra={
        "connection_id": shown.connectionId, "decision": request.decision, "ended": ended,
    })  # fmt: skip
    metrics.add_metric(
        name=("ConnectionsApproved" if ended else "ApprovalsRecorded") if approve else "ConnectionsRejected",
        unit="Count", value=1,
    )  # fmt: skip
    if ended:
        waited = datetime.fromisoformat(decided_at) - datetime.fromisoformat(shown.createdAt)
        metrics.add_metric(name="TimeToDecision", unit="Seconds", value=round(waited.total_seconds(), 3))
        _answer_workflow(connections, workflow, decided, task_token, digest, reason)
    if who.method == "ACCOUNT_PROOF":
        _tell_the_approvers(mailer, shown, token.approverEmails or [token.approverEmail or ""],
                            request.decision, who, decided_at)  # fmt: skip
    return DecisionOutcome(
        connectionId=decided.connectionId, spaceId=decided.spaceId, accountId=decided.accountId,
        displayName=decided.displayName, decision=request.decision, status=decided.status,
        decidedBy=who.decided_by, decidedAt=decided_at, paidTiersAuthorized=decided.paidTiersAuthorized,
        reason=decided.reason, decisionMethod=who.method, quorum=decided.quorum, approvals=decided.approvals,
    )  # fmt: skip


# An approval reads the connection again this many times when other approvals keep coming first,
# after a short random pause each time (``logic.backoff``).
APPROVAL_ATTEMPTS = 5


def _rejection(who: Decider, at: str, reason: str) -> StatusChange:
    proven = who.proven.arn if who.proven else None
    return StatusChange(
        ConnectionStatus.REJECTED, who.decided_by, decidedBy=who.decided_by, decidedAt=at, reason=reason,
        detail=f"rejected by {who.decided_by}{_by_proof(who)}: {reason}", decisionMethod=who.method,
        provenPrincipal=proven,
    )  # fmt: skip


def _token_chain(token: LinkToken) -> ChainHead:
    """The connection's chain head as the links' last write copied it onto ``token``."""
    if not token.chainSeq:
        return ChainHead()
    return ChainHead(token.chainSeq, token.chainHead, token.chainAt)


def _reject(
    connections: ConnectionStore, token: LinkToken, shown: ShownRequest, who: Decider, at: str, reason: str
) -> Connection:
    """Record the rejection, chained from the token's copy of the chain head; read the connection
    for the head when the chain moved since (``ApprovalsMoved``: still pending as shown), after a
    pause (``backoff.pause``)."""
    chain = _token_chain(token)
    for _ in backoff.attempts(APPROVAL_ATTEMPTS):
        try:
            return connections.record_decision(shown, Verdict(
                who=who.key, round=token.round or 0, change=_rejection(who, at, reason),
                consume=token.kind == TokenKind.LINK, proof_signature=who.signature, quorum=token.quorum or 1,
                chain=chain,
            ), token_hash=token.tokenHash)  # fmt: skip
        except ApprovalsMoved:
            chain = connections.get(shown.connectionId).chain_head
    raise ConnectionAlreadyDecided("the request kept changing: open the link again")


def _approve(
    connections: ConnectionStore, token: LinkToken, shown: ShownRequest, who: Decider, at: str, paid: bool
) -> Connection:
    """Record the approval; the one that reaches the quorum moves the request to APPROVED in the
    same write. A quorum-1 link needs no read (its approval is the last); otherwise the connection
    is read for how many approvals it still needs, and the write requires that count unchanged,
    so that of two racing approvals exactly one is the last: the other pauses (``backoff.pause``)
    and reads again."""
    quorum = token.quorum or 1
    # A quorum-1 link's approval is the last: no read, unless another write came first.
    read = quorum > 1
    approval = Approval(approver=who.decided_by, decisionMethod=who.method, at=at, paidTiersAuthorized=paid)
    proven = who.proven.arn if who.proven else None
    for _ in backoff.attempts(APPROVAL_ATTEMPTS):  # after a lost race, a pause spreads the racers out
        before: list[Approval] = []
        needed = 1
        chain = _token_chain(token)
        if read:
            connection, secrets = connections.read(shown.connectionId)
            if connection.status != ConnectionStatus.PENDING_APPROVAL:
                raise ConnectionAlreadyDecided(f"the request is {connection.status}")
            before = connection.approvals
            needed = secrets.approvals_needed if secrets.approvals_needed is not None else quorum
            chain = connection.chain_head
        change = None
        if needed <= 1:
            # Paid tiers only when every approval that counted authorized them.
            all_paid = paid and all(earlier.paidTiersAuthorized for earlier in before)
            by = ", ".join([*(earlier.approver for earlier in before), who.decided_by])
            change = StatusChange(
                ConnectionStatus.APPROVED, who.decided_by, decidedBy=who.decided_by, decidedAt=at,
                paidTiersAuthorized=all_paid, decisionMethod=who.method, provenPrincipal=proven,
                detail=f"approved by {by}" + (" with paid tiers" if all_paid else "") + _by_proof(who),
            )  # fmt: skip
        try:
            return connections.record_decision(shown, Verdict(
                who=who.key, round=token.round or 0, approval=approval, change=change, needed=max(needed, 1),
                consume=token.kind == TokenKind.LINK, proof_signature=who.signature, quorum=quorum,
                before=tuple(before), chain=chain,
            ), token_hash=token.tokenHash)  # fmt: skip
        except ApprovalsMoved:
            read = True  # how many are still needed, and the chain's head
            continue
    raise ConnectionAlreadyDecided("other approvals kept coming first: open the link again")


def decision_output(connection: Connection, digest: str) -> dict[str, Any]:
    """What an approval sends the waiting workflow (``steps.contract.Decision``)."""
    return {
        "authorizePaidTiers": bool(connection.paidTiersAuthorized),
        "decidedBy": connection.decidedBy,
        "decidedAt": connection.decidedAt,
        "requestDigest": digest,
    }


def answer(workflow: Workflow, task_token: str, connection: Connection, digest: str) -> None:
    """Tell the workflow waiting with ``task_token`` how ``connection`` was decided. Raises
    ``TaskAlreadyClosed``."""
    if connection.status == ConnectionStatus.APPROVED:
        workflow.succeed(task_token, decision_output(connection, digest))
    else:
        workflow.fail(task_token, "Rejected", str(connection.reason or "rejected"))


def _answer_workflow(
    connections: ConnectionStore, workflow: Workflow, decided: Connection, task_token: str, digest: str,
    reason: str | None,
) -> None:  # fmt: skip
    """Answer the waiting workflow. A task closed before the window did is one a timer ended (a
    reminder's round re-enters the wait with a new task token): the new token, once stored, gets
    the answer; until then the round's own step finds the request decided and answers itself. A
    task closed with the window: an approval the workflow can no longer act on becomes FAILED; a
    rejection stands as recorded."""
    approve = decided.status == ConnectionStatus.APPROVED
    try:
        answer(workflow, task_token, decided, digest)
        return
    except TaskAlreadyClosed:
        if utcnow() >= datetime.fromisoformat(decided.expiresAt):
            if approve:
                _fail_late_approval(connections, decided)
                raise
            logger.info("workflow closed before the rejection", extra={"connection_id": decided.connectionId})
            return
    current = connections.read(decided.connectionId)[1].task_token
    if current and current != task_token:
        try:
            answer(workflow, current, decided, digest)
            return
        except TaskAlreadyClosed:
            pass
    logger.info("the workflow's next round takes the decision", extra={"connection_id": decided.connectionId})


def _by_proof(who: Decider) -> str:
    if who.method == "ACCOUNT_PROOF":
        return " with an account proof"
    return f" (proved as {who.proven.arn})" if who.proven else ""


def _tell_the_approvers(
    mailer: Mailer, shown: ShownRequest, recipients: list[str], decision: str, who: Decider, at: str
) -> None:
    """The approvers hear of a decision that did not come through their links. The decision
    stands if the email cannot be sent now; the failure is logged for the operators."""
    recipients = [address for address in recipients if address]
    if not recipients:
        return
    subject, body = proof_notice(shown, decision, who, at)
    try:
        mailer.send(shown.accountId, recipients, subject, body)
    except DomainError:
        logger.exception("administrator not told of a decision by account proof",
                         extra={"connection_id": shown.connectionId})  # fmt: skip


def _fail_late_approval(connections: ConnectionStore, approved: Connection) -> None:
    """An approval the workflow can no longer act on must not stay APPROVED forever."""
    logger.warning("approval reached a closed workflow", extra={"connection_id": approved.connectionId})
    try:
        connections.transition(
            approved,
            StatusChange(ConnectionStatus.FAILED, "system", reason=WINDOW_CLOSED, detail=WINDOW_CLOSED),
        )
    except ConnectionAlreadyDecided:
        logger.info("late approval already recorded", extra={"connection_id": approved.connectionId})
