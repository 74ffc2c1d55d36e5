"""The seed of SPEC.md ("The local stack"), as data: one description, read by the local stack and
by the tests.

- ``SEED``: the spaces, the users (with their groups), the members of each space, the accounts'
  approval policies (one administrator, or several approvers and a quorum), the accounts that
  have none, and the accounts whose administrators created the service's roles.
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
# An account approved by a policy: two approvers, both of whom must approve.
POLICY_ACCOUNT = "555566667777"
POLICY_APPROVERS = ("ops1@example.com", "ops2@example.com")
POLICY_QUORUM = 2
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
    """An account's approval policy (SPEC.md, "Approval policy"): its approvers, of whom
    ``quorum`` must approve, its reminders and its escalation. One approver and nothing else is
    the plain policy of one administrator, registered as ``{email}``."""

    account_id: str
    approvers: tuple[str, ...]
    quorum: int = 1
    remind_after_seconds: tuple[int, ...] = ()
    escalate_after_seconds: int | None = None
    escalate_to: tuple[str, ...] = ()

    @property
    def email(self) -> str:
        """The first approver (the plain policy's one administrator)."""
        return self.approvers[0]

    def policy(self) -> dict[str, Any]:
        """The policy with the field names of the API and the registry."""
        return {
            "approvers": list(self.approvers),
            "quorum": self.quorum,
            "remindAfterSeconds": list(self.remind_after_seconds),
            "escalateAfterSeconds": self.escalate_after_seconds,
            "escalateTo": list(self.escalate_to),
        }

    def request(self) -> dict[str, Any]:
        """The body of ``PUT /approvers/{account_id}``: ``{email}`` for the plain policy."""
        if self == SeedApprover(self.account_id, (self.email,)):
            return {"email": self.email}
        body: dict[str, Any] = {"approvers": list(self.approvers), "quorum": self.quorum}
        if self.remind_after_seconds:
            body["remindAfterSeconds"] = list(self.remind_after_seconds)
        if self.escalate_to:
            body["escalateAfterSeconds"] = self.escalate_after_seconds
            body["escalateTo"] = list(self.escalate_to)
        return body


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
    # The accounts whose administrators created the service's roles (``seed_roles``).
    role_accounts: tuple[str, ...] = (ADMIN_ACCOUNT,)

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
    approvers=(
        SeedApprover(ADMIN_ACCOUNT, (ADMIN_EMAIL,)),
        SeedApprover(POLICY_ACCOUNT, POLICY_APPROVERS, quorum=POLICY_QUORUM),
    ),
    unregistered_accounts=(UNREGISTERED_ACCOUNT,),
    operator=OPERATOR,
    role_accounts=(ADMIN_ACCOUNT, POLICY_ACCOUNT),
)

USERS: dict[str, SeedUser] = {user.user_id: user for user in SEED.users}


def trust_policy(principal: dict[str, Any], condition: dict[str, Any] | None = None) -> str:
    """A role's trust policy that lets ``principal`` (e.g. ``{"AWS": arn}``) assume it."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def seed_roles(
    runner_arn: str,
    verifier_role: str,
    *,
    service_account: str,
    external_id: str = "",
    account_id: str = ADMIN_ACCOUNT,
) -> tuple[SeedRole, ...]:
    """The roles the administrator of ``account_id`` (one of ``SEED.role_accounts``) creates: the
    verifier role that the service (in ``service_account``) assumes, with ``external_id`` if there
    is one; ``TRUSTED_ROLE``, which trusts the runner principal; ``UNTRUSTED_ROLE``, which does not."""
    condition = {"StringEquals": {"sts:ExternalId": external_id}} if external_id else None
    read_roles = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetRole"], "Resource": "*"}]})  # fmt: skip
    return (
        SeedRole(
            account_id,
            verifier_role,
            trust_policy({"AWS": f"arn:aws:iam::{service_account}:root"}, condition),
            description="Lets the account connections service read roles in this account.",
            inline_policies=(("ReadRoles", read_roles),),
        ),
        SeedRole(account_id, TRUSTED_ROLE, trust_policy({"AWS": runner_arn})),
        SeedRole(account_id, UNTRUSTED_ROLE, trust_policy({"Service": "ec2.amazonaws.com"})),
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
