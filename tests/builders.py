"""Given state for tests over the ports: connections in any status, their tokens, and the names
the tests share (SPEC.md's seed: space demo, account 111122223333 with admin@example.com)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import Connection, RoleAttachment, ShownRequest, connection_event
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TOKEN_RETENTION, LinkToken, TokenKind, TokenState, new_token

SPACE = "demo"
OTHER_SPACE = "other"
ACCOUNT = "111122223333"
UNREGISTERED_ACCOUNT = "444455556666"
ADMIN_EMAIL = "admin@example.com"
RUNNER = "arn:aws:iam::999999999999:role/WorkflowRunner"
BASE_URL = "https://connections.example.com"


@dataclass
class LinkClock:
    """The time ``logic.links`` sees (the ``link_clock`` fixture puts it in place): stopped at the
    test's start, moved only by ``advance``, since new links are rate-limited per minute."""

    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta = timedelta(minutes=1)) -> None:
        self.now += delta


def role_arn(name: str, account_id: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


def recorded_role(name: str, *, attached: bool = True) -> RoleAttachment:
    """A role's check as recorded on a connection: attached, or refused with a reason."""
    return RoleAttachment(roleArn=role_arn(name), roleName=name, attached=attached,
                          reason=None if attached else "no trust", checkedAt="t")  # fmt: skip


def history_events(of: Connection, count: int) -> list[AuditEvent]:
    """``count`` events of ``of``'s history, a millisecond apart from a second after its creation,
    oldest first (LINK_SENT, each naming its place: "link 0", "link 1", ...)."""
    start = datetime.fromisoformat(of.createdAt) + timedelta(seconds=1)
    return [
        connection_event(of, EventType.LINK_SENT, "system", f"link {i}").model_copy(
            update={"at": isoformat(start + timedelta(milliseconds=i)), "eventId": f"{i:032x}"}
        )
        for i in range(count)
    ]


def connection(
    status: ConnectionStatus = ConnectionStatus.PENDING_APPROVAL,
    *,
    space_id: str = SPACE,
    account_id: str = ACCOUNT,
    version: int = 1,
    role_arns: list[str] | None = None,
    display_name: str = "Production",
    requested_by: str = "alice",
    created_ago: timedelta = timedelta(minutes=5),
    expires_in: timedelta = timedelta(days=7),
) -> Connection:
    """A connection as the table would hold it: created ``created_ago``, expiring ``expires_in``
    from now (negative: the window has closed)."""
    now = utcnow()
    created = isoformat(now - created_ago)
    return Connection(
        connectionId=str(uuid.uuid4()),
        spaceId=space_id,
        accountId=account_id,
        displayName=display_name,
        description="Deploy target for the web app",
        roleArns=list(role_arns or []),
        status=status,
        requestedBy=requested_by,
        createdAt=created,
        updatedAt=created,
        expiresAt=isoformat(now + expires_in),
        version=version,
    )


def token_for(
    of: Connection,
    kind: TokenKind = TokenKind.LINK,
    *,
    state: TokenState = TokenState.ACTIVE,
    task_token: str | None = None,
    csrf_secret: str | None = None,
    approver_email: str | None = ADMIN_EMAIL,
) -> tuple[str, LinkToken]:
    """A fresh token of ``of`` (the request as it stands now) and the record the table keeps."""
    token, token_hash = new_token()
    expires = utcnow() + timedelta(days=7)
    record = LinkToken(
        tokenHash=token_hash,
        connectionId=of.connectionId,
        kind=kind,
        state=state,
        createdAt=of.createdAt,
        expiresAt=of.expiresAt,
        ttl=int((expires + TOKEN_RETENTION).timestamp()),
        request=ShownRequest.of(of),
        approverEmail=approver_email,
        taskToken=task_token,
        csrfSecret=csrf_secret,
    )
    return token, record
