"""Approval links: each approver's one-time link, and every change of a request's links.

A link is a random token of 256 bits; the table keeps only its SHA-256 (a ``TOKEN#<hash>``
item of kind ``LINK``). That item also keeps what a decision needs, so that a decision reads
nothing else: the request as shown, the address the email went to, the round and quorum, and
copies of the workflow's task token and the request's CSRF secret (the connection token's item
gets the same copies with each change). The task token is never part of a link, an email, a page
or a log line.

Every approver of the policy at work has a link of their own, and every change of the links is
one write (``ConnectionStore.replace_links``, conditional on the request's revision as read) made
by ``_write_links``: the workflow's first links and each round of its timers (reminders, the
escalation: ``send_round``), the requester's resend, and the registry's changes (a new policy
renews every link; no policy withdraws them). The emails go out after the write, each to its
approver only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from account_connections.domain.access import Principal
from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import (
    Connection,
    ConnectionSecrets,
    ShownRequest,
    connection_event,
)
from account_connections.domain.errors import (
    ApproverNotRegistered,
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DecisionNotReady,
)
from account_connections.domain.fields import Model
from account_connections.domain.limits import LinkLimit
from account_connections.domain.policy import ApprovalPolicy, Timer
from account_connections.domain.registry import Approver
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import (
    TOKEN_RETENTION,
    LinkToken,
    TokenKind,
    TokenState,
    new_secret,
    new_token,
)
from account_connections.logic import backoff
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, LinkChange, Mailer, RegistryStore


class ApprovalEmail(Model):
    subject: str
    body: str


class LinkSent(Model):
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


def compose_email(
    connection: Connection, link: str, *, note: str | None = None, quorum: int = 1,
    approved_by: list[str] | None = None,
) -> ApprovalEmail:  # fmt: skip
    """The plain-text email: what is asked, by whom, until when, and the link; ``note`` says why
    this email (a reminder, an escalation), ``quorum`` and ``approved_by`` how far the approval is.

    What the service vouches for (the space, the account, the dates, the link, the approvers) is
    its own text; everything the requester wrote (display name, description, who they are, the
    roles) is a quoted block under a label the service writes, taken verbatim: a plain-text email
    needs no escaping, and escaping stops nothing there. The subject carries none of the
    requester's text.
    """
    roles = "\n".join(connection.roleArns)
    approvals: list[str] = []
    if quorum > 1:
        so_far = ", ".join(approved_by or []) or "nobody yet"
        approvals = [f"It is approved once {quorum} approvers have approved it; so far by: {so_far}.",
                     "One rejection rejects it.", ""]  # fmt: skip
    body = "\n".join([
        "A space asks to connect your AWS account. You are receiving this because you are an",
        f"approver of AWS account {connection.accountId}.",
        "",
        *([note, ""] if note else []),
        f"  Space:         {connection.spaceId}",
        f"  Account:       {connection.accountId}",
        f"  Connection:    {connection.connectionId}",
        f"  Requested at:  {connection.createdAt}",
        f"  Link expires:  {connection.expiresAt}",
        "",
        *approvals,
        "What the requester supplied is quoted below, on lines that start with \"> \": it is their",
        "text, not this service's.",
        "",
        *_block("Display name:", connection.displayName),
        *_block("Description:", connection.description),
        *_block("Requested by:", connection.requestedBy),
        *_block("Roles to attach once verified:", roles, absent="none"),
        "To verify or reject the request, open this link. It is yours alone, works for one",
        "decision, until it expires, and only while the request is pending:",
        "",
        link,
        "",
        "If you do not expect this request, reject it with a reason or ignore this email:",
        "nothing is connected until you decide.",
    ])  # fmt: skip
    subject = f"Approve connecting AWS account {connection.accountId} to space {connection.spaceId}"
    if note and note.startswith("Reminder"):
        subject = "Reminder: " + subject
    return ApprovalEmail(subject=subject[:99], body=body)


def decided_addresses(connection: Connection) -> set[str]:
    """The approvers who have approved in this round, casefolded (a rejection ends the request)."""
    return {approval.approver.strip().casefold() for approval in connection.approvals}


def _key(address: str) -> str:
    return address.strip().casefold()


def _live(connection: Connection, secrets: ConnectionSecrets) -> dict[str, str]:
    """The links that still work: an approver's link is spent by their approval, so only the
    undecided hold live ones (address -> hash)."""
    done = decided_addresses(connection)
    return {address: hash_ for address, hash_ in secrets.links.items() if _key(address) not in done}


class _Send(NamedTuple):
    """Who gets a new link, and what the write records for each."""

    to: list[str]
    event_type: EventType = EventType.LINK_SENT
    detail: str = "link emailed to {address}"
    note: str | None = None


def _write_links(
    connections: ConnectionStore,
    mailer: Mailer,
    connection: Connection,
    secrets: ConnectionSecrets,
    send: _Send,
    *,
    actor: str,
    verify_base_url: str,
    policy: ApprovalPolicy,
    new_round: bool = False,
    task_token: str | None = None,
    escalated: bool | None = None,
    drop_others: bool = False,
    extra_events: list[AuditEvent] | None = None,
    limit: LinkLimit | None = None,
) -> str:
    """One write of the request's links, then the emails; returns when.

    Each address of ``send.to`` gets a new link (its previous one, if any, dies: ``REPLACED``); the
    other live links die too when ``drop_others`` (a new policy), else they live on and get the
    new ``task_token``. ``new_round``: ``policy`` is a new snapshot, its approvals start from none
    (the first links, a policy change). With ``task_token`` (the workflow entered a new wait) every
    live link and the connection token get copies of it; the first wait also makes the request's
    CSRF secret. Raises ``ConnectionAlreadyDecided`` (the request moved since read: the caller
    reads again), ``TooManyLinks``, ``DependencyUnavailable`` (an email could not be sent: the
    links are stored, and the ones not yet emailed wait for the next reminder or resend).
    """
    now = isoformat(utcnow())
    expires = datetime.fromisoformat(connection.expiresAt)
    csrf_secret = secrets.csrf_secret or new_secret()
    round_ = secrets.approval_round + 1 if new_round else secrets.approval_round
    current_task = task_token if task_token is not None else secrets.task_token
    shown = ShownRequest.of(connection)
    live = _live(connection, secrets)
    issued: dict[str, tuple[str, LinkToken]] = {}
    for address in dict.fromkeys(send.to):
        token, token_hash = new_token()
        issued[address] = (token, LinkToken(
            tokenHash=token_hash, connectionId=connection.connectionId, kind=TokenKind.LINK, createdAt=now,
            expiresAt=connection.expiresAt, ttl=int((expires + TOKEN_RETENTION).timestamp()),
            request=shown, approverEmail=address, requesterEmail=secrets.requester_email,
            approverPrincipals=policy.approverPrincipals or None, taskToken=current_task,
            csrfSecret=csrf_secret, round=round_, quorum=policy.quorum,
        ))  # fmt: skip
    sent = {_key(address) for address in issued}
    retire = [hash_ for address, hash_ in live.items() if _key(address) in sent or drop_others]
    kept = {address: hash_ for address, hash_ in live.items() if hash_ not in retire}
    links = {**kept, **{address: token.tokenHash for address, (_, token) in issued.items()}}
    events = [
        connection_event(connection, send.event_type, actor, send.detail.format(address=address))
        for address in issued
    ] + list(extra_events or [])
    if not events:
        events = [
            connection_event(connection, EventType.LINK_SENT, actor, "the workflow waits anew: no new link")
        ]
    copies: dict[str, Any] = {
        "taskToken": current_task, "csrfSecret": csrf_secret, "round": round_, "quorum": policy.quorum,
        "approverPrincipals": policy.approverPrincipals or [], "approverEmails": list(links),
    }  # fmt: skip
    change = LinkChange(
        at=now, issue=[token for _, token in issued.values()], links=links,
        notified=list(dict.fromkeys([*secrets.notified, *issued])), events=events, retire=retire,
        refresh=list(kept.values()), verify_base_url=verify_base_url, task_token=task_token,
        csrf_secret=csrf_secret if not secrets.csrf_secret else None,
        policy=policy if new_round else None, round=round_ if new_round else None, escalated=escalated,
        connection_token=(secrets.connection_token_hash, copies) if secrets.connection_token_hash else None,
        limit=limit,
    )  # fmt: skip
    connections.replace_links(connection, change, revision=secrets.revision)
    approved_by = [] if new_round else [approval.approver for approval in connection.approvals]
    for address, (token, _) in issued.items():
        email = compose_email(connection, link_url(verify_base_url, token), note=send.note,
                              quorum=policy.quorum, approved_by=approved_by)  # fmt: skip
        mailer.send(connection.accountId, [address], email.subject, email.body)
        metrics.add_metric(name="ApprovalLinksSent", unit="Count", value=1)
    logger.info("approval links written", extra={
        "connection_id": connection.connectionId, "sent": len(issued), "kept": len(kept), "round": round_,
    })  # fmt: skip
    return now


def first_links(
    connections: ConnectionStore,
    mailer: Mailer,
    connection: Connection,
    secrets: ConnectionSecrets,
    approver: Approver,
    *,
    verify_base_url: str,
    task_token: str,
) -> str:
    """The workflow's first wait: every approver of the account's policy (as registered now) gets
    a link; the policy becomes the request's (round 1)."""
    policy = approver.policy()
    return _write_links(
        connections, mailer, connection, secrets, _Send(policy.deciders(escalated=False)), actor="system",
        verify_base_url=verify_base_url, policy=policy, new_round=True, task_token=task_token,
        drop_others=True,
    )  # fmt: skip


def send_round(
    connections: ConnectionStore,
    mailer: Mailer,
    connection: Connection,
    secrets: ConnectionSecrets,
    timer: Timer,
    *,
    task_token: str,
    fallback: Approver | None = None,
) -> str:
    """A timer of the workflow fired and it waits anew (with ``task_token``): with ``timer.remind``
    every approver who has not approved gets a reminder (a new link; the old one dies), with
    ``timer.escalate`` the policy's ``escalateTo`` get links and count as approvers from now on;
    every other live link lives on with the new task token. ``fallback``: the registry's policy,
    for a request stored before requests kept theirs."""
    policy = secrets.policy or (fallback.policy() if fallback else None)
    if policy is None:
        raise ApproverNotRegistered(f"no approver is registered for account {connection.accountId}")
    escalating = timer.escalate and not secrets.escalated and bool(policy.escalateTo)
    escalated = secrets.escalated or escalating
    done = decided_addresses(connection)
    undecided = [address for address in policy.deciders(escalated) if _key(address) not in done]
    extra: list[AuditEvent] = []
    if escalating:
        extra.append(connection_event(
            connection, EventType.ESCALATED, "system",
            f"no quorum {policy.escalateAfterSeconds} s after the request: escalated to "
            + ", ".join(policy.escalateTo),
        ))  # fmt: skip
    if timer.remind:
        had_link = {_key(address) for address in secrets.links}
        reminded = [address for address in undecided if _key(address) in had_link]
        new = [address for address in undecided if _key(address) not in had_link]
        send = _Send(
            [*reminded, *new], EventType.REMINDED,
            "reminder with a new link emailed to {address}; the previous link no longer works",
            note="Reminder: this request still waits for your decision. This link replaces the one sent "
            "before, which no longer works.",
        )  # fmt: skip
        if new and not reminded:
            send = _Send(new)
    elif escalating:
        send = _Send([address for address in policy.escalateTo if _key(address) not in done],
                     note="This request was escalated to you: it did not reach its quorum in time. You "
                     "count as one of its approvers.")  # fmt: skip
    else:
        send = _Send([])
    return _write_links(
        connections, mailer, connection, secrets, send, actor="system",
        verify_base_url=secrets.verify_base_url or "", policy=policy, task_token=task_token,
        escalated=True if escalating else None, extra_events=extra,
    )  # fmt: skip


def resend_link(
    connections: ConnectionStore,
    registry: RegistryStore,
    mailer: Mailer,
    principal: Principal,
    space_id: str,
    connection_id: str,
) -> LinkSent:
    """New links for a pending request, to every approver who has not approved yet; the old ones
    answer 410 ("replaced") from now on.

    Links are rate-limited (``domain.limits``): one resend a minute, ten links in all with the
    first.

    Raises ``ConnectionNotFound``, ``ConnectionAlreadyDecided`` (not pending, or the window has
    closed), ``DecisionNotReady`` (the workflow has not sent the first links yet),
    ``ApproverNotRegistered`` (no approver would get the links), ``TooManyLinks`` (with when to
    retry, unless all ten are used).
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
    policy = secrets.policy
    if policy is None or not secrets.links:
        # Withdrawn (no approver registered) or stored before requests kept their policy.
        approver = registry.get_approver(connection.accountId)
        if approver is None:
            raise ApproverNotRegistered(
                f"no approver is registered for account {connection.accountId}: a new link would reach nobody"
            )
        policy = approver.policy()
    done = decided_addresses(connection)
    to = [address for address in policy.deciders(secrets.escalated) if _key(address) not in done]
    sent_at = _write_links(
        connections, mailer, connection, secrets,
        _Send(to, detail="new link emailed to {address}; the previous one no longer works"),
        actor=principal.sub, verify_base_url=secrets.verify_base_url, policy=policy, limit=LinkLimit(),
    )  # fmt: skip
    return LinkSent(connectionId=connection_id, status=connection.status, sentAt=sent_at,
                    expiresAt=connection.expiresAt)  # fmt: skip


# ---- how it ended ---------------------------------------------------------------------------------

_ENDED = {
    ConnectionStatus.VERIFIED: "was approved and is now verified",
    ConnectionStatus.APPROVED: "was approved",
    ConnectionStatus.REJECTED: "was rejected",
    ConnectionStatus.EXPIRED: "expired: nobody decided it before the approval window closed",
    ConnectionStatus.CANCELLED: "was cancelled by the requester",
    ConnectionStatus.FAILED: "failed",
}


def outcome_email(connection: Connection) -> ApprovalEmail:
    """The email to every approver who got a link: how the request ended, and who decided it."""
    approvals = [
        f"  {a.approver} ({a.decisionMethod.replace('_', ' ').lower()}, {a.at})" for a in connection.approvals
    ]
    lines = [
        f"The request to connect AWS account {connection.accountId} to space {connection.spaceId}",
        f"{_ENDED.get(connection.status, 'ended')} ({connection.status}, {connection.updatedAt}).",
        "",
        f"  Connection:    {connection.connectionId}",
    ]
    if connection.decidedBy:
        lines.append(f"  Decided by:    {connection.decidedBy}")
    if approvals:
        lines += ["", "Approved by:", *approvals]
    if connection.reason:
        lines += [
            "",
            "Reason (quoted as recorded: it may be what a person wrote):",
            *quoted(connection.reason),
        ]
    lines += [
        "",
        "Display name (the requester's text, quoted):",
        *quoted(connection.displayName),
        "",
        "Your link for this request no longer works: there is nothing left to decide.",
    ]
    subject = (
        f"AWS account {connection.accountId}: the request to connect it to space {connection.spaceId} "
        f"{connection.status.lower()}"
    )
    return ApprovalEmail(subject=subject[:99], body="\n".join(lines))


def tell_outcome(mailer: Mailer, connection: Connection, secrets: ConnectionSecrets) -> int:
    """Email every approver who got a link how ``connection`` ended (one message, each address's
    copy through its own subscription); returns how many were told. Raises ``DependencyUnavailable``."""
    recipients = list(dict.fromkeys(address for address in secrets.notified if address))
    if not recipients:
        return 0
    email = outcome_email(connection)
    mailer.send(connection.accountId, recipients, email.subject, email.body)
    return len(recipients)


# ---- the registry changed: the account's pending requests get new links, or lose theirs ------------

RENEWED = (
    "the account's approval policy changed: new link emailed to {address}; the previous ones no longer work"
)
# How many fresh reads a change of links makes when the request moved meanwhile (each after a
# short random pause, ``logic.backoff``).
ATTEMPTS = 5


def _live_links(
    connections: ConnectionStore, account_id: str
) -> Iterator[tuple[Connection, ConnectionSecrets]]:
    """The account's pending requests whose workflow waits, each read afresh.

    A request whose workflow has not stored its task token yet has no link to retire and is left
    alone: its notify step reads the registry when it runs, so its first links go to the policy
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


def _again(connections: ConnectionStore, connection_id: str) -> tuple[Connection, ConnectionSecrets] | None:
    """The request read afresh, if it still waits for decisions."""
    try:
        connection, secrets = connections.read(connection_id)
    except ConnectionNotFound:
        return None
    return (connection, secrets) if connection.status == ConnectionStatus.PENDING_APPROVAL else None


def _each_waiting(
    connections: ConnectionStore,
    account_id: str,
    write: Callable[[Connection, ConnectionSecrets], bool],
    *,
    what: str,
    actor: str,
) -> int:
    """``write`` each of the account's requests waiting for decisions, from a fresh read; again,
    after a pause (``backoff.pause``), from a fresh read when the request moved meanwhile (at most
    ``ATTEMPTS`` times); a request decided or cancelled meanwhile is left as it is. ``write``
    answers whether it wrote. Returns how many were written."""
    written = 0
    for connection, secrets in _live_links(connections, account_id):
        for lost in range(1, ATTEMPTS + 1):
            try:
                written += write(connection, secrets)
            except ConnectionAlreadyDecided:
                backoff.pause(lost)
                again = _again(connections, connection.connectionId)
                if again is None:
                    break
                connection, secrets = again
                continue
            break
    logger.info("links changed by the registry", extra={
        "account_id": account_id, "change": what, "requests": written, "operator": actor,
    })  # fmt: skip
    return written


def renew_links(
    connections: ConnectionStore, mailer: Mailer, account_id: str, approver: Approver, *, actor: str
) -> int:
    """A new policy for the account: each of its pending requests starts a new round under it
    (approvals recorded before no longer count; the history keeps them), every live link dies and
    every approver of the new policy (with its escalation's, if the request escalated) gets a new
    one. Recorded as by ``actor``. A request decided or cancelled meanwhile is left as it is."""
    policy = approver.policy()

    def renew(connection: Connection, secrets: ConnectionSecrets) -> bool:
        assert secrets.verify_base_url is not None  # _live_links
        _write_links(
            connections, mailer, connection, secrets,
            _Send(policy.deciders(secrets.escalated), detail=RENEWED,
                  note="The account's approval policy changed: this link replaces any sent before."),
            actor=actor, verify_base_url=secrets.verify_base_url, policy=policy, new_round=True,
            drop_others=True,
        )  # fmt: skip
        return True

    return _each_waiting(connections, account_id, renew, what="renewed", actor=actor)


# The connection token's copies once no policy is registered: any principal of the account may prove.
_NO_APPROVERS: dict[str, Any] = {"approverEmails": None, "approverPrincipals": None}


def withdraw_links(connections: ConnectionStore, account_id: str, *, actor: str) -> int:
    """No policy for the account any more: every live link of its pending requests is withdrawn
    with no successor (``REVOKED``); each request waits for the next registration, which sends
    new links, or expires. Recorded as by ``actor``."""

    def withdraw(connection: Connection, secrets: ConnectionSecrets) -> bool:
        live = _live(connection, secrets)
        if not live:
            return False
        detail = "links withdrawn: no approver is registered for the account"
        held = (secrets.connection_token_hash, _NO_APPROVERS) if secrets.connection_token_hash else None
        connections.replace_links(connection, LinkChange(
            at=isoformat(utcnow()), issue=[], links={}, notified=list(secrets.notified),
            events=[connection_event(connection, EventType.LINK_REVOKED, actor, detail)],
            retire=list(live.values()), retire_as=TokenState.REVOKED, connection_token=held,
        ), revision=secrets.revision)  # fmt: skip
        return True

    return _each_waiting(connections, account_id, withdraw, what="withdrawn", actor=actor)
