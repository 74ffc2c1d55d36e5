"""The role check of SPEC.md's "Roles": before a role is attached, the service assumes the
verifier role that the account's administrator created and reads the role through it (the
``RoleVerifier`` port; ``adapters.iam`` over STS and IAM).

A role passes when its ARN is well formed, it is in the connection's account, it exists, and its
trust policy allows ``sts:AssumeRole`` to the runner principal assuming it for the connection's
space (``domain.trust``: an explicit Deny wins; a Condition counts only on what the runner
presents, the space id as ``sts:ExternalId`` and ``aws:RequestTag/space``).
"""

from __future__ import annotations

from account_connections.domain.access import Principal
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import RoleArn, RoleAttachment
from account_connections.domain.errors import (
    ConnectionAlreadyDecided,
    RoleCheckFailed,
    RoleNotFound,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.trust import TrustOutcome, TrustVerdict, evaluate_trust
from account_connections.logic.connections import check_role_arns, in_space
from account_connections.observability import logger
from account_connections.ports import AccountRoles, ConnectionStore, RoleVerifier


def parse_role_arn(account_id: str, role_arn: str) -> RoleArn:
    """Raises ``RoleCheckFailed`` unless ``role_arn`` is a role ARN in ``account_id``."""
    try:
        role = RoleArn.parse(role_arn)
    except ValueError as exc:
        raise RoleCheckFailed(f"{role_arn!r} is not a role ARN: {exc}") from exc
    if role.account_id != account_id:
        raise RoleCheckFailed(
            f"role {role.name} is in account {role.account_id}, not the connection's account {account_id}"
        )
    return role


def _refusal(role: RoleArn, runner_principal_arn: str, space_id: str, verdict: TrustVerdict) -> str:
    """Why the trust policy does not do: it names only the runner, the space and, for a condition
    that cannot be proven, its operator and key (never a value of the policy)."""
    asked = f"sts:AssumeRole to {runner_principal_arn} for space {space_id}"
    if verdict.outcome == TrustOutcome.DENIED:
        return f"role {role.name}'s trust policy denies {asked}: an explicit Deny wins"
    if verdict.outcome == TrustOutcome.NOT_PROVABLE:
        which = "a Deny that may apply" if verdict.by_deny else "an Allow"
        return (
            f"role {role.name}'s trust policy has {which} for {asked} under a condition that cannot be "
            f"proven ({verdict.condition}): the runner presents only sts:ExternalId and "
            "aws:RequestTag/space, equal to the space id; use StringEquals or StringLike on those"
        )
    return (
        f"role {role.name} does not allow {asked}: add that principal to its trust policy (with any "
        "condition on sts:ExternalId or aws:RequestTag/space equal to the space id)"
    )


def check_role(roles: AccountRoles, role: RoleArn, runner_principal_arn: str, space_id: str) -> None:
    """Raises ``RoleCheckFailed`` unless the role exists and trusts the runner principal assuming
    it for ``space_id``; the message says why (not allowed, denied, or which condition could not
    be proven)."""
    found = roles.get_role(role.name)
    if found is None:
        raise RoleCheckFailed(f"role {role.name} does not exist in account {role.account_id}")
    if found.get("Arn") and str(found["Arn"]) != role.arn:
        raise RoleCheckFailed(
            f"role {role.name} exists in account {role.account_id} with another path: {found['Arn']}"
        )
    verdict = evaluate_trust(found.get("AssumeRolePolicyDocument"), runner_principal_arn, space_id)
    if not verdict.allowed:
        raise RoleCheckFailed(_refusal(role, runner_principal_arn, space_id, verdict))


def check_roles(
    verifier: RoleVerifier, account_id: str, role_arns: list[str], runner_principal_arn: str, *, space_id: str
) -> list[RoleAttachment]:
    """Check each ARN for the space ``space_id``; a failure is recorded with its reason, never
    raised. The verifier role is assumed once for all of them. Raises only
    ``DependencyUnavailable`` (retry later)."""
    results: list[RoleAttachment] = []
    sessions: dict[str, AccountRoles | RoleCheckFailed] = {}
    for arn in role_arns:
        name = arn.rsplit("/", 1)[-1][:64]
        reason: str | None = None
        try:
            role = parse_role_arn(account_id, arn)
            name = role.name
            if role.partition not in sessions:
                try:
                    sessions[role.partition] = verifier.open(role.partition, account_id)
                except RoleCheckFailed as exc:
                    sessions[role.partition] = exc
            session = sessions[role.partition]
            if isinstance(session, RoleCheckFailed):
                reason = session.detail
            else:
                check_role(session, role, runner_principal_arn, space_id)
        except RoleCheckFailed as exc:
            reason = exc.detail
        results.append(RoleAttachment(roleArn=arn, roleName=name, attached=reason is None, reason=reason,
                                      checkedAt=isoformat(utcnow())))  # fmt: skip
    return results


def check_one(
    verifier: RoleVerifier, account_id: str, role_arn: str, runner_principal_arn: str, *, space_id: str
) -> RoleArn:
    """The check behind ``POST .../roles``: raises ``RoleCheckFailed`` with the reason."""
    role = parse_role_arn(account_id, role_arn)
    check_role(verifier.open(role.partition, account_id), role, runner_principal_arn, space_id)
    return role


# ---- attaching and detaching after verification (POST/DELETE .../roles) -------------------------


def attach_role(
    connections: ConnectionStore,
    verifier: RoleVerifier,
    runner_principal_arn: str,
    principal: Principal,
    space_id: str,
    connection_id: str,
    role_arn: str,
) -> RoleAttachment:
    """Attach a role to a verified connection after the same check the workflow makes.

    Raises ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (not VERIFIED), ``InvalidRequest``
    (a role of another account), ``RoleCheckFailed`` (with why), ``DependencyUnavailable``.
    """
    connection = in_space(connections.get(connection_id), space_id)
    if connection.status != ConnectionStatus.VERIFIED:
        raise ConnectionAlreadyDecided(
            f"roles are attached to VERIFIED connections; this one is {connection.status}"
        )
    check_role_arns(connection.accountId, [role_arn], field="roleArn")
    role = check_one(
        verifier, connection.accountId, role_arn, runner_principal_arn, space_id=connection.spaceId
    )
    attachment = RoleAttachment(
        roleArn=role.arn, roleName=role.name, attached=True, checkedAt=isoformat(utcnow())
    )
    connections.attach_role(connection, attachment, actor=principal.sub)
    logger.info("role attached", extra={"connection_id": connection_id, "role_name": role.name})
    return attachment


def detach_role(
    connections: ConnectionStore, principal: Principal, space_id: str, connection_id: str, role_name: str
) -> None:
    """Remove a role (attached, or recorded as refused) from the connection.

    Raises ``ConnectionNotFound``, ``RoleNotFound``, ``ConnectionAlreadyDecided`` (a race lost).
    """
    connection = in_space(connections.get(connection_id), space_id)
    existing = connections.get_role(connection_id, role_name)
    if existing is None:
        raise RoleNotFound(f"role {role_name} is not attached to connection {connection_id}")
    connections.detach_role(connection, existing, actor=principal.sub)
    logger.info("role detached", extra={"connection_id": connection_id, "role_name": role_name})
