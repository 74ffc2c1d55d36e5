"""Applies the seed (``local.seed_data``) to the local stack, the way it is created in AWS.

- IAM, in accounts 111122223333 and 555566667777 (``SEED.role_accounts``), as each account's
  administrator would set it up: the verifier role (the template's ``VerifierRoleName``) that the
  service assumes, ``BuildRole`` that trusts the runner principal (``RunnerPrincipalArn``),
  ``UntrustedRole`` that does not; and in every seeded account the role ``Admin`` (trusts the
  account's root), for account proofs.
- The spaces, their members and the accounts' approval policies (``{email}`` for one
  administrator, the policy itself for several approvers), through the operator API's routes on
  the front with an operator's token: the same authorizer, validation and SNS email subscriptions
  (one per address, with its filter policy) as in AWS.

The users are the local stack's user pool (``local.seed_data.USERS``): who exists and which
groups they are in.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from local.deployed import DeployedStack
from local.front import Front, IncomingRequest
from local.identity import TokenIssuer
from local.moto_server import ACCOUNT_ID
from local.seed_data import SEED, USERS, admin_roles, seed_roles
from local.template import REGION


class SeedError(RuntimeError):
    """The seed data could not be created."""


def _account_client(stack: DeployedStack, service: str, account_id: str) -> Any:
    """A client acting in ``account_id`` (moto keeps one state per account)."""
    credentials = stack.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="local-stack-seed",
    )["Credentials"]
    make_client: Any = boto3.client  # typed per service name; ours come as plain strings
    return make_client(
        service,
        endpoint_url=stack.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def seed_iam(stack: DeployedStack) -> None:
    """The roles accounts' administrators create (``seed_roles``, ``admin_roles``), each in its
    account."""
    roles = (
        tuple(
            role
            for account_id in SEED.role_accounts
            for role in seed_roles(
                stack.parameter("RunnerPrincipalArn"),
                stack.parameter("VerifierRoleName"),
                service_account=ACCOUNT_ID,
                external_id=stack.parameter("VerifierExternalId"),
                account_id=account_id,
            )
        )
        + admin_roles()
    )
    clients: dict[str, Any] = {}
    for role in roles:
        if role.account_id not in clients:
            clients[role.account_id] = _account_client(stack, "iam", role.account_id)
        iam = clients[role.account_id]
        extra = {"Description": role.description} if role.description else {}
        iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=role.trust_policy, **extra)
        for policy_name, document in role.inline_policies:
            iam.put_role_policy(RoleName=role.name, PolicyName=policy_name, PolicyDocument=document)


def _call(front: Front, token: str, method: str, path: str, body: dict[str, Any]) -> None:
    request = IncomingRequest(
        method=method,
        path=path,
        query="",
        headers=[
            ("Host", f"127.0.0.1:{front.port}"),
            ("X-Forwarded-Proto", "http"),
            ("Authorization", f"Bearer {token}"),
            ("Content-Type", "application/json"),
        ],
        body=json.dumps(body).encode(),
        source_ip="127.0.0.1",
        protocol="HTTP/1.1",
    )
    reply = front.handle(request)
    if not 200 <= reply.status < 300:
        detail = reply.body.decode(errors="replace")[:500]
        raise SeedError(f"{method} {path} answered {reply.status}: {detail}")


def seed_api(front: Front, issuer: TokenIssuer) -> None:
    """The spaces, their members and the approval policies, through the operator API's routes (the
    front's routing, authorizer and function, before it opens its port to anyone else)."""
    operator = USERS[SEED.operator]
    token = issuer.issue(operator.user_id, list(operator.groups))
    for space in SEED.spaces:
        _call(front, token, "PUT", f"/spaces/{space.space_id}", {"name": space.name})
        for member in SEED.members:
            if member.space_id == space.space_id:
                path = f"/spaces/{space.space_id}/members/{member.user_id}"
                _call(front, token, "PUT", path, {"role": member.role})
    for approver in SEED.approvers:
        _call(front, token, "PUT", f"/approvers/{approver.account_id}", approver.request())
