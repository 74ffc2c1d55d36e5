"""Step: the approval workflow enters a wait (``waitForTaskToken``) and this step writes the
request's links for it.

The first wait (round 0) emails every approver of the account's policy a link of their own. Each
later wait is a timer of the policy firing (``round``: a reminder, the escalation, or both): the
step sends what the timer asks for and gives every live link the wait's new task token. A
request that an approval or a rejection ended between two waits (its answer reached the task
the timer had just closed) is answered here, with this wait's task token.
"""

from __future__ import annotations

from typing import Any

from account_connections import wiring
from account_connections.domain.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionNotPending,
    TaskAlreadyClosed,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.approval import answer
from account_connections.logic.links import first_links, send_round
from account_connections.observability import logger
from account_connections.ports import ConnectionStore, Mailer, RegistryStore, Workflow
from account_connections.settings import NotifyApproverSettings, load_settings
from account_connections.steps.contract import NotifyApproverInput, NotifyApproverOutput

# A write of links that lost a race (a decision, a resend, a policy change) reads again this often.
ATTEMPTS = 5


def notify_approver(
    connections: ConnectionStore,
    registry: RegistryStore,
    mailer: Mailer,
    workflow: Workflow,
    request: NotifyApproverInput,
) -> NotifyApproverOutput:
    """Raises ``ConnectionNotPending`` when the request ended before this wait (cancelled, or,
    in the first wait, anything: the state machine then ends cleanly), ``ApproverNotRegistered``
    (the first wait found no policy: the request fails), ``ConnectionNotFound``,
    ``DependencyUnavailable``."""
    task_token = request.taskToken.get_secret_value()
    timer = request.round
    for attempt in range(1, ATTEMPTS + 1):
        connection, secrets = connections.read(request.connectionId)
        if connection.status in (ConnectionStatus.APPROVED, ConnectionStatus.REJECTED) and timer.number > 0:
            # Decided while the timer re-entered the wait: its answer met the closed task.
            try:
                answer(workflow, task_token, connection, secrets.request_digest or "")
            except TaskAlreadyClosed:
                logger.info(
                    "the decision reached the workflow already",
                    extra={"connection_id": connection.connectionId},
                )
            return NotifyApproverOutput(connectionId=connection.connectionId, sentAt=connection.updatedAt)
        if connection.status != ConnectionStatus.PENDING_APPROVAL:
            raise ConnectionNotPending(
                f"connection {request.connectionId} is {connection.status}, not pending"
            )
        try:
            if timer.number == 0:
                approver = registry.get_approver(connection.accountId)
                if approver is None:
                    # The registry lost the policy since the request: nobody would get the email.
                    raise ApproverNotRegistered(
                        f"no approver is registered for account {connection.accountId}"
                    )
                sent_at = first_links(
                    connections, mailer, connection, secrets, approver, verify_base_url=request.verifyBaseUrl,
                    task_token=task_token,
                )  # fmt: skip
            else:
                fallback = None if secrets.policy else registry.get_approver(connection.accountId)
                sent_at = send_round(connections, mailer, connection, secrets, timer, task_token=task_token,
                                     fallback=fallback)  # fmt: skip
        except ConnectionAlreadyDecided:
            if attempt == ATTEMPTS:
                raise
            continue  # it moved since read (a decision, a resend, a policy change): read again
        return NotifyApproverOutput(connectionId=connection.connectionId, sentAt=sent_at)
    raise AssertionError("unreachable")


def handle(event: dict[str, Any]) -> dict[str, Any]:
    request = NotifyApproverInput.model_validate(event)
    load_settings(NotifyApproverSettings)  # every setting the step needs, checked on first use
    return notify_approver(
        wiring.connections(), wiring.registry(), wiring.mailer(), wiring.workflow(), request
    ).model_dump(mode="json")
