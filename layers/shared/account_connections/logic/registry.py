"""Operators' use cases: spaces, their members, and the registry of account administrators.

Every change is stored with its audit event in one transaction (a registry event: it names the
space or the account, no connection).
"""

from __future__ import annotations

from account_connections.domain.access import Principal
from account_connections.domain.audit import AuditEvent, EventType, registry_event
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.errors import ApproverNotFound, MemberNotFound, SpaceNotFound
from account_connections.domain.registry import (
    Approver,
    ApproverPage,
    Member,
    PutApproverRequest,
    PutMemberRequest,
    PutSpaceRequest,
    Space,
)
from account_connections.observability import logger, metrics
from account_connections.ports import RegistryStore, Subscriptions


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


def put_approver(
    registry: RegistryStore,
    subscriptions: Subscriptions,
    principal: Principal,
    account_id: str,
    request: PutApproverRequest,
) -> Approver:
    """Register the account's administrator: an email subscription to the approval topic that
    receives only the messages of the accounts this address administers. A new address replaces
    the old one, which stops receiving the account's links before the new one is subscribed."""
    current = registry.get_approver(account_id)
    if current is not None and current.email == request.email and current.subscriptionArn:
        subscription_arn: str | None = current.subscriptionArn
    else:
        if current is not None:
            _release(registry, subscriptions, current)
        peers = [
            peer for peer in registry.approvers_with_email(request.email) if peer.accountId != account_id
        ]
        accounts = sorted({peer.accountId for peer in peers} | {account_id})
        subscription_arn = next((peer.subscriptionArn for peer in peers if peer.subscriptionArn), None)
        if subscription_arn is None:
            subscription_arn = subscriptions.subscribe(request.email, accounts)
        else:
            subscriptions.set_accounts(subscription_arn, accounts)
    now = isoformat(utcnow())
    approver = Approver(
        accountId=account_id,
        email=request.email,
        subscriptionArn=subscription_arn,
        updatedAt=now,
        updatedBy=principal.sub,
    )
    detail = f"administrator {request.email}"
    event = _event(principal, EventType.APPROVER_CHANGED, now, detail, account_id=account_id)
    registry.put_approver(approver, event)
    metrics.add_metric(name="ApproversRegistered", unit="Count", value=1)
    # The address is personal data: the log names the account, not the email.
    logger.info(
        "approver registered",
        extra={"account_id": account_id, "replaced": current is not None, "operator": principal.sub},
    )
    return approver


def delete_approver(
    registry: RegistryStore, subscriptions: Subscriptions, principal: Principal, account_id: str
) -> None:
    """Unregister the account's administrator; their address stops receiving its messages.

    Raises ``ApproverNotFound``.
    """
    current = registry.get_approver(account_id)
    if current is None:
        raise ApproverNotFound(f"no administrator is registered for account {account_id}")
    _release(registry, subscriptions, current)
    detail = f"administrator {current.email} removed"
    event = _event(principal, EventType.APPROVER_REMOVED, isoformat(utcnow()), detail, account_id=account_id)
    registry.delete_approver(account_id, event)
    logger.info("approver removed", extra={"account_id": account_id, "operator": principal.sub})


def _release(registry: RegistryStore, subscriptions: Subscriptions, approver: Approver) -> None:
    """Stop ``approver``'s address receiving the account's messages: narrow its subscription to
    the other accounts it administers, or remove it when there are none."""
    others = sorted(
        peer.accountId
        for peer in registry.approvers_with_email(approver.email)
        if peer.accountId != approver.accountId
    )
    if others and approver.subscriptionArn:
        subscriptions.set_accounts(approver.subscriptionArn, others)
    elif not others:
        subscriptions.unsubscribe(approver.subscriptionArn)


def list_approvers(registry: RegistryStore, limit: int, next_token: str | None) -> ApproverPage:
    """The registered administrators by account ID, one Query on GSI4."""
    page = registry.list_approvers(limit, next_token)
    return ApproverPage(items=page.items, nextToken=page.next_token)
