"""The registry operators keep: spaces, their members with a role each, and the administrator
who approves each account's connections."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from account_connections.domain.fields import DisplayName, Email, PrincipalArn, StrictModel


class SpaceRole(StrEnum):
    SPACE_ADMIN = "SPACE_ADMIN"
    POWER_USER = "POWER_USER"
    LIMITED_ACCESS = "LIMITED_ACCESS"


class PutSpaceRequest(StrictModel):
    name: DisplayName


class PutMemberRequest(StrictModel):
    # Strict mode would take only SpaceRole instances; JSON can only send the role's name.
    role: Annotated[SpaceRole, Field(strict=False, description="SPACE_ADMIN, POWER_USER or LIMITED_ACCESS.")]


class PutApproverRequest(StrictModel):
    email: Email
    approverPrincipals: list[PrincipalArn] = Field(
        default_factory=list, max_length=10,
        description="When given, an account proof counts only from one of these IAM roles or users "
        "of the account (an assumed role matches its role).",
    )  # fmt: skip


class Space(BaseModel):
    spaceId: str
    name: str
    updatedAt: str
    updatedBy: str


class Member(BaseModel):
    spaceId: str
    userId: str
    role: SpaceRole
    updatedAt: str
    updatedBy: str


class Approver(BaseModel):
    accountId: str
    email: str
    approverPrincipals: list[str] = Field(default_factory=list)
    subscriptionArn: str | None = None
    updatedAt: str
    updatedBy: str


class AddressSubscription(BaseModel):
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


class ApproverPage(BaseModel):
    items: list[Approver]
    nextToken: str | None = None
