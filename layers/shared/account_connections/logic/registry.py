"""Operators' use cases: spaces, their members, and the registry of account administrators.

Every change is stored with its audit event in one transaction (a registry event: it names the
space or the account, no connection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from account_connections.domain.access import Principal
from account_connections.domain.audit import AuditEvent, EventType, registry_event
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.errors import (
    ApproverNotFound,
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


# How many fresh reads a registry change makes before it answers 409: each lost race means another
# operator's change of the same account or address was written meanwhile.
MAX_ATTEMPTS = 5


def _address(registry: RegistryStore, email: str) -> AddressSubscription:
    """The address's record; for an address registered before these records existed, what its
    approver items say (stored with the first change, on condition that none was meanwhile)."""
    stored = registry.get_subscription(email)
    if stored is not None:
        return stored
    peers = registry.approvers_with_email(email)
    return AddressSubscription(
        email=email,
        subscriptionArn=next((peer.subscriptionArn for peer in peers if peer.subscriptionArn), None),
        accounts=sorted({peer.accountId for peer in peers}),
    )


def _retrying(write: Callable[[], T]) -> T:
    """``write()`` (fresh reads, then a guarded write), again after each lost race; the last
    ``RegistryConflict`` propagates."""
    for _ in range(MAX_ATTEMPTS - 1):
        try:
            return write()
        except RegistryConflict:
            continue
    return write()


def put_approver(
    registry: RegistryStore,
    subscriptions: Subscriptions,
    connections: ConnectionStore,
    mailer: Mailer,
    principal: Principal,
    account_id: str,
    request: PutApproverRequest,
) -> Approver:
    """Register the account's administrator: an email subscription to the approval topic that
    receives only the messages of the accounts this address administers. A new address replaces
    the old one, which stops receiving the account's links before the new one receives them.

    The registration and the records of the addresses it changes (the accounts each serves) are
    one transaction on condition that none changed since read; a lost race is tried again from
    fresh reads, and the filter policies are then set from the records (``_sync``).

    When the account's policy changed (another address, other principals, or none registered
    before), every live link of its pending requests is replaced by a new one to the address
    registered now (``_renew_links``). Raises ``RegistryConflict`` when it keeps losing, and
    ``DependencyUnavailable`` when SNS fails to send a new link (the links not yet renewed keep
    working until the requester resends them).
    """

    email = request.policy().approvers[0]

    def register() -> tuple[Approver, Approver | None]:
        current = registry.get_approver(account_id)
        serving = _address(registry, email).serving(account_id)
        released = None
        if current is not None and current.email != email:
            released = _address(registry, current.email).without(account_id)
        if serving.subscriptionArn is None:
            # Made before the write, so that the registration names it; it lets nothing through
            # until _sync sets its accounts (a write that loses leaves it closed).
            serving = serving.model_copy(update={"subscriptionArn": subscriptions.subscribe(email)})
        now = isoformat(utcnow())
        approver = Approver(
            accountId=account_id,
            email=email,
            approverPrincipals=list(request.approverPrincipals),
            subscriptionArn=serving.subscriptionArn,
            updatedAt=now,
            updatedBy=principal.sub,
        )
        event = _event(principal, EventType.APPROVER_CHANGED, now, f"administrator {email}",
                       account_id=account_id)  # fmt: skip
        registry.register_approver(approver, event, replacing=current, serving=serving, released=released)
        return approver, current

    try:
        approver, replaced = _retrying(register)
    except RegistryConflict:
        _sync(registry, subscriptions, email, quiet=True)  # a subscription made meanwhile
        raise
    if replaced is not None and replaced.email != approver.email:
        _sync(registry, subscriptions, replaced.email)
    approver.subscriptionArn = _sync(registry, subscriptions, approver.email) or approver.subscriptionArn
    if replaced is None or (replaced.email, replaced.approverPrincipals) != (
        approver.email,
        approver.approverPrincipals,
    ):
        renew_links(connections, mailer, account_id, approver, actor=principal.sub)
    metrics.add_metric(name="ApproversRegistered", unit="Count", value=1)
    # The address is personal data: the log names the account, not the email.
    logger.info(
        "approver registered",
        extra={"account_id": account_id, "replaced": replaced is not None, "operator": principal.sub},
    )
    return approver


def delete_approver(
    registry: RegistryStore,
    subscriptions: Subscriptions,
    connections: ConnectionStore,
    principal: Principal,
    account_id: str,
) -> None:
    """Unregister the account's administrator; their address stops receiving its messages, and
    every live link of the account's pending requests is withdrawn (410, revoked): each request
    waits for the next registration, which sends new links, or expires.

    Guarded as ``put_approver`` is. Raises ``ApproverNotFound``, ``RegistryConflict``.
    """

    def unregister() -> Approver:
        current = registry.get_approver(account_id)
        if current is None:
            raise ApproverNotFound(f"no administrator is registered for account {account_id}")
        released = _address(registry, current.email).without(account_id)
        detail = f"administrator {current.email} removed"
        at = isoformat(utcnow())
        event = _event(principal, EventType.APPROVER_REMOVED, at, detail, account_id=account_id)
        registry.unregister_approver(current, event, released=released)
        return current

    removed = _retrying(unregister)
    _sync(registry, subscriptions, removed.email)
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
    anew. Raises ``RegistryConflict`` when it never settles (unless ``quiet``).
    """
    for _ in range(MAX_ATTEMPTS):
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
