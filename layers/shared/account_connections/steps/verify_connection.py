"""Step: after approval, check that the request is the one the administrator saw and that the
account has no other live connection in the space."""

from __future__ import annotations

from typing import Any

from account_connections import wiring
from account_connections.domain.connection import request_digest
from account_connections.domain.errors import VerificationFailed
from account_connections.domain.statuses import ConnectionStatus
from account_connections.observability import logger
from account_connections.ports import ConnectionStore
from account_connections.settings import VerifyConnectionSettings, load_settings
from account_connections.steps.contract import VerifyConnectionInput, VerifyConnectionOutput


def verify_connection(connections: ConnectionStore, request: VerifyConnectionInput) -> VerifyConnectionOutput:
    """Raises ``VerificationFailed`` with the reason (the workflow records FAILED with it)."""
    connection = connections.get(request.connectionId)
    if connection.status == ConnectionStatus.VERIFIED:
        return VerifyConnectionOutput(connectionId=connection.connectionId, verified=True)
    if connection.status != ConnectionStatus.APPROVED:
        raise VerificationFailed(f"the request is {connection.status}, not approved")
    if request_digest(connection) != request.decision.requestDigest:
        raise VerificationFailed("the request changed after the administrator saw it")
    holder = connections.live_holder(connection.spaceId, connection.accountId)
    if holder != connection.connectionId:
        raise VerificationFailed(
            f"account {connection.accountId} has another live connection in space {connection.spaceId}"
        )
    logger.info("connection verified", extra={"connection_id": connection.connectionId})
    return VerifyConnectionOutput(connectionId=connection.connectionId, verified=True)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    request = VerifyConnectionInput.model_validate(event)
    load_settings(VerifyConnectionSettings)
    return verify_connection(wiring.connections(), request).model_dump(mode="json")
