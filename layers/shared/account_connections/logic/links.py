"""Approval links: the one-time link the notify step emails, and the requester's resend.

A link is a random token of 256 bits; the table keeps only its SHA-256 (a ``TOKEN#<hash>``
item of kind ``LINK``). That item also keeps what a decision needs, so that a decision reads
nothing else: the request as shown, the address the email went to, and copies of the workflow's
task token and the request's CSRF secret (the connection token's item gets the same copies with
each link). The task token is never part of a link, an email, a page or a log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel

from account_connections.domain.access import Principal
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import Connection, ConnectionSecrets, ShownRequest
from account_connections.domain.errors import ConnectionAlreadyDecided, ConnectionNotFound, DecisionNotReady
from account_connections.domain.limits import LinkLimit
from account_connections.domain.registry import Approver
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TOKEN_RETENTION, LinkToken, TokenKind, new_secret, new_token
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, Mailer, NewLink, RegistryStore


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


def quoted(value: str) -> list[str]:
    """``value`` as a plain-text quote: every line of it starts with ``> `` (SPEC.md, "Input
    rules"), so that nothing a requester wrote can pass for the service's own words. Splits on
    every line break a mail client may honour, not only the newline the input rules allow."""
    return [f"> {line}" for line in value.splitlines() or [""]]


def _block(label: str, value: str | None, *, absent: str = "none given") -> list[str]:
    """The service's ``label``, then ``value`` quoted under it (or, with none, the label says so)."""
    if not value:
        return [f"{label} {absent}", ""]
    return [label, *quoted(value), ""]


def compose_email(connection: Connection, link: str) -> ApprovalEmail:
    """The plain-text email: what is asked, by whom, until when, and the link.

    What the service vouches for (the space, the account, the dates, the link) is its own text;
    everything the requester wrote (display name, description, who they are, the roles) is a
    quoted block under a label the service writes, taken verbatim: a plain-text email needs no
    escaping, and escaping stops nothing there. The subject carries none of the requester's text.
    """
    roles = "\n".join(connection.roleArns)
    body = "\n".join([
        "A space asks to connect your AWS account. You are receiving this because you are the",
        f"registered administrator of AWS account {connection.accountId}.",
        "",
        f"  Space:         {connection.spaceId}",
        f"  Account:       {connection.accountId}",
        f"  Requested at:  {connection.createdAt}",
        f"  Link expires:  {connection.expiresAt}",
        "",
        "What the requester supplied is quoted below, on lines that start with \"> \": it is their",
        "text, not this service's.",
        "",
        *_block("Display name:", connection.displayName),
        *_block("Description:", connection.description),
        *_block("Requested by:", connection.requestedBy),
        *_block("Roles to attach once verified:", roles, absent="none"),
        "To verify or reject the request, open this link. It works for one decision, until it",
        "expires, and only while the request is pending:",
        "",
        link,
        "",
        "If you do not expect this request, reject it with a reason or ignore this email:",
        "nothing is connected until you decide.",
    ])  # fmt: skip
    subject = f"Approve connecting AWS account {connection.accountId} to space {connection.spaceId}"
    return ApprovalEmail(subject=subject[:99], body=body)


def issue_link(
    connections: ConnectionStore,
    mailer: Mailer,
    connection: Connection,
    secrets: ConnectionSecrets,
    *,
    actor: str,
    verify_base_url: str,
    approver: Approver | None,
    task_token: str | None = None,
    limit: LinkLimit | None = None,
    detail: str | None = None,
) -> str:
    """Store a new link (retiring the previous one at once) and email it; returns when it was sent.

    ``secrets`` are the connection's as read (its link, connection token, task token and CSRF
    secret). The writes are one transaction conditional on the connection still being pending;
    with ``task_token`` (the notify step) they also keep the workflow's task token and a fresh
    CSRF secret on the connection. The new link's item, and the connection token's, get copies
    of both, the address the email goes to and the principals whose proofs count (``approver``'s,
    as registered now), so that a decision needs to read nothing but its token. ``limit`` (a
    resend's) is enforced by that same transaction, so nothing is stored or sent when it refuses;
    ``detail`` says why in the LINK_SENT event. Raises ``ConnectionAlreadyDecided`` when the
    request is no longer pending, ``TooManyLinks``.
    """
    token, token_hash = new_token()
    expires = datetime.fromisoformat(connection.expiresAt)
    now = isoformat(utcnow())
    csrf_secret = new_secret() if task_token is not None else secrets.csrf_secret
    replaces = secrets.link_token_hash
    link = NewLink(
        token=LinkToken(
            tokenHash=token_hash, connectionId=connection.connectionId, kind=TokenKind.LINK, createdAt=now,
            expiresAt=connection.expiresAt, ttl=int((expires + TOKEN_RETENTION).timestamp()),
            request=ShownRequest.of(connection), approverEmail=approver.email if approver else None,
            requesterEmail=secrets.requester_email,
            approverPrincipals=(approver.approverPrincipals or None) if approver else None,
            taskToken=task_token if task_token is not None else secrets.task_token, csrfSecret=csrf_secret,
        ),
        verify_base_url=verify_base_url,
        replaces=replaces,
        task_token=task_token,
        csrf_secret=csrf_secret if task_token is not None else None,
        connection_token_hash=secrets.connection_token_hash,
        detail=detail or ("new link emailed; the previous one no longer works" if replaces else
                          "link emailed"),
        limit=limit,
    )  # fmt: skip
    connections.issue_link(connection, link, actor=actor)
    email = compose_email(connection, link_url(verify_base_url, token))
    mailer.send(connection.accountId, [approver.email] if approver else [], email.subject, email.body)
    metrics.add_metric(name="ApprovalLinksSent", unit="Count", value=1)
    logger.info(
        "approval link sent", extra={"connection_id": connection.connectionId, "resend": bool(replaces)}
    )
    return now


def resend_link(
    connections: ConnectionStore,
    registry: RegistryStore,
    mailer: Mailer,
    principal: Principal,
    space_id: str,
    connection_id: str,
) -> LinkSent:
    """A new link for a pending request; the old one answers 410 ("replaced") from now on.

    The new link records the address of the administrator registered now (the email goes to that
    subscription); with none registered it records none, and a decision through it is recorded
    as by the account's administrator.

    Links are rate-limited (``domain.limits``): one a minute, ten in all with the first.

    Raises ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (not pending, or the window has
    closed), ``DecisionNotReady`` (the workflow has not sent the first link yet), ``TooManyLinks``
    (with when to retry, unless all ten are used).
    """
    connection, secrets = connections.read(connection_id)
    if connection.spaceId != space_id:
        raise ConnectionNotFound(f"connection {connection_id} does not exist")
    if connection.status != ConnectionStatus.PENDING_APPROVAL:
        raise ConnectionAlreadyDecided(f"a {connection.status} connection has no link to resend")
    if utcnow() >= datetime.fromisoformat(connection.expiresAt):
        raise ConnectionAlreadyDecided("the approval window has closed: a new link would not work")
    if not secrets.task_token or not secrets.verify_base_url:
        raise DecisionNotReady("the first link is still being sent; try again in a moment")
    approver = registry.get_approver(connection.accountId)
    sent_at = issue_link(
        connections, mailer, connection, secrets, actor=principal.sub,
        verify_base_url=secrets.verify_base_url, approver=approver, limit=LinkLimit(),
    )  # fmt: skip
    return LinkSent(connectionId=connection_id, status=connection.status, sentAt=sent_at,
                    expiresAt=connection.expiresAt)  # fmt: skip


# ---- the registry changed: the account's pending requests get new links, or lose theirs ------------

RENEWED = "the account's administrator changed: new link emailed; the previous one no longer works"


def _live_links(
    connections: ConnectionStore, account_id: str
) -> Iterator[tuple[Connection, ConnectionSecrets]]:
    """The account's pending requests whose workflow waits with a live link, each read afresh.

    A request whose workflow has not stored its task token yet has no link to retire and is left
    alone: its notify step reads the registry when it runs, so its first link goes to the address
    registered now (or, with none, the request fails: nobody could approve it). One whose window
    has closed gets nothing: the workflow is about to expire it.
    """
    for pending in connections.pending_for_account(account_id):
        try:
            connection, secrets = connections.read(pending.connectionId)
        except ConnectionNotFound:
            continue
        if (
            connection.status == ConnectionStatus.PENDING_APPROVAL
            and utcnow() < datetime.fromisoformat(connection.expiresAt)
            and secrets.task_token
            and secrets.verify_base_url
        ):
            yield connection, secrets


def renew_links(
    connections: ConnectionStore, mailer: Mailer, account_id: str, approver: Approver, *, actor: str
) -> int:
    """Email ``approver`` a new link for each of the account's pending requests, through
    ``logic.links.issue_link``: the previous link is retired in the same transaction and the
    connection token's copies follow. Recorded as by ``principal``. A request decided, cancelled
    or resent meanwhile loses its guarded write and is left as it is."""
    renewed = 0
    for connection, secrets in _live_links(connections, account_id):
        assert secrets.verify_base_url is not None  # _live_links
        try:
            issue_link(connections, mailer, connection, secrets, actor=actor,
                       verify_base_url=secrets.verify_base_url, approver=approver,
                       detail=RENEWED)  # fmt: skip
        except ConnectionAlreadyDecided:
            continue
        renewed += 1
    logger.info("links renewed", extra={"account_id": account_id, "renewed": renewed, "operator": actor})
    return renewed


def withdraw_links(connections: ConnectionStore, account_id: str, *, actor: str) -> int:
    """Withdraw the live link of each of the account's pending requests with no successor
    (``ConnectionStore.retire_link``), recorded as by ``principal``."""
    withdrawn = 0
    for connection, secrets in _live_links(connections, account_id):
        if not secrets.link_token_hash:
            continue
        try:
            connections.retire_link(connection, secrets, actor=actor)
        except ConnectionAlreadyDecided:
            continue
        withdrawn += 1
    logger.info(
        "links withdrawn", extra={"account_id": account_id, "withdrawn": withdrawn, "operator": actor}
    )
    return withdrawn
