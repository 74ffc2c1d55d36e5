"""A connection request: what requesters send, what the table keeps and the API shows, the
request as the administrator was shown it (and its digest), its roles and its status changes."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, Field, PrivateAttr, StringConstraints

from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.chain import ChainHead
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.fields import AccountId, Description, DisplayName, Model, StrictModel
from account_connections.domain.limits import MAX_ROLES
from account_connections.domain.policy import ApprovalPolicy
from account_connections.domain.proof import AccountProof
from account_connections.domain.statuses import ConnectionStatus

_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):iam::(?P<account>[0-9]{12}):role/"
    r"(?P<path>(?:[\x21-\x7e]*/)?)(?P<name>[\w+=,.@-]{1,64})$",
    re.ASCII,
)
MAX_ROLE_PATH = 512


class RoleArn(Model):
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


RoleArnText = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_role_arn)]


# ---- requests -------------------------------------------------------------------------------


class CreateConnectionRequest(StrictModel):
    accountId: AccountId = Field(description="The twelve-digit AWS account ID to connect.")
    displayName: DisplayName = Field(description="How the space shows the account, 1-100 characters.")
    description: Description | None = Field(default=None, description="At most 1000 characters.")
    roleArns: list[RoleArnText] = Field(
        default_factory=list, max_length=MAX_ROLES,
        description="IAM roles to attach once verified (at most 10).",
    )  # fmt: skip


class AttachRoleRequest(StrictModel):
    roleArn: RoleArnText


DecisionMethod = Literal["EMAIL_LINK", "ACCOUNT_PROOF"]


class DecisionRequest(StrictModel):
    """``POST /verify`` as JSON. The HTML form sends the same names plus ``csrf`` (and the proof as
    JSON text)."""

    token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    decision: Literal["approve", "reject"]
    authorizePaidTiers: bool = False
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None
    accountProof: AccountProof | None = Field(
        default=None,
        description="What `acctconn prove CONNECTION_ID` prints: needed with a connection token, "
        "and with every link where the deployment requires account proofs.",
    )


# ---- stored and returned ---------------------------------------------------------------------


class RoleAttachment(Model):
    roleArn: str
    roleName: str
    attached: bool
    reason: str | None = None
    checkedAt: str


class Approval(Model):
    """One approver's approval of a request: who (the address a link went to, or the principal an
    account proof proved), how, when, and whether they authorized paid tiers."""

    approver: str
    decisionMethod: DecisionMethod
    at: str
    paidTiersAuthorized: bool = False


_EMPTY_CHAIN = ChainHead()


class Connection(Model):
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
    decisionMethod: DecisionMethod | None = None
    # With RequireAccountProof an emailed link also needs a proof: the principal it proved.
    provenPrincipal: str | None = None
    # The approval policy at work: how many distinct approvers must approve, and who has so far
    # (in this round: a policy change starts a new one).
    quorum: int = 1
    approvals: list[Approval] = Field(default_factory=list)
    # The head of its audit events' hash chain as read (never shown: the store conditions the next
    # write of the chain on it); None: the empty chain's. model_copy keeps it. A plain default, not
    # a default factory: pydantic inspects a factory's signature on every instance it builds
    # (about 0.1 ms a connection, several per request).
    _chain: ChainHead | None = PrivateAttr(default=None)

    @property
    def chain_head(self) -> ChainHead:
        return self._chain or _EMPTY_CHAIN

    def with_chain(self, head: ChainHead) -> Connection:
        """This connection, its chain's head as ``head``."""
        self._chain = None if head == _EMPTY_CHAIN else head  # equal to one never given a head
        return self


@dataclass(frozen=True)
class ConnectionSecrets:
    """What the connection's item keeps that only the server sees: the live links (address -> the
    hash of its link), the hash of its connection token, the waiting workflow's task token, the
    CSRF secret of its links, the base URL its links start with, the digest of the request as
    first stored, and the approval policy at work: its snapshot (taken with the first link and at
    each policy change), whether it escalated, the round, how many approvals it still needs, and
    every address that got a link (told how the request ended). ``revision`` counts the writes of
    links and approvals: each write of links is conditional on it."""

    links: dict[str, str] = field(default_factory=dict)
    connection_token_hash: str | None = None
    task_token: str | None = None
    csrf_secret: str | None = None
    verify_base_url: str | None = None
    request_digest: str | None = None
    requester_email: str | None = None
    policy: ApprovalPolicy | None = None
    escalated: bool = False
    approval_round: int = 0
    approvals_needed: int | None = None
    notified: tuple[str, ...] = ()
    revision: int = 0


class StatusChange(NamedTuple):
    """A transition: the status it reaches, who made it, and what it records besides."""

    target: ConnectionStatus
    actor: str
    detail: str | None = None
    reason: str | None = None
    decidedBy: str | None = None
    decidedAt: str | None = None
    paidTiersAuthorized: bool | None = None
    verifiedAt: str | None = None
    disconnectedAt: str | None = None
    decisionMethod: str | None = None
    provenPrincipal: str | None = None

    def fields(self) -> dict[str, object]:
        """The connection's fields this change sets (those given)."""
        names = ("reason", "decidedBy", "decidedAt", "paidTiersAuthorized", "verifiedAt", "disconnectedAt",
                 "decisionMethod", "provenPrincipal")  # fmt: skip
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class ShownRequest(Model):
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


class ConnectionDetail(Connection):
    roles: list[RoleAttachment] = Field(default_factory=list)
    history: list[AuditEvent] = Field(
        default_factory=list, description="One page of the history, oldest first."
    )
    historyNextToken: str | None = Field(
        default=None,
        description="Pass as `historyNextToken` for the next page of the history; null at its end.",
    )


class CreateConnectionResponse(Connection):
    connectionToken: str = Field(description="Shown only in this response: hand it to the administrator.")


class ConnectionPage(Model):
    items: list[Connection]
    nextToken: str | None = None


# ---- the events a connection's changes append ---------------------------------------------------


def requested_event(connection: Connection) -> AuditEvent:
    return AuditEvent(
        eventId=f"{connection.version:06d}",
        connectionId=connection.connectionId,
        spaceId=connection.spaceId,
        accountId=connection.accountId,
        type=EventType.REQUESTED,
        actor=connection.requestedBy,
        at=connection.createdAt,
        toStatus=ConnectionStatus.PENDING_APPROVAL,
        detail=f"requested by {connection.requestedBy}",
    )


def status_event(connection: Connection, change: StatusChange, version: int, at: str) -> AuditEvent:
    """The event of ``connection`` (as it was) reaching ``change.target`` as ``version``."""
    return AuditEvent(
        eventId=f"{version:06d}",
        connectionId=connection.connectionId,
        spaceId=connection.spaceId,
        accountId=connection.accountId,
        type=EventType.STATUS_CHANGED,
        actor=change.actor,
        at=at,
        fromStatus=connection.status,
        toStatus=change.target,
        detail=change.detail,
        decisionMethod=change.decisionMethod,
    )


def connection_event(connection: Connection, event_type: EventType, actor: str, detail: str) -> AuditEvent:
    """An event that changes no status: a link sent, a role attached, refused or detached."""
    return AuditEvent(
        eventId=uuid.uuid4().hex,
        connectionId=connection.connectionId,
        spaceId=connection.spaceId,
        accountId=connection.accountId,
        type=event_type,
        actor=actor,
        at=isoformat(utcnow()),
        detail=detail,
    )


def approval_event(connection: Connection, approval: Approval, still_needed: int) -> AuditEvent:
    """APPROVAL_RECORDED: one approver's approval, and how many the request still needs."""
    more = "the quorum is reached" if still_needed <= 0 else f"{still_needed} more needed"
    paid = " with paid tiers" if approval.paidTiersAuthorized else ""
    event = connection_event(
        connection,
        EventType.APPROVAL_RECORDED,
        approval.approver,
        f"approved by {approval.approver}{paid}: {more}",
    )
    return event.model_copy(update={"at": approval.at, "decisionMethod": approval.decisionMethod})


def token_replaced_event(connection: Connection, actor: str) -> AuditEvent:
    """A create replayed with its Idempotency-Key got a new connection token in place of the first."""
    detail = "the create was replayed: a new connection token replaced the previous one"
    return connection_event(connection, EventType.CONNECTION_TOKEN_REPLACED, actor, detail)


def role_event(connection: Connection, attachment: RoleAttachment, actor: str) -> AuditEvent:
    """ROLE_ATTACHED naming the role, or ROLE_REJECTED with why."""
    if attachment.attached:
        return connection_event(connection, EventType.ROLE_ATTACHED, actor, attachment.roleArn)
    detail = f"{attachment.roleArn}: {attachment.reason}"
    return connection_event(connection, EventType.ROLE_REJECTED, actor, detail)
