"""The registry operators keep: spaces, their members with a role each, and the approval
policy of each account (``domain.policy``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from account_connections.domain.errors import ApproverNotRegistered
from account_connections.domain.fields import DisplayName, Model, StrictModel
from account_connections.domain.policy import ApprovalPolicy
from account_connections.domain.policy import PutApproverRequest as PutApproverRequest


class SpaceRole(StrEnum):
    SPACE_ADMIN = "SPACE_ADMIN"
    POWER_USER = "POWER_USER"
    LIMITED_ACCESS = "LIMITED_ACCESS"


class PutSpaceRequest(StrictModel):
    name: DisplayName


class PutMemberRequest(StrictModel):
    # Strict mode would take only SpaceRole instances; JSON can only send the role's name.
    role: Annotated[SpaceRole, Field(strict=False, description="SPACE_ADMIN, POWER_USER or LIMITED_ACCESS.")]


class Space(Model):
    spaceId: str
    name: str
    updatedAt: str
    updatedBy: str


class Member(Model):
    spaceId: str
    userId: str
    role: SpaceRole
    updatedAt: str
    updatedBy: str


class Approver(ApprovalPolicy):
    """An account's registration: its approval policy. ``email`` is its first approver (what the
    plain ``{email}`` form registers), ``subscriptionArn`` that address's subscription."""

    accountId: str
    email: str = ""
    approvers: list[str] = Field(default_factory=list)
    subscriptionArn: str | None = None
    updatedAt: str
    updatedBy: str

    @model_validator(mode="after")
    def _one_policy(self) -> Approver:
        # A registration stored before policies named its one administrator only.
        if not self.approvers and self.email:
            self.approvers = [self.email]
        if not self.email and self.approvers:
            self.email = self.approvers[0]
        return self

    def policy(self) -> ApprovalPolicy:
        return ApprovalPolicy.model_validate(self.model_dump(include=set(ApprovalPolicy.model_fields)))


def no_administrator(account_id: str) -> ApproverNotRegistered:
    """A create's refusal for an account nobody is registered to approve (422)."""
    return ApproverNotRegistered(
        f"no administrator is registered for account {account_id}: ask an operator to register one"
    )


class AddressSubscription(Model):
    """An administrator's address: its one email subscription to the approval topic and the
    accounts whose messages its filter policy lets through. ``version`` is the one it was read
    at (0: not stored yet); every change is written on condition that it still is, so that two
    operators changing the same address at once cannot lose one's account."""

    email: str
    subscriptionArn: str | None = None
    accounts: list[str] = Field(default_factory=list)
    version: int = 0

    def serving(self, account_id: str) -> AddressSubscription:
        return self.model_copy(update={"accounts": sorted({*self.accounts, account_id})})

    def without(self, account_id: str) -> AddressSubscription:
        return self.model_copy(update={"accounts": [a for a in self.accounts if a != account_id]})


class ApproverPage(Model):
    items: list[Approver]
    nextToken: str | None = None
