"""Approval links: the one-time link the notify step emails, and the requester's resend.

A link is a random token of 256 bits; the table keeps only its SHA-256 (a ``TOKEN#<hash>``
item of kind ``LINK``). The workflow's task token stays on the connection item: it is never
part of a link, an email or a log line.
"""

from __future__ import annotations

import html
from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel

from account_connections.authz import Principal
from account_connections.connections import LINK, TOKEN_RETENTION, token_item
from account_connections.errors import ConnectionAlreadyDecided, ConnectionNotFound, DecisionNotReady
from account_connections.models import Connection, EventType, isoformat, utcnow
from account_connections.notifier import ApprovalMailer
from account_connections.observability import logger, metrics
from account_connections.repository import Repository
from account_connections.statuses import ConnectionStatus
from account_connections.tokens import new_secret, new_token


class ApprovalEmail(BaseModel):
    subject: str
    body: str


class LinkSent(BaseModel):
    """What a resend answers: when the new link went out and until when it works."""

    connectionId: str
    status: ConnectionStatus
    sentAt: str
    expiresAt: str


def link_url(verify_base_url: str, token: str) -> str:
    return f"{verify_base_url.rstrip('/')}/verify?token={quote(token, safe='')}"


def compose_email(connection: Connection, link: str) -> ApprovalEmail:
    """The plain-text email: what is asked, by whom, until when, and the link.

    Every value a requester typed is escaped (SPEC.md, "Input rules"); the subject carries none
    of them, so no markup or look-alike text reaches a mail client's subject line.
    """

    def text(value: str) -> str:
        return html.escape(value, quote=True)

    roles = "\n".join(f"    - {text(arn)}" for arn in connection.roleArns) or "    (none)"
    body = "\n".join([
        "A space asks to connect your AWS account. You are receiving this because you are the",
        f"registered administrator of AWS account {connection.accountId}.",
        "",
        f"  Space:         {text(connection.spaceId)}",
        f"  Account:       {connection.accountId}",
        f"  Display name:  {text(connection.displayName)}",
        f"  Description:   {text(connection.description or '(none)')}",
        f"  Requested by:  {text(connection.requestedBy)}",
        f"  Requested at:  {connection.createdAt}",
        "  Roles to attach once verified:",
        roles,
        f"  Link expires:  {connection.expiresAt}",
        "",
        "To verify or reject the request, open this link. It works for one decision, until it",
        "expires, and only while the request is pending:",
        "",
        f"  {link}",
        "",
        "If you do not expect this request, reject it with a reason or ignore this email:",
        "nothing is connected until you decide.",
    ])  # fmt: skip
    subject = f"Approve connecting AWS account {connection.accountId} to space {connection.spaceId}"
    return ApprovalEmail(subject=subject[:99], body=body)


def issue_link(
    repo: Repository,
    mailer: ApprovalMailer,
    connection: Connection,
    *,
    actor: str,
    verify_base_url: str,
    replaces: str | None,
    task_token: str | None = None,
) -> str:
    """Store a new link (retiring ``replaces`` at once) and email it; returns when it was sent.

    The writes are one transaction conditional on the connection still being pending; with
    ``task_token`` they also keep the workflow's task token and a fresh CSRF secret on the
    connection. Raises ``ConnectionAlreadyDecided`` when the request is no longer pending.
    """
    token, token_hash = new_token()
    expires = datetime.fromisoformat(connection.expiresAt)
    now = isoformat(utcnow())
    ttl = int((expires + TOKEN_RETENTION).timestamp())
    extra = [
        repo.put_token_op(
            token_item(token_hash, connection.connectionId, LINK, now, connection.expiresAt, ttl)
        )
    ]
    if replaces and replaces != token_hash:
        extra.append(repo.retire_token_op(replaces, "REPLACED", require_active=False))
    fields: dict[str, str] = {"linkTokenHash": token_hash, "verifyBaseUrl": verify_base_url}
    if task_token is not None:
        fields.update(taskToken=task_token, csrfSecret=new_secret())
    detail = "new link emailed; the previous one no longer works" if replaces else "link emailed"
    repo.record_event(connection, EventType.LINK_SENT, actor, detail, extra_items=extra, set_fields=fields)
    email = compose_email(connection, link_url(verify_base_url, token))
    mailer.send(connection.accountId, email.subject, email.body)
    metrics.add_metric(name="ApprovalLinksSent", unit="Count", value=1)
    logger.info(
        "approval link sent", extra={"connection_id": connection.connectionId, "resend": bool(replaces)}
    )
    return now


def resend_link(
    repo: Repository, mailer: ApprovalMailer, principal: Principal, space_id: str, connection_id: str
) -> LinkSent:
    """A new link for a pending request; the old one answers 410 ("replaced") from now on.

    Raises ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (not pending, or the window has
    closed), ``DecisionNotReady``
    (the workflow has not sent the first link yet).
    """
    stored = repo.get_connection_item(connection_id)
    connection = repo.get_connection(connection_id) if stored else None
    if stored is None or connection is None or connection.spaceId != space_id:
        raise ConnectionNotFound(f"connection {connection_id} does not exist")
    if connection.status != ConnectionStatus.PENDING_APPROVAL:
        raise ConnectionAlreadyDecided(f"a {connection.status} connection has no link to resend")
    if utcnow() >= datetime.fromisoformat(connection.expiresAt):
        raise ConnectionAlreadyDecided("the approval window has closed: a new link would not work")
    if not stored.get("taskToken") or not stored.get("verifyBaseUrl"):
        raise DecisionNotReady("the first link is still being sent; try again in a moment")
    sent_at = issue_link(
        repo, mailer, connection, actor=principal.sub, verify_base_url=str(stored["verifyBaseUrl"]),
        replaces=stored.get("linkTokenHash"),
    )  # fmt: skip
    return LinkSent(connectionId=connection_id, status=connection.status, sentAt=sent_at,
                    expiresAt=connection.expiresAt)  # fmt: skip
