"""Operators' routes (functions/administer_spaces) against moto: spaces, members, and the approver
registry as SNS email subscriptions filtered to each account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from account_connections.adapters.dynamodb.table import serialize
from account_connections.domain.registry import SpaceRole
from account_connections.settings import load_settings
from local.outbox import Outbox
from tests.integration.conftest import APPROVED_ACCOUNT, dump_table
from tests.support import FakeContext, Reply, http_event, invoke, load_event, load_handler, stores

FUNCTION = "administer_spaces"


def call(name: str, **overrides: Any) -> Reply:
    return invoke(FUNCTION, http_event(name, **overrides))


def subscriptions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    listed = aws["sns"].list_subscriptions_by_topic(TopicArn=aws["topic"])["Subscriptions"]
    return [
        {
            **subscription,
            **aws["sns"].get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])[
                "Attributes"
            ],
        }
        for subscription in listed
    ]


# ---- spaces ------------------------------------------------------------------------------------


def test_put_space_creates_then_renames(aws: dict[str, Any]) -> None:
    created = call("http_put_space")
    assert created.status == 200
    assert created.json["spaceId"] == "demo" and created.json["name"] == "Demo space"
    assert created.json["updatedBy"] == "oscar"
    renamed = call("http_put_space", body={"name": "Renamed"})
    assert renamed.json["name"] == "Renamed"
    assert stores(aws["table"], aws["ddb"]).registry.get_space("demo").name == "Renamed"  # type: ignore[union-attr]


# ---- members -----------------------------------------------------------------------------------


def test_put_member_needs_the_space(aws: dict[str, Any]) -> None:
    before = dump_table(aws["ddb"])
    reply = call("http_put_member")
    assert reply.status == 404
    assert reply.json["title"] == "Space not found"
    assert dump_table(aws["ddb"]) == before


def test_put_member_stores_and_changes_the_role(seeded: dict[str, Any]) -> None:
    repo = seeded["stores"].registry
    added = call("http_put_member", path={"userId": "erin"}, body={"role": "LIMITED_ACCESS"})
    assert added.status == 200
    assert added.json == {**added.json, "spaceId": "demo", "userId": "erin", "role": "LIMITED_ACCESS"}
    assert repo.get_member_role("demo", "erin") is SpaceRole.LIMITED_ACCESS
    changed = call("http_put_member", path={"userId": "erin"}, body={"role": "SPACE_ADMIN"})
    assert changed.json["role"] == "SPACE_ADMIN"
    assert repo.get_member_role("demo", "erin") is SpaceRole.SPACE_ADMIN


def test_delete_member_answers_204_and_the_member_loses_access(seeded: dict[str, Any]) -> None:
    reply = call("http_delete_member")  # bob
    assert reply.status == 204
    assert reply.text == ""
    assert seeded["stores"].registry.get_member_role("demo", "bob") is None
    listing = invoke("manage_connections", http_event("http_list_connections", sub="bob"))
    assert listing.status == 403


def test_delete_of_a_non_member_is_not_found(seeded: dict[str, Any]) -> None:
    before = dump_table(seeded["ddb"])
    assert call("http_delete_member", path={"userId": "nobody"}).status == 404
    assert call("http_delete_member", path={"spaceId": "nowhere"}).status == 404
    assert call("http_delete_member", path={"userId": "dave"}).status == 404  # a member of another space
    assert dump_table(seeded["ddb"]) == before


# ---- approvers -------------------------------------------------------------------------------


def test_the_policy_event_registers_a_quorum_with_its_timers(aws: dict[str, Any]) -> None:
    reply = call("http_put_approver_policy")
    assert reply.status == 200, reply.text
    assert (reply.json["accountId"], reply.json["quorum"], reply.json["escalateTo"]) == (
        "555566667777", 2, ["security@example.com"],
    )  # fmt: skip
    assert sorted(s["Endpoint"] for s in subscriptions(aws)) == [
        "ops1@example.com", "ops2@example.com", "security@example.com",
    ]  # fmt: skip


def test_put_approver_subscribes_the_email_filtered_to_the_account(aws: dict[str, Any]) -> None:
    reply = call("http_put_approver")
    assert reply.status == 200
    assert reply.json["accountId"] == APPROVED_ACCOUNT and reply.json["email"] == "admin@example.com"
    [subscription] = subscriptions(aws)
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == "admin@example.com"
    assert subscription["SubscriptionArn"] == reply.json["subscriptionArn"]
    assert json.loads(subscription["FilterPolicy"]) == {
        "accountId": [APPROVED_ACCOUNT], "recipients": ["admin@example.com"],
    }  # fmt: skip
    assert subscription["FilterPolicyScope"] == "MessageAttributes"


def test_a_new_email_replaces_the_old_subscription(aws: dict[str, Any]) -> None:
    old = call("http_put_approver").json["subscriptionArn"]
    reply = call("http_put_approver", body={"email": "new-admin@example.com"})
    assert reply.status == 200
    [subscription] = subscriptions(aws)
    assert subscription["Endpoint"] == "new-admin@example.com"
    assert subscription["SubscriptionArn"] != old
    approver = stores(aws["table"], aws["ddb"]).registry.get_approver(APPROVED_ACCOUNT)
    assert approver is not None and approver.email == "new-admin@example.com"


def test_the_same_email_again_keeps_its_subscription(aws: dict[str, Any]) -> None:
    first = call("http_put_approver").json
    again = call("http_put_approver").json
    assert again["subscriptionArn"] == first["subscriptionArn"]
    assert len(subscriptions(aws)) == 1


def test_one_address_for_several_accounts_has_one_subscription_filtered_to_all(aws: dict[str, Any]) -> None:
    first = call("http_put_approver").json
    second = call("http_put_approver", path={"accountId": "444455556666"}).json
    assert second["subscriptionArn"] == first["subscriptionArn"]
    [subscription] = subscriptions(aws)
    assert json.loads(subscription["FilterPolicy"]) == {
        "accountId": [APPROVED_ACCOUNT, "444455556666"], "recipients": ["admin@example.com"],
    }  # fmt: skip


def test_moving_one_account_to_a_new_address_narrows_the_old_subscription(aws: dict[str, Any]) -> None:
    call("http_put_approver")
    call("http_put_approver", path={"accountId": "444455556666"})
    call("http_put_approver", body={"email": "new-admin@example.com"})
    policies = {
        subscription["Endpoint"]: json.loads(subscription["FilterPolicy"])["accountId"]
        for subscription in subscriptions(aws)
    }
    assert policies == {"admin@example.com": ["444455556666"], "new-admin@example.com": [APPROVED_ACCOUNT]}


def test_deleting_one_of_an_addresss_accounts_keeps_the_others(aws: dict[str, Any]) -> None:
    call("http_put_approver")
    call("http_put_approver", path={"accountId": "444455556666"})
    assert call("http_delete_approver").status == 204
    [subscription] = subscriptions(aws)
    assert json.loads(subscription["FilterPolicy"]) == {
        "accountId": ["444455556666"], "recipients": ["admin@example.com"],
    }  # fmt: skip
    assert call("http_delete_approver", path={"accountId": "444455556666"}).status == 204
    assert subscriptions(aws) == []


def test_delete_approver_unsubscribes_and_answers_204(aws: dict[str, Any]) -> None:
    call("http_put_approver")
    reply = call("http_delete_approver")
    assert reply.status == 204
    assert subscriptions(aws) == []
    assert stores(aws["table"], aws["ddb"]).registry.get_approver(APPROVED_ACCOUNT) is None
    # Nobody can approve the account's requests any more.
    call("http_put_space")
    call("http_put_member", path={"userId": "alice"}, body={"role": "SPACE_ADMIN"})
    create = http_event("http_create_connection", body={"accountId": APPROVED_ACCOUNT, "displayName": "Prod"})
    assert invoke("manage_connections", create).status == 422


def test_delete_of_an_unregistered_account_is_not_found(aws: dict[str, Any]) -> None:
    reply = call("http_delete_approver")
    assert reply.status == 404
    assert reply.json["title"] == "Approver not found"


def test_list_approvers_pages_by_account_with_one_query_each(
    aws: dict[str, Any], ddb_operations: list[str]
) -> None:
    accounts = ["333333333333", "111111111111", "222222222222"]
    for account in accounts:
        assert call("http_put_approver", path={"accountId": account}).status == 200
    ddb_operations.clear()
    first = call("http_list_approvers", query={"limit": "2"})
    assert first.status == 200
    assert [item["accountId"] for item in first.json["items"]] == sorted(accounts)[:2]
    second = call("http_list_approvers", query={"limit": "2", "nextToken": first.json["nextToken"]})
    assert [item["accountId"] for item in second.json["items"]] == sorted(accounts)[2:]
    assert second.json["nextToken"] is None
    assert ddb_operations == ["Query", "Query"]


def test_a_next_token_only_serves_the_query_that_issued_it(seeded: dict[str, Any]) -> None:
    call("http_put_approver", path={"accountId": "444455556666"})
    token = call("http_list_approvers", query={"limit": "1"}).json["nextToken"]
    assert token
    foreign = invoke("manage_connections", http_event("http_list_connections", query={"nextToken": token}))
    assert foreign.status == 400
    assert foreign.json["errors"][0]["field"] == "nextToken"
    assert call("http_list_approvers", query={"nextToken": token[:-2]}).status == 400


# ---- approval policies ---------------------------------------------------------------------------

OPS = ["ops1@example.com", "ops2@example.com"]
SECURITY = "security@example.com"
POLICY = {"approvers": OPS, "quorum": 2, "remindAfterSeconds": [3600, 7200], "escalateAfterSeconds": 86400,
          "escalateTo": [SECURITY]}  # fmt: skip


def filters(aws: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """address -> its one subscription's filter policy (an address with two fails the test)."""
    found: dict[str, dict[str, list[str]]] = {}
    for subscription in subscriptions(aws):
        assert subscription["Endpoint"] not in found, f"{subscription['Endpoint']} has two subscriptions"
        assert subscription["FilterPolicyScope"] == "MessageAttributes"
        found[subscription["Endpoint"]] = json.loads(subscription["FilterPolicy"])
    return found


def test_a_policy_subscribes_each_of_its_addresses_filtered_to_the_account_and_itself(
    aws: dict[str, Any],
) -> None:
    reply = call("http_put_approver", body=POLICY)
    assert reply.status == 200, reply.text
    # The answer is the whole policy as registered
    assert reply.json == {
        **reply.json, **POLICY, "accountId": APPROVED_ACCOUNT, "email": OPS[0], "approverPrincipals": [],
        "updatedBy": "oscar",
    }  # fmt: skip
    assert filters(aws) == {
        address: {"accountId": [APPROVED_ACCOUNT], "recipients": [address]} for address in [*OPS, SECURITY]
    }
    [first] = [s for s in subscriptions(aws) if s["Endpoint"] == OPS[0]]
    assert reply.json["subscriptionArn"] == first["SubscriptionArn"]
    # And the list shows it whole
    [listed] = call("http_list_approvers").json["items"]
    assert listed == reply.json


def test_a_policy_that_drops_an_address_narrows_or_removes_its_subscription(aws: dict[str, Any]) -> None:
    # Given ops2@ approves for two accounts, security@ only for the first
    assert call("http_put_approver", body=POLICY).status == 200
    assert call("http_put_approver", path={"accountId": "444455556666"}, body={"email": OPS[1]}).status == 200
    # When the first account's policy keeps ops1@ only
    assert call("http_put_approver", body={"approvers": OPS[:1]}).status == 200
    # Then ops2@ keeps the second account, and security@, serving none, has no subscription
    assert filters(aws) == {
        OPS[0]: {"accountId": [APPROVED_ACCOUNT], "recipients": [OPS[0]]},
        OPS[1]: {"accountId": ["444455556666"], "recipients": [OPS[1]]},
    }
    # And deleting the policies removes the rest
    assert call("http_delete_approver").status == 204
    assert call("http_delete_approver", path={"accountId": "444455556666"}).status == 204
    assert subscriptions(aws) == []


def test_an_address_in_two_accounts_policies_has_one_subscription_listing_both(aws: dict[str, Any]) -> None:
    assert call("http_put_approver", body=POLICY).status == 200
    other = {"approvers": ["admin@example.com"], "escalateAfterSeconds": 600, "escalateTo": [OPS[1]]}
    assert call("http_put_approver", path={"accountId": "444455556666"}, body=other).status == 200
    found = filters(aws)
    assert found[OPS[1]] == {"accountId": [APPROVED_ACCOUNT, "444455556666"], "recipients": [OPS[1]]}
    assert found[OPS[0]] == {"accountId": [APPROVED_ACCOUNT], "recipients": [OPS[0]]}
    assert found["admin@example.com"] == {"accountId": ["444455556666"], "recipients": ["admin@example.com"]}


def test_an_address_anywhere_in_a_policy_is_found_by_the_registry(aws: dict[str, Any]) -> None:
    # The fallback for addresses registered before their records existed: a Query on GSI4.
    assert call("http_put_approver", body=POLICY).status == 200
    registry = stores(aws["table"], aws["ddb"]).registry
    for address in [*OPS, SECURITY]:
        assert [a.accountId for a in registry.approvers_with_email(address)] == [APPROVED_ACCOUNT]
    assert registry.approvers_with_email("admin@example.com") == []
    # And a registration stored before policies (only its email) is found too
    aws["ddb"].put_item(TableName=aws["table"], Item=serialize({
        "pk": "APPROVER#444455556666", "sk": "APPROVER", "gsi4pk": "ALL#APPROVER", "gsi4sk": "444455556666",
        "accountId": "444455556666", "email": "admin@example.com", "subscriptionArn": None,
        "approverPrincipals": [], "updatedAt": "2026-01-01T00:00:00.000Z", "updatedBy": "oscar",
    }))  # fmt: skip
    [legacy] = registry.approvers_with_email("admin@example.com")
    assert (legacy.accountId, legacy.approvers, legacy.quorum) == ("444455556666", ["admin@example.com"], 1)


def test_a_policy_change_is_recorded_with_the_policy(aws: dict[str, Any]) -> None:
    assert call("http_put_approver", body=POLICY).status == 200
    reply = invoke("query_audit", http_event("http_audit_events", query={"actor": "oscar"}))
    [event] = reply.json["items"]
    assert (event["type"], event["accountId"], event["detail"]) == (
        "APPROVER_CHANGED", APPROVED_ACCOUNT,
        "policy: approvers ops1@example.com, ops2@example.com; quorum 2; reminders 3600, 7200 s; "
        "escalate to security@example.com after 86400 s",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**POLICY, "quorum": 3}, "quorum"),
        ({**POLICY, "escalateTo": ["OPS1@example.com"]}, "escalateTo[0]"),
        ({**POLICY, "remindAfterSeconds": [7200, 3600]}, "remindAfterSeconds[1]"),
        ({**POLICY, "remindAfterSeconds": [3600, 604800]}, "remindAfterSeconds[1]"),
        ({**POLICY, "escalateTo": []}, "escalateTo"),
        ({"email": "admin@example.com", "quorum": 1}, "quorum"),
        ({"email": "admin@example.com", "approvers": OPS}, "approvers"),
        ({}, "approvers"),
        ({**POLICY, "remindAfterSeconds": [30]}, "remindAfterSeconds[0]"),
        ({**POLICY, "approvers": []}, "approvers"),
        ({**POLICY, "quorum": "2"}, "quorum"),
        ({**POLICY, "escalation": "later"}, "escalation"),
    ],
)
def test_a_bad_policy_is_a_400_naming_the_field_and_changes_nothing(
    aws: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    # Given the account administered by admin@
    assert call("http_put_approver").status == 200
    before, subscribed = dump_table(aws["ddb"]), subscriptions(aws)
    # When an operator sends a policy that breaks a rule
    reply = call("http_put_approver", body=body)
    # Then a problem naming the field, and nothing stored, no subscription made
    assert reply.status == 400, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert field in {error["field"] for error in reply.json["errors"]}, reply.json
    assert dump_table(aws["ddb"]) == before and subscriptions(aws) == subscribed


def test_the_approval_window_is_the_deployments(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPROVAL_TIMEOUT_SECONDS", "3600")
    load_settings.cache_clear()
    try:
        reply = call("http_put_approver", body={"approvers": OPS, "remindAfterSeconds": [3600]})
        assert reply.status == 400
        assert reply.json["errors"] == [
            {"field": "remindAfterSeconds[0]", "message": "must be less than the approval window (3600 s)"}
        ]
        assert subscriptions(aws) == []
        assert call("http_put_approver", body={"approvers": OPS, "remindAfterSeconds": [3540]}).status == 200
    finally:
        load_settings.cache_clear()


# ---- every change is recorded ---------------------------------------------------------------------


def test_every_registry_change_is_an_audit_event_and_a_refused_one_is_not(aws: dict[str, Any]) -> None:
    assert call("http_put_space").status == 200
    assert call("http_put_member").status == 200
    assert call("http_put_approver").status == 200
    assert call("http_delete_member").status == 204
    assert call("http_delete_member").status == 404  # refused: nothing recorded
    assert call("http_delete_approver").status == 204
    reply = invoke("query_audit", http_event("http_audit_events", query={"actor": "oscar"}))
    assert reply.status == 200
    # Changes within one millisecond have no order between them: compare as a set.
    recorded = {
        (event["type"], event["spaceId"], event["accountId"], event["connectionId"], event["detail"])
        for event in reply.json["items"]
    }
    assert recorded == {  # fmt: skip
        ("SPACE_CHANGED", "demo", None, None, "named Demo space"),
        ("MEMBER_CHANGED", "demo", None, None, "bob is POWER_USER"),
        ("APPROVER_CHANGED", None, APPROVED_ACCOUNT, None, "policy: approvers admin@example.com; quorum 1"),
        ("MEMBER_REMOVED", "demo", None, None, "bob removed"),
        (
            "APPROVER_REMOVED",
            None,
            APPROVED_ACCOUNT,
            None,
            "removed policy: approvers admin@example.com; quorum 1",
        ),
    }
    everything = invoke("query_audit", http_event("http_audit_events", query={}))
    assert len(everything.json["items"]) == 5


# ---- a changed or removed administrator: the live links die, new ones go out --------------------


@pytest.fixture
def outbox() -> Iterator[Outbox]:
    """What SNS delivers to each email subscription, by its filter policy (the local stack's)."""
    box = Outbox()
    stop = box.install()
    yield box
    stop()


def _links_to(outbox: Outbox, address: str) -> list[str]:
    return [
        parse_qs(urlparse(link).query)["token"][0]
        for email in outbox.emails()
        if email.to == address
        for link in email.links
        if "/verify?token=" in link
    ]


def _page(token: str) -> Reply:
    return invoke("decide_connection", http_event("http_verify_page", query={"token": token}))


def _notify(connection_id: str) -> None:
    """The workflow's notify step for the request, waiting with the task token task-1."""
    event = load_event("sfn_notify_approver", connectionId=connection_id, taskToken="task-1")
    load_handler("notify_approver").handler(event, FakeContext())


def _waiting_request(outbox: Outbox) -> tuple[str, str]:
    """admin@ registered through the API, and a request its workflow waits on, its link emailed
    by the notify step. Returns the request's id and the link's token."""
    assert call("http_put_approver").status == 200
    created = invoke("manage_connections", http_event("http_create_connection"))
    assert created.status == 201, created.text
    connection_id = created.json["connectionId"]
    _notify(connection_id)
    [token] = _links_to(outbox, "admin@example.com")
    assert _page(token).status == 200
    return connection_id, token


def test_a_new_administrator_gets_a_new_link_and_the_old_one_is_replaced(
    seeded: dict[str, Any], outbox: Outbox
) -> None:
    # Given a request waiting with a link emailed to admin@
    connection_id, old = _waiting_request(outbox)
    # When an operator gives the account to new-admin@
    assert call("http_put_approver", body={"email": "new-admin@example.com"}).status == 200
    # Then the old link answers 410 (replaced) and new-admin@ got a link that works
    gone = _page(old)
    assert gone.status == 410 and "A newer link was sent" in gone.text
    [new] = _links_to(outbox, "new-admin@example.com")
    page = _page(new)
    assert page.status == 200 and 'name="csrf"' in page.text
    assert _links_to(outbox, "admin@example.com") == [old]  # admin@ got nothing more
    # And the history says who did it
    detail = invoke(
        "manage_connections", http_event("http_get_connection", path={"connectionId": connection_id})
    )
    last = detail.json["history"][-1]
    assert (last["type"], last["actor"]) == ("LINK_SENT", "oscar")


def test_an_unregistered_administrators_link_dies_until_the_next_registration(
    seeded: dict[str, Any], outbox: Outbox
) -> None:
    # Given a request waiting with a link emailed to admin@
    connection_id, old = _waiting_request(outbox)
    # When the account's administrator is unregistered
    assert call("http_delete_approver").status == 204
    # Then the old link answers 410 and nobody got a new one
    gone = _page(old)
    assert gone.status == 410 and "withdrawn" in gone.text
    assert len(outbox.emails()) == 1
    request = stores(seeded["table"], seeded["ddb"]).connections.get(connection_id)
    assert request.status == "PENDING_APPROVAL"
    # When another administrator is registered, they get a link that works
    assert call("http_put_approver", body={"email": "next@example.com"}).status == 200
    [new] = _links_to(outbox, "next@example.com")
    assert _page(new).status == 200 and _page(old).status == 410


def test_a_request_not_waiting_yet_is_left_to_its_notify_step(seeded: dict[str, Any], outbox: Outbox) -> None:
    # Given a request whose workflow has not stored its task token yet
    assert call("http_put_approver").status == 200
    created = invoke("manage_connections", http_event("http_create_connection"))
    connection_id = created.json["connectionId"]
    # When the administrator changes, nothing is sent for it
    assert call("http_put_approver", body={"email": "new-admin@example.com"}).status == 200
    assert outbox.emails() == []
    # And its notify step, when it runs, emails the address registered now
    _notify(connection_id)
    [new] = _links_to(outbox, "new-admin@example.com")
    assert _page(new).status == 200
