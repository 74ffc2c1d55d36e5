"""Step: check each requested role through the account's verifier role and record the result.

A role that fails its check is stored as not attached, with why; it does not fail the connection.
"""

from __future__ import annotations

from typing import Any

from account_connections import wiring
from account_connections.domain.connection import RoleAttachment
from account_connections.domain.errors import VerificationFailed
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.roles import check_roles
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, RoleVerifier
from account_connections.settings import AttachRolesSettings, load_settings
from account_connections.steps.contract import AttachRolesInput, AttachRolesOutput, RejectedRole


def attach_roles(
    connections: ConnectionStore, verifier: RoleVerifier, runner_principal_arn: str, request: AttachRolesInput
) -> AttachRolesOutput:
    """Check and record each role not yet recorded (a retried step does not check twice).

    Raises ``VerificationFailed`` (the request is no longer approved) and ``DependencyUnavailable``.
    """
    connection, recorded, _ = connections.detail(request.connectionId)
    if connection.status not in (ConnectionStatus.APPROVED, ConnectionStatus.VERIFIED):
        raise VerificationFailed(f"the request is {connection.status}, not approved")
    done = {role.roleArn for role in recorded}
    results = check_roles(
        verifier,
        connection.accountId,
        [arn for arn in connection.roleArns if arn not in done],
        runner_principal_arn,
        space_id=connection.spaceId,
    )
    for role in results:
        connections.attach_role(connection, role, actor="system")
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
    return attach_roles(
        wiring.connections(), wiring.verifier(), settings.runner_principal_arn, request
    ).model_dump(mode="json")
