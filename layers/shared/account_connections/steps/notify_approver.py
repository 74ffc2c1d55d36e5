"""Step: create the one-time link, keep the task token on the connection (and copies on the link's
and the connection token's items), email the administrator.

The state machine then waits (``waitForTaskToken``) for the decision page to answer.
"""

from __future__ import annotations

from typing import Any

from account_connections import wiring
from account_connections.domain.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionNotPending,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.links import issue_link
from account_connections.ports import ConnectionStore, Mailer, RegistryStore
from account_connections.settings import NotifyApproverSettings, load_settings
from account_connections.steps.contract import NotifyApproverInput, NotifyApproverOutput


def notify_approver(
    connections: ConnectionStore, registry: RegistryStore, mailer: Mailer, request: NotifyApproverInput
) -> NotifyApproverOutput:
    """Raises ``ConnectionNotPending`` when the request was cancelled before the workflow got here
    (the state machine then ends cleanly), ``ApproverNotRegistered`` (the request fails),
    ``ConnectionNotFound``, ``DependencyUnavailable``."""
    connection, secrets = connections.read(request.connectionId)
    not_pending = ConnectionNotPending(
        f"connection {request.connectionId} is {connection.status}, not pending"
    )
    if connection.status != ConnectionStatus.PENDING_APPROVAL:
        raise not_pending
    approver = registry.get_approver(connection.accountId)
    if approver is None:
        # The registry lost the administrator since the request: nobody would get the email.
        raise ApproverNotRegistered(f"no administrator is registered for account {connection.accountId}")
    try:
        sent_at = issue_link(
            connections,
            mailer,
            connection,
            secrets,
            actor="system",
            verify_base_url=request.verifyBaseUrl,
            approver=approver,
            task_token=request.taskToken.get_secret_value(),
        )
    except ConnectionAlreadyDecided as exc:
        raise not_pending from exc
    return NotifyApproverOutput(connectionId=connection.connectionId, sentAt=sent_at)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    request = NotifyApproverInput.model_validate(event)
    load_settings(NotifyApproverSettings)  # every setting the step needs, checked on first use
    return notify_approver(wiring.connections(), wiring.registry(), wiring.mailer(), request).model_dump(
        mode="json"
    )
