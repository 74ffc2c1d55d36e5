"""Every route of the requester, operator and audit functions refuses every identity that may not
use it: no token claims -> 401; not a member, LIMITED_ACCESS for a change, or the wrong group ->
403. A refused request changes nothing: not the table, not the approval topic's subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.conftest import dump_table
from tests.support import http_event, invoke, resource

Identity = tuple[str | None, list[str] | None]  # (sub, groups); None: no token, or no groups claim

ALICE: Identity = ("alice", [])  # SPACE_ADMIN of demo
BOB: Identity = ("bob", [])  # POWER_USER of demo
CAROL: Identity = ("carol", [])  # LIMITED_ACCESS of demo
DAVE: Identity = ("dave", [])  # SPACE_ADMIN of another space
MALLORY: Identity = ("mallory", [])  # nobody
AUDREY: Identity = ("audrey", ["auditors"])
OSCAR: Identity = ("oscar", ["operators"])
# Group names are exact: neither a prefix, another case, nor a name holding one after a comma
# grants them.
LOOKALIKE: Identity = ("eve", ["Operators", "auditors-readonly", "operatorsx", "x,auditors", "x,operators"])
NO_TOKEN: Identity = (None, None)


@dataclass(frozen=True)
class Route:
    function: str
    event: str
    overrides: dict[str, Any]
    allowed: tuple[Identity, ...]

    def call(self, who: Identity, connection_id: str) -> Any:
        sub, groups = who
        overrides = dict(self.overrides)
        if "connectionId" in overrides.get("path", {}):
            overrides["path"] = {**overrides["path"], "connectionId": connection_id}
        kwargs: dict[str, Any] = {"sub": sub, **overrides}
        if groups is not None:
            kwargs["groups"] = groups
        return invoke(self.function, http_event(self.event, **kwargs))


PENDING = {"path": {"connectionId": "set per test"}}
CREATE = {
    "body": {"accountId": "111122223333", "displayName": "Staging"},
    "headers": {"idempotency-key": None},
}
ROUTES = {
    "create": Route("manage_connections", "http_create_connection", CREATE, (ALICE, BOB)),
    "list": Route("manage_connections", "http_list_connections", {}, (ALICE, BOB, CAROL)),
    "get": Route("manage_connections", "http_get_connection", PENDING, (ALICE, BOB, CAROL)),
    "cancel": Route("manage_connections", "http_cancel_connection", PENDING, (ALICE, BOB)),
    "put_space": Route("administer_spaces", "http_put_space", {}, (OSCAR,)),
    "put_member": Route("administer_spaces", "http_put_member", {}, (OSCAR,)),
    "delete_member": Route("administer_spaces", "http_delete_member", {}, (OSCAR,)),
    "put_approver": Route(
        "administer_spaces", "http_put_approver", {"body": {"email": "x@example.com"}}, (OSCAR,)
    ),
    "delete_approver": Route("administer_spaces", "http_delete_approver", {}, (OSCAR,)),
    "list_approvers": Route("administer_spaces", "http_list_approvers", {}, (OSCAR,)),
    # The approval workflow's routes of the same function: their behaviour is tested with the
    # workflow; their refusals belong to this matrix.
    "resend": Route("manage_connections", "http_resend_connection", PENDING, (ALICE, BOB)),
    "attach_role": Route("manage_connections", "http_attach_role", PENDING, (ALICE, BOB)),
    "detach_role": Route("manage_connections", "http_detach_role", PENDING, (ALICE, BOB)),
    "audit_connections": Route("query_audit", "http_audit_connections", {}, (AUDREY,)),
    "audit_events": Route("query_audit", "http_audit_events", {}, (AUDREY,)),
    "audit_export": Route("query_audit", "http_audit_export", {}, (AUDREY,)),
    "audit_digests": Route("query_audit", "http_audit_digests", {}, (AUDREY,)),
    "audit_public_key": Route("query_audit", "http_audit_public_key", {}, (AUDREY,)),
}
WORKFLOW_ROUTES = {"resend", "attach_role", "detach_role"}
IDENTITIES = {
    "alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE, "mallory": MALLORY,
    "audrey": AUDREY, "oscar": OSCAR, "lookalike": LOOKALIKE,
}  # fmt: skip
REFUSALS = [
    (route, identity)
    for route, spec in ROUTES.items()
    for identity, who in IDENTITIES.items()
    if who not in spec.allowed
]


@pytest.fixture
def pending(seeded: dict[str, Any]) -> str:
    reply = invoke(
        "manage_connections", http_event("http_create_connection", headers={"idempotency-key": None})
    )
    assert reply.status == 201
    return str(reply.json["connectionId"])


def state(aws: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    topic_subscriptions = aws["sns"].list_subscriptions_by_topic(TopicArn=aws["topic"])["Subscriptions"]
    return dump_table(aws["ddb"]), topic_subscriptions


@pytest.mark.parametrize("route", list(ROUTES))
def test_each_identity_that_may_not_use_a_route_is_refused_and_changes_nothing(
    seeded: dict[str, Any], pending: str, route: str
) -> None:
    spec = ROUTES[route]
    refused = {
        name: who for name, who in {"no token": NO_TOKEN, **IDENTITIES}.items() if who not in spec.allowed
    }
    before = state(seeded)
    outcomes = {}
    for name, who in refused.items():
        reply = spec.call(who, pending)
        outcomes[name] = (reply.status, reply.json["title"])
        assert state(seeded) == before, f"{name} changed state through {route}"
    assert outcomes == {
        name: (401, "Not authenticated") if who == NO_TOKEN else (403, "Forbidden")
        for name, who in refused.items()
    }


@pytest.mark.parametrize("route", [route for route in ROUTES if route not in WORKFLOW_ROUTES])
def test_each_identity_that_may_use_a_route_is_let_through(
    seeded: dict[str, Any], pending: str, route: str
) -> None:
    # The refusals above only mean something if the allowed callers do get in.
    spec = ROUTES[route]
    live = pending
    for who in spec.allowed:
        if route == "create":  # the account must not be live in the space already
            cancelled = invoke(
                "manage_connections", http_event("http_cancel_connection", path={"connectionId": live})
            )
            assert cancelled.status == 200
        reply = spec.call(who, pending)
        assert reply.status in (200, 201, 204), (who, reply.text)
        if route == "create":
            live = reply.json["connectionId"]
        if route == "cancel":  # the next caller would find it cancelled already
            break


def test_the_matrix_covers_every_route_of_the_three_functions() -> None:
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for logical_id in ("RequesterApiFunction", "OperatorApiFunction", "AuditApiFunction")
        for event in resource(logical_id)["Properties"]["Events"].values()
    }
    covered = {tuple(http_event(spec.event)["routeKey"].split(" ", 1)) for spec in ROUTES.values()}
    assert covered == routes
