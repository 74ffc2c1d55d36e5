"""The role check of SPEC.md's "Roles": before a role is attached, the service assumes the
verifier role that the account's administrator created and reads the role through it.

A role passes when its ARN is well formed, it is in the connection's account, it exists, and its
trust policy allows ``sts:AssumeRole`` to the runner principal. ``IamVerifier`` is the adapter
(STS and IAM); ``check_role`` and ``check_roles`` are the logic, which receives it.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError

from account_connections.authz import Principal
from account_connections.clients import session_client
from account_connections.connections import check_role_arns
from account_connections.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DependencyUnavailable,
    RoleCheckFailed,
    RoleNotFound,
)
from account_connections.models import Connection, EventType, RoleArn, RoleAttachment, isoformat, utcnow
from account_connections.observability import logger
from account_connections.repository import Repository
from account_connections.retry import is_transient
from account_connections.statuses import ConnectionStatus

ASSUME_ACTIONS = {"sts:assumerole", "sts:*", "*"}


class AccountRoles(Protocol):
    def get_role(self, role_name: str) -> dict[str, Any] | None: ...


class RoleVerifier(Protocol):
    def open(self, partition: str, account_id: str) -> AccountRoles: ...


class _IamReader:
    def __init__(self, iam: Any, account_id: str) -> None:
        self.iam = iam
        self.account_id = account_id

    def get_role(self, role_name: str) -> dict[str, Any] | None:
        """The role as ``iam:GetRole`` returns it, or None when it does not exist.

        Raises ``DependencyUnavailable`` (transient) and ``RoleCheckFailed`` (access denied).
        """
        try:
            return dict(self.iam.get_role(RoleName=role_name)["Role"])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "NoSuchEntity":
                return None
            if is_transient(exc):
                raise DependencyUnavailable(
                    f"IAM did not answer for account {self.account_id}: {code}"
                ) from exc
            raise RoleCheckFailed(f"the verifier role may not read role {role_name}: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"IAM did not answer for account {self.account_id}") from exc


class IamVerifier:
    """Assumes ``arn:<partition>:iam::<account>:role/<verifier_role_name>`` and reads roles."""

    def __init__(self, sts: Any, verifier_role_name: str, external_id: str = "") -> None:
        self.sts = sts
        self.role_name = verifier_role_name
        self.external_id = external_id

    def verifier_arn(self, partition: str, account_id: str) -> str:
        return f"arn:{partition}:iam::{account_id}:role/{self.role_name}"

    def open(self, partition: str, account_id: str) -> AccountRoles:
        """Raises ``RoleCheckFailed`` when the verifier role cannot be assumed (it is missing, or
        does not trust this service) and ``DependencyUnavailable`` when STS fails transiently."""
        arn = self.verifier_arn(partition, account_id)
        kwargs: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": "account-connections-verifier"}
        if self.external_id:
            kwargs["ExternalId"] = self.external_id
        try:
            credentials = self.sts.assume_role(**kwargs)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise DependencyUnavailable(f"STS did not answer for account {account_id}") from exc
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            raise RoleCheckFailed(
                f"the verifier role {arn} cannot be assumed ({code}): the account's administrator must "
                "create it and let this service assume it"
            ) from exc
        return _IamReader(session_client("iam", credentials), account_id)


def _policy(document: Any) -> dict[str, Any]:
    """The trust policy as a dict: AWS returns it URL-encoded JSON (botocore may decode it already)."""
    if isinstance(document, dict):
        return document
    text = str(document or "")
    for candidate in (text, unquote(text)):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def trusts(trust_policy: Any, principal_arn: str) -> bool:
    """Whether the policy allows ``sts:AssumeRole`` to ``principal_arn`` (named, or through its
    account's root) and no statement denies it. Conditions are not evaluated."""
    account = principal_arn.split(":")[4] if principal_arn.count(":") >= 5 else ""
    partition = principal_arn.split(":")[1] if principal_arn.count(":") >= 5 else "aws"
    names = {principal_arn, account, f"arn:{partition}:iam::{account}:root"}
    allowed = denied = False
    for statement in _as_list(_policy(trust_policy).get("Statement")):
        if not isinstance(statement, dict):
            continue
        actions = {str(action).lower() for action in _as_list(statement.get("Action"))}
        principal = statement.get("Principal")
        aws = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
        if not actions & ASSUME_ACTIONS or not names & {str(name) for name in aws}:
            continue
        if statement.get("Effect") == "Allow":
            allowed = True
        elif statement.get("Effect") == "Deny":
            denied = True
    return allowed and not denied


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


def check_role(roles: AccountRoles, role: RoleArn, runner_principal_arn: str) -> None:
    """Raises ``RoleCheckFailed`` unless the role exists and trusts the runner principal."""
    found = roles.get_role(role.name)
    if found is None:
        raise RoleCheckFailed(f"role {role.name} does not exist in account {role.account_id}")
    if found.get("Arn") and str(found["Arn"]) != role.arn:
        raise RoleCheckFailed(
            f"role {role.name} exists in account {role.account_id} with another path: {found['Arn']}"
        )
    if not trusts(found.get("AssumeRolePolicyDocument"), runner_principal_arn):
        raise RoleCheckFailed(
            f"role {role.name} does not allow sts:AssumeRole to {runner_principal_arn}: "
            "add that principal to its trust policy"
        )


def check_roles(
    verifier: RoleVerifier, account_id: str, role_arns: list[str], runner_principal_arn: str
) -> list[RoleAttachment]:
    """Check each ARN; a failure is recorded with its reason, never raised. The verifier role is
    assumed once for all of them. Raises only ``DependencyUnavailable`` (retry later)."""
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
                check_role(session, role, runner_principal_arn)
        except RoleCheckFailed as exc:
            reason = exc.detail
        results.append(RoleAttachment(roleArn=arn, roleName=name, attached=reason is None, reason=reason,
                                      checkedAt=isoformat(utcnow())))  # fmt: skip
    return results


def check_one(verifier: RoleVerifier, account_id: str, role_arn: str, runner_principal_arn: str) -> RoleArn:
    """The check behind ``POST .../roles``: raises ``RoleCheckFailed`` with the reason."""
    role = parse_role_arn(account_id, role_arn)
    check_role(verifier.open(role.partition, account_id), role, runner_principal_arn)
    return role


# ---- attaching and detaching after verification (POST/DELETE .../roles) -------------------------


def _connection_in_space(repo: Repository, space_id: str, connection_id: str) -> Connection:
    connection = repo.get_connection(connection_id)
    if connection.spaceId != space_id:
        raise ConnectionNotFound(f"connection {connection_id} does not exist")
    return connection


def attach_role(
    repo: Repository,
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
    connection = _connection_in_space(repo, space_id, connection_id)
    if connection.status != ConnectionStatus.VERIFIED:
        raise ConnectionAlreadyDecided(
            f"roles are attached to VERIFIED connections; this one is {connection.status}"
        )
    check_role_arns(connection.accountId, [role_arn], field="roleArn")
    role = check_one(verifier, connection.accountId, role_arn, runner_principal_arn)
    attachment = RoleAttachment(
        roleArn=role.arn, roleName=role.name, attached=True, checkedAt=isoformat(utcnow())
    )
    repo.record_event(
        connection, EventType.ROLE_ATTACHED, principal.sub, role.arn,
        extra_items=[repo.put_role_op(connection_id, attachment)],
    )  # fmt: skip
    logger.info("role attached", extra={"connection_id": connection_id, "role_name": role.name})
    return attachment


def detach_role(
    repo: Repository, principal: Principal, space_id: str, connection_id: str, role_name: str
) -> None:
    """Remove a role (attached, or recorded as refused) from the connection.

    Raises ``ConnectionNotFound``, ``RoleNotFound``, ``ConnectionAlreadyDecided`` (a race lost).
    """
    connection = _connection_in_space(repo, space_id, connection_id)
    existing = repo.get_role(connection_id, role_name)
    if existing is None:
        raise RoleNotFound(f"role {role_name} is not attached to connection {connection_id}")
    repo.record_event(
        connection, EventType.ROLE_DETACHED, principal.sub, existing.roleArn,
        extra_items=[repo.delete_role_op(connection_id, role_name)],
    )  # fmt: skip
    logger.info("role detached", extra={"connection_id": connection_id, "role_name": role_name})
