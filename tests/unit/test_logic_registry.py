"""Operators' use cases over the fakes: spaces, members, administrators and their subscriptions;
and the space roles the requesters' routes check."""

from __future__ import annotations

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.access import Principal
from account_connections.domain.audit import EventType
from account_connections.domain.errors import ApproverNotFound, MemberNotFound, NotAuthorized, SpaceNotFound
from account_connections.domain.registry import (
    PutApproverRequest,
    PutMemberRequest,
    PutSpaceRequest,
    SpaceRole,
)
from account_connections.logic.access import require_space_role
from account_connections.logic.registry import (
    delete_approver,
    delete_member,
    list_approvers,
    put_approver,
    put_member,
    put_space,
)
from tests.builders import ACCOUNT, ADMIN_EMAIL, SPACE, UNREGISTERED_ACCOUNT
from tests.fakes import FakeSubscriptions, InMemoryRegistry
from tests.unit.world import OSCAR, World

SECOND = "555566667777"


def _put(
    registry: InMemoryRegistry, subscriptions: FakeSubscriptions, account: str, email: str
) -> str | None:
    return put_approver(
        registry, subscriptions, OSCAR, account, PutApproverRequest(email=email)
    ).subscriptionArn


# ---- spaces and members ------------------------------------------------------------------------


def test_a_space_is_created_then_renamed_each_change_recorded() -> None:
    registry = InMemoryRegistry()
    put_space(registry, OSCAR, "team", PutSpaceRequest(name="Team"))
    renamed = put_space(registry, OSCAR, "team", PutSpaceRequest(name="Team two"))
    assert registry.get_space("team") == renamed and renamed.updatedBy == "oscar"
    assert [(e.type, e.spaceId, e.detail) for e in registry.events] == [
        (EventType.SPACE_CHANGED, "team", "named Team"), (EventType.SPACE_CHANGED, "team", "named Team two"),
    ]  # fmt: skip


def test_members_are_added_changed_and_removed(world: World) -> None:
    put_member(world.registry, OSCAR, SPACE, "dave", PutMemberRequest(role=SpaceRole.POWER_USER))
    assert world.registry.get_member_role(SPACE, "dave") == SpaceRole.POWER_USER
    put_member(world.registry, OSCAR, SPACE, "dave", PutMemberRequest(role=SpaceRole.LIMITED_ACCESS))
    assert world.registry.get_member_role(SPACE, "dave") == SpaceRole.LIMITED_ACCESS
    delete_member(world.registry, OSCAR, SPACE, "dave")
    assert world.registry.get_member_role(SPACE, "dave") is None
    assert [e.detail for e in world.registry.events] == [
        "dave is POWER_USER",
        "dave is LIMITED_ACCESS",
        "dave removed",
    ]


def test_no_member_of_a_space_that_does_not_exist(world: World) -> None:
    with pytest.raises(SpaceNotFound) as refused:
        put_member(world.registry, OSCAR, "nowhere", "dave", PutMemberRequest(role=SpaceRole.POWER_USER))
    assert status_of(refused.value) == 404
    with pytest.raises(SpaceNotFound):
        delete_member(world.registry, OSCAR, "nowhere", "dave")
    assert world.registry.events == []


def test_removing_someone_who_is_not_a_member_is_not_found(world: World) -> None:
    with pytest.raises(MemberNotFound) as refused:
        delete_member(world.registry, OSCAR, SPACE, "dave")
    assert status_of(refused.value) == 404 and world.registry.events == []


@pytest.mark.parametrize(("user", "mutate", "allowed"), [
    ("alice", True, True), ("bob", True, True), ("carol", False, True), ("carol", True, False),
    ("dave", False, False), ("oscar", False, False),
])  # fmt: skip
def test_space_roles_decide_who_reads_and_who_changes(
    world: World, user: str, mutate: bool, allowed: bool
) -> None:
    principal = OSCAR if user == "oscar" else Principal(sub=user, groups=frozenset())
    if allowed:
        assert require_space_role(world.registry, principal, SPACE, mutate=mutate) in SpaceRole
    else:
        with pytest.raises(NotAuthorized):
            require_space_role(world.registry, principal, SPACE, mutate=mutate)


# ---- administrators and their subscriptions ----------------------------------------------------


def test_a_new_administrator_is_subscribed_to_their_accounts_messages_only() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    assert arn is not None and subscriptions.of(ADMIN_EMAIL) == {arn: [ACCOUNT]}
    approver = registry.get_approver(ACCOUNT)
    assert approver is not None and (approver.email, approver.subscriptionArn) == (ADMIN_EMAIL, arn)
    assert [(e.type, e.accountId, e.detail) for e in registry.events] == [
        (EventType.APPROVER_CHANGED, ACCOUNT, f"administrator {ADMIN_EMAIL}"),
    ]


def test_registering_the_same_address_again_keeps_its_subscription() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    assert _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL) == arn
    assert subscriptions.of(ADMIN_EMAIL) == {arn: [ACCOUNT]} and len(subscriptions.subscriptions) == 1


def test_an_address_serving_two_accounts_has_one_subscription_for_both() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    assert _put(registry, subscriptions, SECOND, ADMIN_EMAIL) == arn
    assert subscriptions.of(ADMIN_EMAIL) == {arn: sorted([ACCOUNT, SECOND])}


def test_a_replaced_address_stops_receiving_the_account_and_keeps_its_others() -> None:
    # Given admin@ serves two accounts
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    _put(registry, subscriptions, SECOND, ADMIN_EMAIL)
    # When the first account gets another administrator
    new_arn = _put(registry, subscriptions, ACCOUNT, "new@example.com")
    # Then admin@ is narrowed to the second account, and new@ gets the first
    assert subscriptions.of(ADMIN_EMAIL) == {arn: [SECOND]}
    assert new_arn is not None and subscriptions.of("new@example.com") == {new_arn: [ACCOUNT]}
    # And when the second account is given to new@ as well, admin@'s subscription goes
    assert _put(registry, subscriptions, SECOND, "new@example.com") == new_arn
    assert subscriptions.of(ADMIN_EMAIL) == {}
    assert subscriptions.of("new@example.com") == {new_arn: sorted([ACCOUNT, SECOND])}


def test_an_arn_sns_withholds_is_asked_for_again_next_time() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    subscriptions.withhold_arn = True
    assert _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL) is None
    subscriptions.withhold_arn = False
    assert _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL) is not None


def test_an_unregistered_administrator_stops_receiving_the_accounts_messages() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    _put(registry, subscriptions, SECOND, ADMIN_EMAIL)
    delete_approver(registry, subscriptions, OSCAR, SECOND)
    assert registry.get_approver(SECOND) is None and subscriptions.of(ADMIN_EMAIL) == {arn: [ACCOUNT]}
    delete_approver(registry, subscriptions, OSCAR, ACCOUNT)
    assert subscriptions.subscriptions == {}
    assert registry.events[-1].type == EventType.APPROVER_REMOVED
    assert registry.events[-1].detail == f"administrator {ADMIN_EMAIL} removed"


def test_unregistering_nobody_is_not_found(world: World) -> None:
    with pytest.raises(ApproverNotFound) as refused:
        delete_approver(world.registry, world.subscriptions, OSCAR, UNREGISTERED_ACCOUNT)
    assert status_of(refused.value) == 404


def test_administrators_are_listed_by_account_page_by_page() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    for account in (SECOND, ACCOUNT, UNREGISTERED_ACCOUNT):
        _put(registry, subscriptions, account, f"{account}@example.com")
    first = list_approvers(registry, 2, None)
    assert [a.accountId for a in first.items] == [ACCOUNT, UNREGISTERED_ACCOUNT] and first.nextToken
    rest = list_approvers(registry, 2, first.nextToken)
    assert [a.accountId for a in rest.items] == [SECOND] and rest.nextToken is None
