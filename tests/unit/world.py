"""The unit tests' world: every port as its in-memory fake, seeded as SPEC.md's local stack is
(space demo with alice, bob and carol; account 111122223333 administered by admin@example.com
with a BuildRole that trusts the runner and an UntrustedRole that does not; and alice the admin
of the other space too), and the steps a request goes through, driven by the real use cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from account_connections.domain.access import Principal
from account_connections.domain.connection import CreateConnectionRequest, CreateConnectionResponse
from account_connections.domain.policy import FIRST_ROUND, Timer
from account_connections.domain.registry import Approver, Member, Space, SpaceRole
from account_connections.logic.connections import create_connection
from account_connections.steps.contract import NotifyApproverInput
from account_connections.steps.notify_approver import notify_approver
from tests.builders import ACCOUNT, ADMIN_EMAIL, BASE_URL, OTHER_SPACE, RUNNER, SPACE, LinkClock, role_arn
from tests.fakes import (
    Email,
    FakeMailer,
    FakeProofVerifier,
    FakeSubscriptions,
    FakeVerifier,
    FakeWorkflow,
    InMemoryAuditLog,
    InMemoryConnections,
    InMemoryRegistry,
    InMemoryTokens,
    trust_policy,
)

ALICE = Principal(sub="alice", groups=frozenset())
BOB = Principal(sub="bob", groups=frozenset())
OSCAR = Principal(sub="oscar", groups=frozenset({"operators"}))
TIMEOUT = 7 * 24 * 3600
STAMP = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
BUILD_ROLE = role_arn("BuildRole")
UNTRUSTED_ROLE = role_arn("UntrustedRole")


@dataclass
class World:
    tokens: InMemoryTokens = field(default_factory=InMemoryTokens)
    registry: InMemoryRegistry = field(default_factory=InMemoryRegistry)
    workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    subscriptions: FakeSubscriptions = field(default_factory=FakeSubscriptions)
    verifier: FakeVerifier = field(default_factory=FakeVerifier)
    proofs: FakeProofVerifier = field(default_factory=FakeProofVerifier)
    # The time links are issued at (the ``link_clock`` fixture's, when the ``world`` fixture made it).
    clock: LinkClock = field(default_factory=LinkClock)

    def __post_init__(self) -> None:
        self.connections = InMemoryConnections(tokens=self.tokens, registry=self.registry)
        self.audit = InMemoryAuditLog(self.connections, self.registry)

    @classmethod
    def seeded(cls, clock: LinkClock | None = None) -> World:
        world = cls(clock=clock or LinkClock())
        for space_id, name in ((SPACE, "Demo space"), (OTHER_SPACE, "Other space")):
            world.registry.put_space(Space(spaceId=space_id, name=name, **STAMP))
        for user, role in (("alice", "SPACE_ADMIN"), ("bob", "POWER_USER"), ("carol", "LIMITED_ACCESS")):
            world.registry.put_member(Member(spaceId=SPACE, userId=user, role=SpaceRole(role), **STAMP))
        # alice requests in the other space too (a create checks the requester's role).
        admin = SpaceRole.SPACE_ADMIN
        world.registry.put_member(Member(spaceId=OTHER_SPACE, userId="alice", role=admin, **STAMP))
        world.registry.put_approver(Approver(accountId=ACCOUNT, email=ADMIN_EMAIL,
                                             subscriptionArn="arn:aws:sns:us-east-1:123456789012:approvals:admin",
                                             **STAMP))  # fmt: skip
        world.verifier.add_role(ACCOUNT, "BuildRole", trust_policy(RUNNER))
        world.verifier.add_role(ACCOUNT, "UntrustedRole", trust_policy("arn:aws:iam::210987654321:root"))
        return world

    def request(
        self,
        *,
        role_arns: list[str] | None = None,
        space_id: str = SPACE,
        account_id: str = ACCOUNT,
        display_name: str = "Production",
        description: str | None = "Deploy target for the web app",
        timeout: int = TIMEOUT,
    ) -> CreateConnectionResponse:
        """What ``POST /spaces/{space}/connections`` does, as alice."""
        return create_connection(
            self.connections, self.workflow, ALICE, space_id,
            CreateConnectionRequest(accountId=account_id, displayName=display_name, description=description,
                                    roleArns=role_arns or []),
            approval_timeout_seconds=timeout, verify_base_url=BASE_URL, correlation_id="corr-1",
        )  # fmt: skip

    def notify(self, connection_id: str, task_token: str = "task-1", round: Timer = FIRST_ROUND) -> Email:
        """The workflow's notify step, waiting with ``task_token`` after ``round`` fired; returns the
        last email it sent."""
        notify_approver(self.connections, self.registry, self.mailer, self.workflow, NotifyApproverInput(
            connectionId=connection_id, verifyBaseUrl=BASE_URL, taskToken=SecretStr(task_token), round=round,
        ))  # fmt: skip
        return self.mailer.emails[-1]

    def waiting(self, **request: Any) -> tuple[CreateConnectionResponse, Email]:
        """A request whose workflow waits for the decision: created, its link emailed."""
        created = self.request(**request)
        return created, self.notify(created.connectionId)
