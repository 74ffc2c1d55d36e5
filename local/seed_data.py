"""The seed of SPEC.md ("The local stack"), as data: one description, read by the local stack and
by the tests.

- ``SEED``: the spaces, the users (with their groups), the members of each space, the accounts'
  administrators (approvers), and the accounts that have none.
- ``seed_roles(...)``: the IAM roles an account's administrator creates, with their trust
  policies, for a given runner principal and verifier role (template parameters).
- ``admin_roles()``: the role ``Admin`` in each seeded account, trusting that account's root:
  whose temporary credentials (``/_local/aws-credentials``) make account proofs.

``local.seed`` applies this to the local stack (IAM, then the operator API). Test fixtures
(tests/integration, tests/workflow) build the same seed from it in their own moto, so this
module imports nothing but the standard library: no moto, no boto3, nothing of the stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SPACE_ID = "demo"
SPACE_NAME = "Demo space"
ADMIN_ACCOUNT = "111122223333"
ADMIN_EMAIL = "admin@example.com"
UNREGISTERED_ACCOUNT = "444455556666"
TRUSTED_ROLE = "BuildRole"
UNTRUSTED_ROLE = "UntrustedRole"
# The users, by what they are in the seed (SEED.users describes them, with their groups).
REQUESTER = "alice"  # SPACE_ADMIN of SPACE_ID
POWER_USER = "bob"  # POWER_USER of SPACE_ID
LIMITED_USER = "carol"  # LIMITED_ACCESS in SPACE_ID
AUDITOR = "audrey"
OPERATOR = "oscar"
ADMIN_ROLE = "Admin"


@dataclass(frozen=True)
class SeedSpace:
    space_id: str
    name: str


@dataclass(frozen=True)
class SeedUser:
    """A user of the local stack's user pool; ``description`` is what the banner says of them."""

    user_id: str
    description: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedMember:
    space_id: str
    user_id: str
    role: str  # a SpaceRole value


@dataclass(frozen=True)
class SeedApprover:
    """An account's administrator, who approves the requests for it."""

    account_id: str
    email: str


@dataclass(frozen=True)
class SeedRole:
    """An IAM role in ``account_id``; the policies are JSON documents, as IAM takes them."""

    account_id: str
    name: str
    trust_policy: str
    description: str = ""
    inline_policies: tuple[tuple[str, str], ...] = ()  # (policy name, document)

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.name}"


@dataclass(frozen=True)
class Seed:
    spaces: tuple[SeedSpace, ...]
    users: tuple[SeedUser, ...]
    members: tuple[SeedMember, ...]
    approvers: tuple[SeedApprover, ...]
    unregistered_accounts: tuple[str, ...]  # accounts with no administrator
    operator: str  # the user (group operators) who writes the spaces, members and approvers

    @property
    def accounts(self) -> tuple[str, ...]:
        """Every seeded AWS account: those with an administrator, then those without."""
        accounts = [approver.account_id for approver in self.approvers] + list(self.unregistered_accounts)
        return tuple(dict.fromkeys(accounts))


SEED = Seed(
    spaces=(SeedSpace(SPACE_ID, SPACE_NAME),),
    users=(
        SeedUser(REQUESTER, f"SPACE_ADMIN of {SPACE_ID}"),
        SeedUser(POWER_USER, f"POWER_USER of {SPACE_ID}"),
        SeedUser(LIMITED_USER, f"LIMITED_ACCESS in {SPACE_ID}"),
        SeedUser(AUDITOR, "auditor", groups=("auditors",)),
        SeedUser(OPERATOR, "operator", groups=("operators",)),
    ),
    members=(
        SeedMember(SPACE_ID, REQUESTER, "SPACE_ADMIN"),
        SeedMember(SPACE_ID, POWER_USER, "POWER_USER"),
        SeedMember(SPACE_ID, LIMITED_USER, "LIMITED_ACCESS"),
    ),
    approvers=(SeedApprover(ADMIN_ACCOUNT, ADMIN_EMAIL),),
    unregistered_accounts=(UNREGISTERED_ACCOUNT,),
    operator=OPERATOR,
)

USERS: dict[str, SeedUser] = {user.user_id: user for user in SEED.users}


def trust_policy(principal: dict[str, Any], condition: dict[str, Any] | None = None) -> str:
    """A role's trust policy that lets ``principal`` (e.g. ``{"AWS": arn}``) assume it."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def seed_roles(
    runner_arn: str, verifier_role: str, *, service_account: str, external_id: str = ""
) -> tuple[SeedRole, ...]:
    """The roles the administrator of ``ADMIN_ACCOUNT`` creates: the verifier role that the
    service (in ``service_account``) assumes, with ``external_id`` if there is one;
    ``TRUSTED_ROLE``, which trusts the runner principal; ``UNTRUSTED_ROLE``, which does not."""
    condition = {"StringEquals": {"sts:ExternalId": external_id}} if external_id else None
    read_roles = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetRole"], "Resource": "*"}]})  # fmt: skip
    return (
        SeedRole(
            ADMIN_ACCOUNT,
            verifier_role,
            trust_policy({"AWS": f"arn:aws:iam::{service_account}:root"}, condition),
            description="Lets the account connections service read roles in this account.",
            inline_policies=(("ReadRoles", read_roles),),
        ),
        SeedRole(ADMIN_ACCOUNT, TRUSTED_ROLE, trust_policy({"AWS": runner_arn})),
        SeedRole(ADMIN_ACCOUNT, UNTRUSTED_ROLE, trust_policy({"Service": "ec2.amazonaws.com"})),
    )


def admin_roles() -> tuple[SeedRole, ...]:
    """``ADMIN_ROLE`` in every seeded account: trusts the account's root (anyone the account
    allows), may do anything. Its temporary credentials stand for someone signed in to the
    account with administrative permissions, who makes account proofs."""
    everything = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})  # fmt: skip
    return tuple(
        SeedRole(
            account,
            ADMIN_ROLE,
            trust_policy({"AWS": f"arn:aws:iam::{account}:root"}),
            description="The account's administrators (local stack: makes account proofs).",
            inline_policies=(("AdministratorAccess", everything),),
        )
        for account in SEED.accounts
    )
