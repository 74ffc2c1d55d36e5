"""Operators' use cases: spaces, their members, and the registry of each account's approval policy.

Every change is stored with its audit event in one transaction (a registry event: it names the
space or the account, no connection).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from account_connections.domain.access import Principal
from account_connections.domain.audit import AuditEvent, EventType, registry_event
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.errors import (
    ApproverNotFound,
    InvalidRequest,
    MemberNotFound,
    RegistryConflict,
    SpaceNotFound,
)
from account_connections.domain.registry import (
    AddressSubscription,
    Approver,
    ApproverPage,
    Member,
    PutApproverRequest,
    PutMemberRequest,
    PutSpaceRequest,
    Space,
)
from account_connections.logic import backoff
from account_connections.logic.links import renew_links, withdraw_links
from account_connections.observability import logger, metrics
from account_connections.ports import ConnectionStore, Mailer, RegistryStore, Subscriptions

T = TypeVar("T")


def _event(principal: Principal, event_type: EventType, at: str, detail: str, *, space_id: str | None = None,
           account_id: str | None = None) -> AuditEvent:  # fmt: skip
    return registry_event(event_type, principal.sub, at, detail, space_id=space_id, account_id=account_id)


def put_space(
    registry: RegistryStore, principal: Principal, space_id: str, request: PutSpaceRequest
) -> Space:
    """Create the space or rename it."""
    now = isoformat(utcnow())
    space = Space(spaceId=space_id, name=request.name, updatedAt=now, updatedBy=principal.sub)
    event = _event(principal, EventType.SPACE_CHANGED, now, f"named {request.name}", space_id=space_id)
    registry.put_space(space, event)
    logger.info("space stored", extra={"space_id": space_id, "operator": principal.sub})
    return space


def put_member(
    registry: RegistryStore, principal: Principal, space_id: str, user_id: str, request: PutMemberRequest
) -> Member:
    """Add the user to the space or change their role. Raises ``SpaceNotFound``."""
    now = isoformat(utcnow())
    member = Member(spaceId=space_id, userId=user_id, role=request.role, updatedAt=now,
                    updatedBy=principal.sub)  # fmt: skip
    detail = f"{user_id} is {request.role}"
    event = _event(principal, EventType.MEMBER_CHANGED, now, detail, space_id=space_id)
    registry.put_member(member, event)
    logger.info("member stored", extra={"space_id": space_id, "user_id": user_id, "role": str(request.role),
                                        "operator": principal.sub})  # fmt: skip
    return member


def delete_member(registry: RegistryStore, principal: Principal, space_id: str, user_id: str) -> None:
    """Remove the user from the space. Raises ``SpaceNotFound``, ``MemberNotFound``."""
    if registry.get_space(space_id) is None:
        raise SpaceNotFound(f"space {space_id} does not exist")
    now = isoformat(utcnow())
    event = _event(principal, EventType.MEMBER_REMOVED, now, f"{user_id} removed", space_id=space_id)
    if not registry.delete_member(space_id, user_id, event):
        raise MemberNotFound(f"user {user_id} is not a member of space {space_id}")
    logger.info("member removed", extra={"space_id": space_id, "user_id": user_id, "operator": principal.sub})


# The template's ApprovalTimeoutSeconds by default: the approval window a policy's timers fit in.
DEFAULT_WINDOW_SECONDS = 604800

# How many fresh reads a registry change makes before it answers 409: each lost race means another
# operator's change of the same account or address was written meanwhile. Enough, with the pauses
# between them (``logic.backoff``), for dozens of registrations of one address at once to settle.
MAX_ATTEMPTS = 20


def _address(registry: RegistryStore, email: str) -> AddressSubscription:
    """The address's record; for an address registered before these records existed, what its
    approver items say (stored with the first change, on condition that none was meanwhile)."""
    stored = registry.get_subscription(email)
    if stored is not None:
        return stored
    peers = registry.approvers_with_email(email)
    return AddressSubscription(
        email=email,
        # An approver's subscriptionArn is its first approver's: only those name this address's.
        subscriptionArn=next(
            (peer.subscriptionArn for peer in peers if peer.email == email and peer.subscriptionArn), None
        ),
        accounts=sorted({peer.accountId for peer in peers}),
    )


def _retrying(write: Callable[[], T]) -> T:
    """``write()`` (fresh reads, then a guarded write), again after each lost race and a pause
    (``backoff.pause``); the last ``RegistryConflict`` propagates."""
    for attempt in backoff.attempts(MAX_ATTEMPTS):
        try:
            return write()
        except RegistryConflict:
            if attempt == MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _after(previous: Approver | None) -> str:
    """Now, and later than ``previous`` was stored: the registration's guard is its address and
    time (``updatedAt``), so two registrations written one after the other never share both,
    even within one millisecond or with a clock behind the last writer's."""
    now = utcnow()
    if previous is not None:
        stored = datetime.fromisoformat(previous.updatedAt.replace("Z", "+00:00"))
        now = max(now, stored + timedelta(milliseconds=1))
    return isoformat(now)


def put_approver(
    registry: RegistryStore,
    subscriptions: Subscriptions,
    connections: ConnectionStore,
    mailer: Mailer,
    principal: Principal,
    account_id: str,
    request: PutApproverRequest,
    *,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> Approver:
    """Register the account's approval policy (``{email}``: one administrator). Every address it
    names, approvers and escalation alike, has one email subscription to the approval topic, whose
    filter lets through only the messages of the accounts that address serves and that name it a
    recipient. An address the previous policy named and this one does not stops receiving the
    account's messages before the new ones receive them.

    The registration and the records of every address it changes (the accounts each serves) are
    one transaction on condition that none changed since read; a lost race is tried again from
    fresh reads, and the filter policies are then set from the records (``_sync``).

    When the account's policy changed (an address, the quorum, a timer, the principals, or none
    registered before), every live link of its pending requests is replaced by new ones under the
    policy registered now (``logic.links.renew_links``).

    Raises ``InvalidRequest`` (with each field's problem; nothing is written, no address is
    subscribed) when the policy breaks a rule across its fields or sets a timer at or past
    ``window_seconds`` (the approval window); ``RegistryConflict`` when it keeps losing; and
    ``DependencyUnavailable`` when SNS fails to send a new link (the links not yet renewed keep
    working until the requester resends them).
    """
    problems = request.problems(window_seconds)
    if problems:
        named = "; ".join(f"{problem['field']} {problem['message']}" for problem in problems)
        raise InvalidRequest(f"the approval policy is not valid: {named}", errors=problems)
    policy = request.policy()
    addresses = policy.addresses()

    def register() -> tuple[Approver, Approver | None]:
        current = registry.get_approver(account_id)
        serving = [_address(registry, address).serving(account_id) for address in addresses]
        previous = current.addresses() if current is not None else []
        dropped = [address for address in previous if address not in addresses]
        released = [_address(registry, address).without(account_id) for address in dropped]
        # Made before the write, so that the registration names the first; each lets nothing
        # through until _sync sets its accounts (a write that loses leaves them closed).
        serving = [
            record
            if record.subscriptionArn is not None
            else record.model_copy(update={"subscriptionArn": subscriptions.subscribe(record.email)})
            for record in serving
        ]
        now = _after(current)
        approver = Approver(
            accountId=account_id,
            **policy.model_dump(),
            subscriptionArn=serving[0].subscriptionArn,
            updatedAt=now,
            updatedBy=principal.sub,
        )
        event = _event(principal, EventType.APPROVER_CHANGED, now, policy.describe(), account_id=account_id)
        registry.register_approver(approver, event, replacing=current, serving=serving, released=released)
        return approver, current

    try:
        approver, replaced = _retrying(register)
    except RegistryConflict:
        for address in addresses:
            _sync(registry, subscriptions, address, quiet=True)  # subscriptions made meanwhile
        raise
    # The addresses dropped first: they stop receiving the account's links before the new ones do.
    for address in replaced.addresses() if replaced is not None else []:
        if address not in addresses:
            _sync(registry, subscriptions, address)
    arns = [_sync(registry, subscriptions, address) for address in addresses]
    approver.subscriptionArn = arns[0] or approver.subscriptionArn
    if replaced is None or replaced.policy() != approver.policy():
        renew_links(connections, mailer, account_id, approver, actor=principal.sub)
    metrics.add_metric(name="ApproversRegistered", unit="Count", value=1)
    # The addresses are personal data: the log names the account, not the emails.
    logger.info(
        "approver registered",
        extra={"account_id": account_id, "replaced": replaced is not None, "addresses": len(addresses),
               "operator": principal.sub},
    )  # fmt: skip
    return approver


def delete_approver(
    registry: RegistryStore,
    subscriptions: Subscriptions,
    connections: ConnectionStore,
    principal: Principal,
    account_id: str,
) -> None:
    """Unregister the account's approval policy; none of its addresses receives the account's
    messages any more (an address that serves no other account loses its subscription), and
    every live link of the account's pending requests is withdrawn (410, revoked): each request
    waits for the next registration, which sends new links, or expires.

    Guarded as ``put_approver`` is. Raises ``ApproverNotFound``, ``RegistryConflict``.
    """

    def unregister() -> Approver:
        current = registry.get_approver(account_id)
        if current is None:
            raise ApproverNotFound(f"no administrator is registered for account {account_id}")
        released = [_address(registry, address).without(account_id) for address in current.addresses()]
        detail = f"removed {current.policy().describe()}"
        at = isoformat(utcnow())
        event = _event(principal, EventType.APPROVER_REMOVED, at, detail, account_id=account_id)
        registry.unregister_approver(current, event, released=released)
        return current

    removed = _retrying(unregister)
    for address in removed.addresses():
        _sync(registry, subscriptions, address)
    withdraw_links(connections, account_id, actor=principal.sub)
    logger.info("approver removed", extra={"account_id": account_id, "operator": principal.sub})


def _sync(
    registry: RegistryStore, subscriptions: Subscriptions, email: str, *, quiet: bool = False
) -> str | None:
    """Make the address's subscription let through exactly the accounts its record lists, and
    remove it (with the record) when there are none. Returns its ARN.

    Read, apply, read again: done when the record did not change meanwhile. A change written
    after that second read is applied by whoever wrote it, since each change syncs after its
    write, so the last filter policy set is the one of the last record. The subscription is
    removed before its record is deleted, and the delete is conditional: an address registered
    again meanwhile keeps its record, and the next pass finds the subscription gone and makes it
    anew. Each pass after the first follows a pause (``backoff.pause``). Raises ``RegistryConflict``
    when it never settles (unless ``quiet``).
    """
    for _ in backoff.attempts(MAX_ATTEMPTS):
        record = registry.get_subscription(email)
        if record is None:
            return None
        try:
            if not record.accounts:
                subscriptions.unsubscribe(record.subscriptionArn)
                registry.forget_subscription(record)
                return None
            if record.subscriptionArn is None:
                made = subscriptions.subscribe(email)
                if made is None:
                    logger.warning(
                        "approver subscription has no ARN yet; it is made again on the next change"
                    )
                    return None
                record = registry.save_subscription(record.model_copy(update={"subscriptionArn": made}))
            assert record.subscriptionArn is not None
            if not subscriptions.set_accounts(record.subscriptionArn, record.email, record.accounts):
                # Removed meanwhile (see above): forget it, and make it anew on the next pass.
                registry.save_subscription(record.model_copy(update={"subscriptionArn": None}))
                continue
        except RegistryConflict:
            continue
        latest = registry.get_subscription(email)
        if latest is not None and latest.version == record.version:
            return record.subscriptionArn
    if quiet:
        return None
    raise RegistryConflict(
        "the administrator's address kept changing while its subscription was updated: send the request again"
    )


def list_approvers(registry: RegistryStore, limit: int, next_token: str | None) -> ApproverPage:
    """The registered administrators by account ID, one Query on GSI4."""
    page = registry.list_approvers(limit, next_token)
    return ApproverPage(items=page.items, nextToken=page.next_token)
