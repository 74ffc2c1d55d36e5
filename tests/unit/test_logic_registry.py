"""Operators' use cases over the fakes: spaces, members, administrators and their subscriptions;
and the space roles the requesters' routes check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.access import Principal
from account_connections.domain.audit import EventType
from account_connections.domain.connection import Connection, ConnectionSecrets
from account_connections.domain.errors import (
    ApproverNotFound,
    InvalidRequest,
    MemberNotFound,
    NotAuthorized,
    RegistryConflict,
    SpaceNotFound,
    VerificationTokenGone,
)
from account_connections.domain.registry import (
    AddressSubscription,
    Approver,
    Member,
    PutApproverRequest,
    PutMemberRequest,
    PutSpaceRequest,
    Space,
    SpaceRole,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TokenState, hash_token
from account_connections.logic import backoff
from account_connections.logic import registry as registry_logic
from account_connections.logic.access import require_space_role
from account_connections.logic.approval import view_page
from account_connections.logic.registry import (
    delete_approver,
    delete_member,
    list_approvers,
    put_approver,
    put_member,
    put_space,
)
from tests.builders import ACCOUNT, ADMIN_EMAIL, OTHER_SPACE, SPACE, UNREGISTERED_ACCOUNT
from tests.fakes import FakeMailer, FakeSubscriptions, InMemoryConnections, InMemoryRegistry
from tests.unit.world import OSCAR, STAMP, World

SECOND = "555566667777"


def _put(
    registry: InMemoryRegistry, subscriptions: FakeSubscriptions, account: str, email: str
) -> str | None:
    # No pending request here: the links' renewal is tested over the world below.
    return put_approver(
        registry,
        subscriptions,
        InMemoryConnections(),
        FakeMailer(),
        OSCAR,
        account,
        PutApproverRequest(email=email),
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
        (EventType.APPROVER_CHANGED, ACCOUNT, f"policy: approvers {ADMIN_EMAIL}; quorum 1"),
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
    delete_approver(registry, subscriptions, InMemoryConnections(), OSCAR, SECOND)
    assert registry.get_approver(SECOND) is None and subscriptions.of(ADMIN_EMAIL) == {arn: [ACCOUNT]}
    delete_approver(registry, subscriptions, InMemoryConnections(), OSCAR, ACCOUNT)
    assert subscriptions.subscriptions == {}
    assert registry.events[-1].type == EventType.APPROVER_REMOVED
    assert registry.events[-1].detail == f"removed policy: approvers {ADMIN_EMAIL}; quorum 1"


def test_unregistering_nobody_is_not_found(world: World) -> None:
    with pytest.raises(ApproverNotFound) as refused:
        delete_approver(world.registry, world.subscriptions, world.connections, OSCAR, UNREGISTERED_ACCOUNT)
    assert status_of(refused.value) == 404


def test_administrators_are_listed_by_account_page_by_page() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    for account in (SECOND, ACCOUNT, UNREGISTERED_ACCOUNT):
        _put(registry, subscriptions, account, f"{account}@example.com")
    first = list_approvers(registry, 2, None)
    assert [a.accountId for a in first.items] == [ACCOUNT, UNREGISTERED_ACCOUNT] and first.nextToken
    rest = list_approvers(registry, 2, first.nextToken)
    assert [a.accountId for a in rest.items] == [SECOND] and rest.nextToken is None


# ---- approval policies: every address of every policy has its subscription ----------------------

OPS = ["ops1@example.com", "ops2@example.com"]
ESCALATION = "security@example.com"


def _policy(
    registry: InMemoryRegistry, subscriptions: FakeSubscriptions, account: str, **body: Any
) -> Approver:
    return put_approver(registry, subscriptions, InMemoryConnections(), FakeMailer(), OSCAR, account,
                        PutApproverRequest.model_validate(body))  # fmt: skip


def _served(subscriptions: FakeSubscriptions) -> dict[str, list[str]]:
    """address -> the accounts its one subscription lets through (each address has one at most)."""
    served: dict[str, list[str]] = {}
    for sub in subscriptions.subscriptions.values():
        assert sub.email not in served, f"{sub.email} has two subscriptions"
        served[sub.email] = sub.accounts
    return served


def test_every_address_of_a_policy_is_subscribed_to_the_account_and_itself() -> None:
    # Given a policy of two approvers with an escalation
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    approver = _policy(registry, subscriptions, ACCOUNT, approvers=OPS, quorum=2, remindAfterSeconds=[3600],
                       escalateAfterSeconds=86400, escalateTo=[ESCALATION])  # fmt: skip
    # Then each of its three addresses has its own subscription, letting the account's messages through
    assert _served(subscriptions) == {OPS[0]: [ACCOUNT], OPS[1]: [ACCOUNT], ESCALATION: [ACCOUNT]}
    for address in approver.addresses():
        record = registry.get_subscription(address)
        assert record is not None and record.accounts == [ACCOUNT]
        assert subscriptions.of(address) == {record.subscriptionArn: [ACCOUNT]}
    # And the registration is the whole policy, its subscriptionArn the first approver's
    stored = registry.get_approver(ACCOUNT)
    assert stored == approver and stored.policy().model_dump() == {
        "approvers": OPS, "quorum": 2, "remindAfterSeconds": [3600], "escalateAfterSeconds": 86400,
        "escalateTo": [ESCALATION], "approverPrincipals": [],
    }  # fmt: skip
    assert (stored.email, stored.subscriptionArn) == (OPS[0], next(iter(subscriptions.of(OPS[0]))))
    # And every address finds it
    for address in stored.addresses():
        assert [a.accountId for a in registry.approvers_with_email(address)] == [ACCOUNT]


def test_an_address_a_policy_drops_stops_receiving_the_account() -> None:
    # Given ops1@ and ops2@ approve ACCOUNT, and ops2@ SECOND as well
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    _policy(registry, subscriptions, ACCOUNT, approvers=OPS, escalateAfterSeconds=3600,
            escalateTo=[ESCALATION])  # fmt: skip
    _policy(registry, subscriptions, SECOND, email=OPS[1])
    # When ACCOUNT's policy drops ops2@ and the escalation
    _policy(registry, subscriptions, ACCOUNT, approvers=OPS[:1])
    # Then ops2@ keeps SECOND only, and the escalation address, serving nothing, loses its subscription
    assert _served(subscriptions) == {OPS[0]: [ACCOUNT], OPS[1]: [SECOND]}
    assert registry.get_subscription(ESCALATION) is None
    assert [a.accountId for a in registry.approvers_with_email(OPS[1])] == [SECOND]
    # And when SECOND goes too, ops2@'s subscription goes
    delete_approver(registry, subscriptions, InMemoryConnections(), OSCAR, SECOND)
    assert _served(subscriptions) == {OPS[0]: [ACCOUNT]}


def test_an_address_in_two_accounts_policies_has_one_subscription_for_both() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    _policy(registry, subscriptions, ACCOUNT, approvers=[*OPS, ADMIN_EMAIL], quorum=2)
    # As an escalation address of the other: an address is an address, whatever its part
    _policy(registry, subscriptions, SECOND, approvers=[ADMIN_EMAIL], escalateAfterSeconds=600,
            escalateTo=[OPS[1]])  # fmt: skip
    assert _served(subscriptions) == {
        OPS[0]: [ACCOUNT], OPS[1]: sorted([ACCOUNT, SECOND]), ADMIN_EMAIL: sorted([ACCOUNT, SECOND]),
    }  # fmt: skip
    assert len(subscriptions.subscriptions) == 3


def test_a_policy_removed_releases_every_address() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    _policy(registry, subscriptions, ACCOUNT, approvers=OPS, escalateAfterSeconds=600,
            escalateTo=[ESCALATION])  # fmt: skip
    _policy(registry, subscriptions, SECOND, email=ESCALATION)
    delete_approver(registry, subscriptions, InMemoryConnections(), OSCAR, ACCOUNT)
    assert _served(subscriptions) == {ESCALATION: [SECOND]}
    assert registry.get_subscription(OPS[0]) is None and registry.get_subscription(OPS[1]) is None
    event = registry.events[-1]
    assert (event.type, event.detail) == (
        EventType.APPROVER_REMOVED,
        f"removed policy: approvers {OPS[0]}, {OPS[1]}; quorum 1; escalate to {ESCALATION} after 600 s",
    )


def test_a_policy_change_is_an_event_that_describes_the_policy() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    _policy(registry, subscriptions, ACCOUNT, approvers=[*OPS, ADMIN_EMAIL], quorum=2,
            remindAfterSeconds=[3600, 7200], escalateAfterSeconds=86400, escalateTo=[ESCALATION])  # fmt: skip
    assert [(e.type, e.accountId, e.actor, e.detail) for e in registry.events] == [
        (EventType.APPROVER_CHANGED, ACCOUNT, "oscar", f"policy: approvers {ADMIN_EMAIL}; quorum 1"),
        (EventType.APPROVER_CHANGED, ACCOUNT, "oscar",
         f"policy: approvers {OPS[0]}, {OPS[1]}, {ADMIN_EMAIL}; quorum 2; reminders 3600, 7200 s; "
         f"escalate to {ESCALATION} after 86400 s"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"approvers": OPS, "quorum": 3}, "quorum"),
        ({"approvers": [OPS[0], OPS[0].upper()]}, "approvers[1]"),
        ({"approvers": OPS, "remindAfterSeconds": [7200, 3600]}, "remindAfterSeconds[1]"),
        ({"approvers": OPS, "escalateAfterSeconds": 3600}, "escalateTo"),
        ({"email": ADMIN_EMAIL, "quorum": 1}, "quorum"),
        ({"email": ADMIN_EMAIL, "approvers": OPS}, "approvers"),
    ],
)
def test_a_policy_that_breaks_a_rule_is_refused_before_anything_is_written(
    body: dict[str, Any], field: str
) -> None:
    # Given ACCOUNT administered by admin@
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    before = (registry.get_approver(ACCOUNT), dict(registry.addresses), len(registry.events))
    subscribed = dict(subscriptions.subscriptions)
    # When an operator sends a policy that breaks a rule
    with pytest.raises(InvalidRequest) as refused:
        _policy(registry, subscriptions, ACCOUNT, **body)
    # Then it is a 400 naming the field, and nothing changed: no registration, record, event or subscription
    assert status_of(refused.value) == 400
    assert field in {error["field"] for error in refused.value.errors}
    assert field in str(refused.value)
    assert (registry.get_approver(ACCOUNT), dict(registry.addresses), len(registry.events)) == before
    assert subscriptions.subscriptions == subscribed


def test_timers_must_fall_inside_the_deployments_window() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    request = PutApproverRequest(approvers=OPS, remindAfterSeconds=[3600])
    with pytest.raises(InvalidRequest) as refused:
        put_approver(registry, subscriptions, InMemoryConnections(), FakeMailer(), OSCAR, ACCOUNT, request,
                     window_seconds=3600)  # fmt: skip
    assert refused.value.errors == [
        {"field": "remindAfterSeconds[0]", "message": "must be less than the approval window (3600 s)"}
    ]
    assert registry.get_approver(ACCOUNT) is None and subscriptions.subscriptions == {}
    put_approver(registry, subscriptions, InMemoryConnections(), FakeMailer(), OSCAR, ACCOUNT, request,
                 window_seconds=3601)  # fmt: skip
    assert registry.get_approver(ACCOUNT) is not None


def test_links_are_renewed_when_any_field_of_the_policy_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The renewal itself is logic.links'; here, when the registry asks for it.
    renewed: list[Approver] = []

    def renew_links(_: object, __: object, account: str, approver: Approver, *, actor: str) -> int:
        renewed.append(approver)
        return 0

    monkeypatch.setattr(registry_logic, "renew_links", renew_links)
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    steps: list[tuple[dict[str, Any], bool]] = [
        ({"approvers": OPS}, True),  # none registered before
        ({"approvers": OPS, "quorum": 1}, False),  # the same policy (quorum 1 is the default)
        ({"approvers": OPS, "quorum": 2}, True),
        ({"approvers": OPS, "quorum": 2, "remindAfterSeconds": [3600]}, True),
        (
            {
                "approvers": OPS,
                "quorum": 2,
                "remindAfterSeconds": [3600],
                "escalateAfterSeconds": 600,
                "escalateTo": [ESCALATION],
            },
            True,
        ),  # fmt: skip
        (
            {
                "approvers": OPS[::-1],
                "quorum": 2,
                "remindAfterSeconds": [3600],
                "escalateAfterSeconds": 600,
                "escalateTo": [ESCALATION],
            },
            True,
        ),  # fmt: skip
        ({"email": OPS[1]}, True),
        ({"email": OPS[1], "approverPrincipals": ["arn:aws:iam::111122223333:role/Admin"]}, True),
        ({"approvers": [OPS[1]], "approverPrincipals": ["arn:aws:iam::111122223333:role/Admin"]}, False),
    ]
    for body, renews in steps:
        renewed.clear()
        approver = _policy(registry, subscriptions, ACCOUNT, **body)
        assert renewed == ([approver] if renews else []), body


# ---- two operators at once: the address's record guards its accounts ---------------------------


class Interleaved(InMemoryRegistry):
    """A registry that runs ``meanwhile`` (another operator's whole change) right after the first
    read of an address's approvers: the reader then acts on what it read before that change."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], object] | None = None

    def approvers_with_email(self, email: str) -> list[Approver]:
        seen = super().approvers_with_email(email)
        if self.meanwhile is not None:
            other, self.meanwhile = self.meanwhile, None
            other()
        return seen


def test_two_concurrent_registrations_of_one_address_end_with_both_accounts() -> None:
    # Given admin@ is being registered for ACCOUNT while another operator registers it for SECOND
    registry, subscriptions = Interleaved(), FakeSubscriptions()
    registry.meanwhile = lambda: _put(registry, subscriptions, SECOND, ADMIN_EMAIL)
    # When both are done
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    # Then admin@'s one subscription lets both accounts' messages through, and both are registered
    assert arn is not None and subscriptions.of(ADMIN_EMAIL) == {arn: sorted([ACCOUNT, SECOND])}
    assert {a.accountId for a in registry.approvers_with_email(ADMIN_EMAIL)} == {ACCOUNT, SECOND}
    record = registry.get_subscription(ADMIN_EMAIL)
    assert record is not None and (record.subscriptionArn, record.accounts) == (
        arn,
        sorted([ACCOUNT, SECOND]),
    )
    assert [e.accountId for e in registry.events] == [SECOND, ACCOUNT]  # one event each


def test_moving_an_account_while_its_old_address_gains_another_keeps_both() -> None:
    # Given admin@ serves ACCOUNT
    registry, subscriptions = Interleaved(), FakeSubscriptions()
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    registry.addresses.clear()  # as registered before the address records existed
    # When ACCOUNT moves to new@ while another operator gives SECOND to admin@
    registry.meanwhile = lambda: _put(registry, subscriptions, SECOND, ADMIN_EMAIL)
    new_arn = _put(registry, subscriptions, ACCOUNT, "new@example.com")
    # Then admin@ keeps SECOND only and new@ has ACCOUNT
    assert subscriptions.of(ADMIN_EMAIL) == {arn: [SECOND]}
    assert new_arn is not None and subscriptions.of("new@example.com") == {new_arn: [ACCOUNT]}


def test_an_address_removed_while_it_is_registered_again_keeps_a_subscription() -> None:
    # Given admin@ serves ACCOUNT only
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    first = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    unsubscribe = subscriptions.unsubscribe

    def unsubscribe_after_a_registration(subscription_arn: str | None) -> bool:
        # Another operator registers admin@ for SECOND just before the removal reaches SNS
        subscriptions.unsubscribe = unsubscribe  # type: ignore[method-assign]
        _put(registry, subscriptions, SECOND, ADMIN_EMAIL)
        return unsubscribe(subscription_arn)

    subscriptions.unsubscribe = unsubscribe_after_a_registration  # type: ignore[method-assign]
    # When ACCOUNT is unregistered
    delete_approver(registry, subscriptions, InMemoryConnections(), OSCAR, ACCOUNT)
    # Then admin@ still receives SECOND's messages, through a subscription made anew
    [(arn, accounts)] = subscriptions.of(ADMIN_EMAIL).items()
    assert accounts == [SECOND] and arn != first
    record = registry.get_subscription(ADMIN_EMAIL)
    assert record is not None and (record.subscriptionArn, record.accounts) == (arn, [SECOND])


class Busy(InMemoryRegistry):
    """A registry whose first ``races`` reads of an address are each followed by another
    operator's change of it: a change made from each of those reads loses its race."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def get_subscription(self, email: str) -> AddressSubscription | None:
        seen = super().get_subscription(email)
        if self.races > 0:
            self.races -= 1
            version = (seen.version if seen else 0) + 1
            self.addresses[email] = AddressSubscription(email=email, version=version)
        return seen


def test_a_registration_that_keeps_losing_is_a_conflict_and_writes_nothing(pauses: list[float]) -> None:
    # Given every read of the address is followed by another operator's change of it
    registry, subscriptions = Busy(races=10**6), FakeSubscriptions()
    with pytest.raises(RegistryConflict) as refused:
        _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    assert status_of(refused.value) == 409
    assert registry.get_approver(ACCOUNT) is None and registry.events == []
    # And the subscription it made lets nothing through
    assert all(accounts == [] for accounts in subscriptions.of(ADMIN_EMAIL).values())
    # And it paused between its attempts (then between the passes of the subscription's sync), in
    # all far less than the API's timeout
    assert len(pauses) >= registry_logic.MAX_ATTEMPTS - 1
    assert sum(pauses) <= 2 * sum(backoff.bound(lost) for lost in range(1, registry_logic.MAX_ATTEMPTS)) < 10


def test_a_registration_that_loses_races_succeeds_after_growing_jittered_pauses(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the pause after each lost race is drawn from [0, bound] (here: half the bound)
    drawn: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        drawn.append((low, high))
        return (low + high) / 2

    monkeypatch.setattr(backoff, "jitter", jitter)
    # And other operators change admin@'s record after each of its first reads but one
    lost = registry_logic.MAX_ATTEMPTS - 1
    registry, subscriptions = Busy(races=lost), FakeSubscriptions()
    # When ACCOUNT is registered with admin@
    arn = _put(registry, subscriptions, ACCOUNT, ADMIN_EMAIL)
    # Then it succeeds at its last attempt: admin@ receives ACCOUNT's messages, one event
    assert arn is not None and subscriptions.of(ADMIN_EMAIL) == {arn: [ACCOUNT]}
    assert [event.accountId for event in registry.events] == [ACCOUNT]
    # And it paused once after each lost race, on a bound that doubles up to the cap
    bounds = [high for _, high in drawn]
    assert len(pauses) == lost and pauses == [high / 2 for high in bounds]
    assert all(low == 0 for low, _ in drawn)
    assert bounds[0] == backoff.BASE_SECONDS and max(bounds) == backoff.CAP_SECONDS
    assert bounds == [min(backoff.BASE_SECONDS * 2**n, backoff.CAP_SECONDS) for n in range(lost)]


def test_the_pause_after_a_lost_race_is_random_within_its_bound() -> None:
    for lost in (1, 3, 20):
        drawn = {backoff.jitter(0, backoff.bound(lost)) for _ in range(50)}
        assert len(drawn) > 1 and all(0 <= pause <= backoff.bound(lost) for pause in drawn)
    assert backoff.bound(20) == backoff.CAP_SECONDS


def test_a_registration_stores_the_principals_it_names() -> None:
    registry, subscriptions = InMemoryRegistry(), FakeSubscriptions()
    only = ["arn:aws:iam::111122223333:role/Admin"]
    request = PutApproverRequest(email=ADMIN_EMAIL, approverPrincipals=only)
    put_approver(registry, subscriptions, InMemoryConnections(), FakeMailer(), OSCAR, ACCOUNT, request)
    approver = registry.get_approver(ACCOUNT)
    assert approver is not None and approver.approverPrincipals == only


# ---- a changed or removed administrator: the live links die, new ones go out --------------------


def _register(world: World, email: str, **policy: Any) -> None:
    request = PutApproverRequest(email=email, **policy)
    put_approver(
        world.registry, world.subscriptions, world.connections, world.mailer, OSCAR, ACCOUNT, request
    )


def test_a_new_administrator_replaces_every_live_link_of_the_accounts_pending_requests(world: World) -> None:
    # Given two requests of the account waiting with links emailed to admin@, one of another
    # account, one not waiting yet and one decided
    first, first_email = world.waiting()
    second, second_email = world.waiting(space_id=OTHER_SPACE)
    world.registry.put_approver(Approver(accountId=SECOND, email="b@example.com", **STAMP))
    _, elsewhere_email = world.waiting(account_id=SECOND)
    world.registry.put_space(Space(spaceId="third", name="Third space", **STAMP))
    world.registry.put_member(Member(spaceId="third", userId="alice", role=SpaceRole.SPACE_ADMIN, **STAMP))
    starting = world.request(display_name="Starting", space_id="third")
    world.mailer.emails.clear()
    # When an operator gives the account to new@
    _register(world, "new@example.com")
    # Then each waiting request got a new link, to new@, recorded as oscar's; the old links are replaced
    assert sorted(e.account_id for e in world.mailer.emails) == [ACCOUNT, ACCOUNT]
    for created, old in ((first, first_email), (second, second_email)):
        with pytest.raises(VerificationTokenGone) as gone:
            view_page(world.connections, world.tokens, old.token)
        assert gone.value.reason == "replaced"
        link = world.connections.secrets(created.connectionId).links.get("new@example.com")
        stored = world.tokens.get(link or "")
        assert stored is not None and stored.approverEmail == "new@example.com"
        assert stored.taskToken == "task-1" and stored.state == TokenState.ACTIVE
    new_tokens = {e.token for e in world.mailer.emails}
    assert all(view_page(world.connections, world.tokens, token).csrf for token in new_tokens)
    renewals = [e for e in world.connections.events if e.actor == "oscar"]
    assert sorted((e.type, e.connectionId or "") for e in renewals) == sorted(
        (EventType.LINK_SENT, c.connectionId) for c in (first, second)
    )
    assert all("policy changed" in (e.detail or "") for e in renewals)
    # And the connection tokens now name the new address
    for created in (first, second):
        held = world.tokens.get(world.connections.secrets(created.connectionId).connection_token_hash or "")
        assert held is not None and held.approverEmails == ["new@example.com"]
    # The other account's link and the request not waiting yet are untouched
    assert view_page(world.connections, world.tokens, elsewhere_email.token).csrf
    assert world.connections.secrets(starting.connectionId).links == {}


def test_the_same_policy_again_sends_nothing(world: World) -> None:
    _, email = world.waiting()
    world.mailer.emails.clear()
    _register(world, ADMIN_EMAIL)
    assert world.mailer.emails == []
    assert view_page(world.connections, world.tokens, email.token).csrf
    # Other principals are another policy: the links follow it
    _register(world, ADMIN_EMAIL, approverPrincipals=["arn:aws:iam::111122223333:role/Admin"])
    [renewed] = world.mailer.emails
    token = world.tokens.get(hash_token(renewed.token))
    assert token is not None and token.approverPrincipals == ["arn:aws:iam::111122223333:role/Admin"]


def test_an_unregistered_administrators_links_are_withdrawn_until_the_next_one(world: World) -> None:
    # Given a request waiting with a link emailed to admin@
    created, email = world.waiting()
    world.mailer.emails.clear()
    # When the account's administrator is unregistered
    delete_approver(world.registry, world.subscriptions, world.connections, OSCAR, ACCOUNT)
    # Then the link answers 410 (revoked), no email goes out, and it is recorded as oscar's
    with pytest.raises(VerificationTokenGone) as gone:
        view_page(world.connections, world.tokens, email.token)
    assert (gone.value.reason, status_of(gone.value)) == ("revoked", 410)
    assert world.mailer.emails == []
    event = world.connections.events[-1]
    assert (event.type, event.actor, event.connectionId) == (
        EventType.LINK_REVOKED,
        "oscar",
        created.connectionId,
    )
    # And the connection token no longer names the removed address (it still opens the page)
    secrets = world.connections.secrets(created.connectionId)
    held = world.tokens.get(secrets.connection_token_hash or "")
    assert held is not None and held.approverEmails is None and held.taskToken == "task-1"
    assert secrets.links == {}
    # When a new administrator is registered, the request gets a link to them, which works
    _register(world, "next@example.com")
    [sent] = world.mailer.emails
    assert view_page(world.connections, world.tokens, sent.token).csrf
    token = world.tokens.get(hash_token(sent.token))
    assert token is not None and token.approverEmail == "next@example.com"


def test_a_request_decided_meanwhile_keeps_its_state(world: World, pauses: list[float]) -> None:
    # Given each request is cancelled right after it is read for the renewal
    created, email = world.waiting()

    class Racing(InMemoryConnections):
        def read(self, connection_id: str) -> tuple[Connection, ConnectionSecrets]:
            seen = super().read(connection_id)
            record = self.records[connection_id]
            record.connection = record.connection.model_copy(update={"status": ConnectionStatus.CANCELLED})
            return seen

    racing = Racing(tokens=world.tokens)
    racing.records, racing.live, racing.events = world.connections.records, world.connections.live, []
    world.connections = racing
    world.mailer.emails.clear()
    # When the administrator changes, then is removed
    _register(world, "new@example.com")
    delete_approver(world.registry, world.subscriptions, racing, OSCAR, ACCOUNT)
    # Then the guarded writes lost: no link sent or withdrawn, the old one still in its state
    assert world.mailer.emails == [] and racing.events == []
    token = world.tokens.get(hash_token(email.token))
    assert token is not None and token.state == TokenState.ACTIVE
    assert racing.secrets(created.connectionId).links == {ADMIN_EMAIL: token.tokenHash}
    # And the renewal that lost paused before it read the request again (and found it cancelled)
    assert len(pauses) == 1 and all(0 <= pause <= backoff.bound(1) for pause in pauses)
