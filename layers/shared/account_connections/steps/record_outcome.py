"""Step: record how the request ended (VERIFIED, EXPIRED, FAILED) through the connection store's
conditional transition, or read it back (REJECTED, ENDED: cancelled, or ended before the first
wait); email every approver who got a link how it ended and who decided, and answer the
requester's notice. Safe to retry: a transition already made is not an error, a request that
already ended keeps its end (a retry may email the approvers twice, never not at all)."""

from __future__ import annotations

from typing import Any

from account_connections import wiring
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import Connection, StatusChange
from account_connections.domain.errors import ConnectionAlreadyDecided, VerificationFailed
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.approval import WINDOW_CLOSED
from account_connections.logic.links import tell_outcome
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, Mailer
from account_connections.settings import RecordOutcomeSettings, load_settings
from account_connections.steps.contract import OutcomeEvent, RecordOutcomeInput

S = ConnectionStatus
ATTEMPTS = 3
NO_DECISION = "no decision before the approval window closed"


def _failed(connections: ConnectionStore, connection: Connection, reason: str) -> Connection:
    holds_lock = connections.live_holder(connection.spaceId, connection.accountId) == connection.connectionId
    change = StatusChange(S.FAILED, "system", reason=reason, detail=reason)
    return connections.transition(connection, change, release_live=holds_lock)


def _apply(connections: ConnectionStore, connection: Connection, request: RecordOutcomeInput) -> Connection:
    status = connection.status
    if request.outcome == "VERIFIED":
        if status == S.VERIFIED:
            return connection
        if status != S.APPROVED:
            raise VerificationFailed(f"the request is {status}, not approved")
        paid = bool(request.paidTiersAuthorized)
        return connections.transition(connection, StatusChange(
            S.VERIFIED, "system", verifiedAt=isoformat(utcnow()), paidTiersAuthorized=paid,
            detail="verified" + (" with paid tiers" if paid else ""),
        ))  # fmt: skip
    if request.outcome == "EXPIRED" and status == S.PENDING_APPROVAL:
        return connections.transition(connection, StatusChange(S.EXPIRED, "system", reason=NO_DECISION,
                                                               detail=NO_DECISION))  # fmt: skip
    if request.outcome == "EXPIRED" and status == S.APPROVED:
        # The approval won the race against the timeout, but the workflow no longer waits for it.
        return _failed(connections, connection, WINDOW_CLOSED)
    if request.outcome == "FAILED" and status in (S.PENDING_APPROVAL, S.APPROVED):
        return _failed(
            connections, connection, request.error.reason() if request.error else "the workflow failed"
        )
    # REJECTED was recorded by the decision; any other request has already ended: keep its end.
    return connection


def record_outcome(connections: ConnectionStore, mailer: Mailer, request: RecordOutcomeInput) -> OutcomeEvent:
    """Raises ``VerificationFailed`` (VERIFIED asked of a request that is not approved),
    ``ConnectionNotFound``, and ``ConnectionAlreadyDecided`` if it keeps losing races."""
    attempt = 1
    while True:
        connection = connections.get(request.connectionId)
        try:
            ended = _apply(connections, connection, request)
            break
        except ConnectionAlreadyDecided:
            # Someone else moved it meanwhile (a decision, a cancel): read again and decide anew.
            if attempt == ATTEMPTS:
                raise
            attempt += 1
    if ended.status != connection.status:
        metrics.add_metric(name=f"Connections{ended.status.title()}", unit="Count", value=1)
    if ended.status not in (S.PENDING_APPROVAL, S.APPROVED):
        told = tell_outcome(mailer, ended, connections.read(ended.connectionId)[1])
        logger.info(
            "approvers told how the request ended", extra={"connection_id": ended.connectionId, "told": told}
        )
    logger.info("outcome recorded", extra={"connection_id": ended.connectionId, "status": str(ended.status)})
    return OutcomeEvent.of(ended)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    request = RecordOutcomeInput.model_validate(event)
    load_settings(RecordOutcomeSettings)
    return record_outcome(wiring.connections(), wiring.mailer(), request).model_dump(mode="json")
