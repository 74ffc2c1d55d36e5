"""Step: check each requested role through the account's verifier role and record the result.

A role that fails its check is stored as not attached, with why; it does not fail the connection.
"""

from __future__ import annotations

from typing import Any

from account_connections.clients import client
from account_connections.errors import VerificationFailed
from account_connections.models import EventType, RoleAttachment
from account_connections.observability import logger, metrics
from account_connections.repository import Repository
from account_connections.roles import IamVerifier, RoleVerifier, check_roles
from account_connections.settings import AttachRolesSettings, load_settings
from account_connections.statuses import ConnectionStatus
from account_connections.steps.contract import AttachRolesInput, AttachRolesOutput, RejectedRole


def attach_roles(
    repo: Repository, verifier: RoleVerifier, runner_principal_arn: str, request: AttachRolesInput
) -> AttachRolesOutput:
    """Check and record each role not yet recorded (a retried step does not check twice).

    Raises ``VerificationFailed`` (the request is no longer approved) and ``DependencyUnavailable``.
    """
    connection, recorded, _ = repo.get_connection_detail(request.connectionId)
    if connection.status not in (ConnectionStatus.APPROVED, ConnectionStatus.VERIFIED):
        raise VerificationFailed(f"the request is {connection.status}, not approved")
    done = {role.roleArn for role in recorded}
    results = check_roles(
        verifier,
        connection.accountId,
        [arn for arn in connection.roleArns if arn not in done],
        runner_principal_arn,
    )
    for role in results:
        event = EventType.ROLE_ATTACHED if role.attached else EventType.ROLE_REJECTED
        detail = role.roleArn if role.attached else f"{role.roleArn}: {role.reason}"
        repo.record_event(
            connection, event, "system", detail, extra_items=[repo.put_role_op(connection.connectionId, role)]
        )
    every: list[RoleAttachment] = [*recorded, *results]
    metrics.add_metric(name="RolesAttached", unit="Count", value=sum(role.attached for role in results))
    metrics.add_metric(name="RolesRejected", unit="Count", value=sum(not role.attached for role in results))
    logger.info("roles checked", extra={"connection_id": connection.connectionId, "checked": len(results)})
    return AttachRolesOutput(
        attached=[role.roleName for role in every if role.attached],
        rejected=[
            RejectedRole(roleArn=role.roleArn, roleName=role.roleName, reason=role.reason or "")
            for role in every
            if not role.attached
        ],
    )


def handle(event: dict[str, Any]) -> dict[str, Any]:
    request = AttachRolesInput.model_validate(event)
    settings = load_settings(AttachRolesSettings)
    repo = Repository(settings.table_name, client("dynamodb"))
    verifier = IamVerifier(client("sts"), settings.verifier_role_name, settings.verifier_external_id)
    return attach_roles(repo, verifier, settings.runner_principal_arn, request).model_dump(mode="json")
