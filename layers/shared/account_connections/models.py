"""Pydantic models: what the API takes and returns, and what the state table holds."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from account_connections.statuses import ConnectionStatus

ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
SPACE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
USER_ID_PATTERN = r"^[A-Za-z0-9._@+-]{1,128}$"
ROLE_NAME_PATTERN = r"^[\w+=,.@-]{1,64}$"
_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):iam::(?P<account>[0-9]{12}):role/"
    r"(?P<path>(?:[\x21-\x7e]*/)?)(?P<name>[\w+=,.@-]{1,64})$",
    re.ASCII,
)
MAX_ROLE_PATH = 512


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """A sortable UTC timestamp with milliseconds, as every item in the table stores it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") for char in value):
        raise ValueError("must not contain control or invisible format characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class RoleArn(BaseModel):
    """A parsed IAM role ARN: ``arn:<partition>:iam::<account>:role/<path><name>``."""

    arn: str
    partition: str
    account_id: str
    path: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> RoleArn:
        """Raises ``ValueError`` with a message fit for the user when ``arn`` is not a role ARN."""
        match = _ROLE_ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise ValueError(
                "must be an IAM role ARN: arn:<partition>:iam::<12 digits>:role/<path><name>, "
                "the name 1-64 of letters, digits and +=,.@_-"
            )
        path = "/" + match["path"]
        if len(path) > MAX_ROLE_PATH:
            raise ValueError(f"role path must be at most {MAX_ROLE_PATH} characters")
        return cls(
            arn=arn,
            partition=match["partition"],
            account_id=match["account"],
            path=path,
            name=match["name"],
        )


def _role_arn(value: str) -> str:
    RoleArn.parse(value)
    return value


AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
SpaceId = Annotated[str, StringConstraints(pattern=SPACE_ID_PATTERN)]
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_not_blank),
    AfterValidator(_no_control_characters),
]
Description = Annotated[str, StringConstraints(max_length=1000)]
RoleArnText = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_role_arn)]


class StrictModel(BaseModel):
    """Input models refuse unknown fields and never coerce types (``"12"`` is not 12)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SpaceRole(StrEnum):
    SPACE_ADMIN = "SPACE_ADMIN"
    POWER_USER = "POWER_USER"
    LIMITED_ACCESS = "LIMITED_ACCESS"


class EventType(StrEnum):
    REQUESTED = "REQUESTED"
    STATUS_CHANGED = "STATUS_CHANGED"
    LINK_SENT = "LINK_SENT"
    ROLE_ATTACHED = "ROLE_ATTACHED"
    ROLE_REJECTED = "ROLE_REJECTED"
    ROLE_DETACHED = "ROLE_DETACHED"
    # Operators' changes to the registry: they belong to no connection.
    SPACE_CHANGED = "SPACE_CHANGED"
    MEMBER_CHANGED = "MEMBER_CHANGED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    APPROVER_CHANGED = "APPROVER_CHANGED"
    APPROVER_REMOVED = "APPROVER_REMOVED"


# ---- requests -------------------------------------------------------------------------------


class CreateConnectionRequest(StrictModel):
    accountId: AccountId = Field(description="The twelve-digit AWS account ID to connect.")
    displayName: DisplayName = Field(description="How the space shows the account, 1-100 characters.")
    description: Description | None = Field(default=None, description="At most 1000 characters.")
    roleArns: list[RoleArnText] = Field(
        default_factory=list, max_length=10, description="IAM roles to attach once verified (at most 10)."
    )


class AttachRoleRequest(StrictModel):
    roleArn: RoleArnText


class PutSpaceRequest(StrictModel):
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=100), AfterValidator(_not_blank),
        AfterValidator(_no_control_characters),
    ]  # fmt: skip


class PutMemberRequest(StrictModel):
    # Strict mode would take only SpaceRole instances; JSON can only send the role's name.
    role: Annotated[SpaceRole, Field(strict=False, description="SPACE_ADMIN, POWER_USER or LIMITED_ACCESS.")]


class PutApproverRequest(StrictModel):
    email: Annotated[
        str,
        StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$"),
    ]


class DecisionRequest(StrictModel):
    """``POST /verify`` as JSON. The HTML form sends the same names plus ``csrf``."""

    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    decision: Literal["approve", "reject"]
    authorizePaidTiers: bool = False
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None


# ---- stored and returned ---------------------------------------------------------------------


class RoleAttachment(BaseModel):
    roleArn: str
    roleName: str
    attached: bool
    reason: str | None = None
    checkedAt: str


class Connection(BaseModel):
    """A connection request as the API shows it. Secrets (task token, link hash) never live here."""

    connectionId: str
    spaceId: str
    accountId: str
    displayName: str
    description: str | None = None
    roleArns: list[str] = Field(default_factory=list)
    status: ConnectionStatus
    requestedBy: str
    createdAt: str
    updatedAt: str
    expiresAt: str
    version: int = 1
    decidedBy: str | None = None
    decidedAt: str | None = None
    paidTiersAuthorized: bool | None = None
    verifiedAt: str | None = None
    disconnectedAt: str | None = None
    reason: str | None = None


class ShownRequest(BaseModel):
    """What the administrator is asked to approve, as it stood when a token was made for it.

    Kept on each verification token item, so that a decision reads only its token: the decision's
    transaction then requires the connection to still be pending at this ``version`` with this
    ``requestDigest``, so a request that changed since cannot be decided on what was shown."""

    connectionId: str
    spaceId: str
    accountId: str
    displayName: str
    description: str | None = None
    roleArns: list[str] = Field(default_factory=list)
    requestedBy: str
    createdAt: str
    expiresAt: str
    version: int = 1

    @classmethod
    def of(cls, connection: Connection) -> ShownRequest:
        return cls.model_validate(connection.model_dump(include=set(cls.model_fields)))

    def pending(self) -> Connection:
        """The pending connection this was taken from (its status changes from here)."""
        return Connection(**self.model_dump(), status=ConnectionStatus.PENDING_APPROVAL,
                          updatedAt=self.createdAt)  # fmt: skip


# What the administrator is shown and approves: a change to any of it is a different request.
_DIGESTED = {
    "connectionId", "spaceId", "accountId", "displayName",
    "description", "roleArns", "requestedBy", "expiresAt",
}  # fmt: skip


def request_digest(request: Connection | ShownRequest) -> str:
    """SHA-256 over what the administrator is asked to approve. Stored on the connection item
    (``requestDigest``) and derived from a token's ``ShownRequest``: the decision requires the two
    to match, and the verification step recomputes it, so a request that changed fails."""
    shown = request.model_dump(include=_DIGESTED)
    return hashlib.sha256(json.dumps(shown, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class AuditEvent(BaseModel):
    """One recorded change: of a connection, or (``connectionId`` None) of the registry of spaces,
    members and administrators, which names its space or its account."""

    eventId: str
    connectionId: str | None = None
    spaceId: str | None = None
    accountId: str | None = None
    type: EventType
    actor: str
    at: str
    fromStatus: ConnectionStatus | None = None
    toStatus: ConnectionStatus | None = None
    detail: str | None = None


class ConnectionDetail(Connection):
    roles: list[RoleAttachment] = Field(default_factory=list)
    history: list[AuditEvent] = Field(default_factory=list)


class CreateConnectionResponse(Connection):
    connectionToken: str = Field(description="Shown only in this response: hand it to the administrator.")


class ConnectionPage(BaseModel):
    items: list[Connection]
    nextToken: str | None = None


class AuditEventPage(BaseModel):
    items: list[AuditEvent]
    nextToken: str | None = None


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
    subscriptionArn: str | None = None
    updatedAt: str
    updatedBy: str


class ApproverPage(BaseModel):
    items: list[Approver]
    nextToken: str | None = None
