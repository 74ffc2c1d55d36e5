"""The seed data of SPEC.md ("The local stack"), created the way it is created in AWS.

- IAM, in account 111122223333, as that account's administrator would set it up: the verifier
  role (the template's ``VerifierRoleName``) that the service assumes, ``BuildRole`` that trusts
  the runner principal (``RunnerPrincipalArn``), ``UntrustedRole`` that does not.
- The space, its members and the account's administrator, through the operator API's routes on
  the front with an operator's token: the same authorizer, validation and SNS email subscription
  (with its filter policy) as in AWS.

The users are the local stack's user pool: who exists and which groups they are in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from local.deployed import DeployedStack
from local.front import Front, IncomingRequest
from local.identity import TokenIssuer
from local.moto_server import ACCOUNT_ID
from local.template import REGION

SPACE_ID = "demo"
SPACE_NAME = "Demo space"
ADMIN_ACCOUNT = "111122223333"
ADMIN_EMAIL = "admin@example.com"
UNREGISTERED_ACCOUNT = "444455556666"
TRUSTED_ROLE = "BuildRole"
UNTRUSTED_ROLE = "UntrustedRole"


@dataclass(frozen=True)
class SeedUser:
    user_id: str
    description: str
    space_role: str | None = None
    groups: tuple[str, ...] = ()


USERS: dict[str, SeedUser] = {
    user.user_id: user
    for user in (
        SeedUser("alice", f"SPACE_ADMIN of {SPACE_ID}", space_role="SPACE_ADMIN"),
        SeedUser("bob", f"POWER_USER of {SPACE_ID}", space_role="POWER_USER"),
        SeedUser("carol", f"LIMITED_ACCESS in {SPACE_ID}", space_role="LIMITED_ACCESS"),
        SeedUser("audrey", "auditor", groups=("auditors",)),
        SeedUser("oscar", "operator", groups=("operators",)),
    )
}
OPERATOR = "oscar"


class SeedError(RuntimeError):
    """The seed data could not be created."""


def _trust(principal: dict[str, Any], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


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
    """The roles an account's administrator creates in account 111122223333."""
    iam = _account_client(stack, "iam", ADMIN_ACCOUNT)
    verifier = stack.parameter("VerifierRoleName")
    external_id = stack.parameter("VerifierExternalId")
    runner = stack.parameter("RunnerPrincipalArn")
    condition = {"StringEquals": {"sts:ExternalId": external_id}} if external_id else None
    iam.create_role(
        RoleName=verifier,
        AssumeRolePolicyDocument=_trust({"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, condition),
        Description="Lets the account connections service read roles in this account.",
    )
    iam.put_role_policy(
        RoleName=verifier,
        PolicyName="ReadRoles",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["iam:GetRole"], "Resource": "*"}]}),
    )  # fmt: skip
    iam.create_role(RoleName=TRUSTED_ROLE, AssumeRolePolicyDocument=_trust({"AWS": runner}))
    iam.create_role(
        RoleName=UNTRUSTED_ROLE, AssumeRolePolicyDocument=_trust({"Service": "ec2.amazonaws.com"})
    )


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
    """The space, its members and the administrator, through the operator API's routes (the
    front's routing, authorizer and function, before it opens its port to anyone else)."""
    operator = USERS[OPERATOR]
    token = issuer.issue(operator.user_id, list(operator.groups))
    _call(front, token, "PUT", f"/spaces/{SPACE_ID}", {"name": SPACE_NAME})
    for user in USERS.values():
        if user.space_role:
            path = f"/spaces/{SPACE_ID}/members/{user.user_id}"
            _call(front, token, "PUT", path, {"role": user.space_role})
    _call(front, token, "PUT", f"/approvers/{ADMIN_ACCOUNT}", {"email": ADMIN_EMAIL})
