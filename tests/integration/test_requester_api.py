"""Requesters' routes (functions/manage_connections) against moto, driven by the events in events/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from account_connections.adapters.dynamodb.audit import put_event
from account_connections.domain.connection import StatusChange
from account_connections.domain.registry import Approver, Member, SpaceRole
from account_connections.domain.statuses import ConnectionStatus
from tests.builders import history_events, recorded_role
from tests.integration.conftest import APPROVED_ACCOUNT, OTHER_SPACE, UNREGISTERED_ACCOUNT, dump_table
from tests.support import Reply, http_event, invoke

FUNCTION = "manage_connections"
BODY = {
    "accountId": APPROVED_ACCOUNT,
    "displayName": "Production",
    "description": "Deploy target for the web app",
    "roleArns": [f"arn:aws:iam::{APPROVED_ACCOUNT}:role/BuildRole"],
}


def create(sub: str = "alice", body: dict[str, Any] | None = None, key: str | None = None) -> Reply:
    event = http_event("http_create_connection", sub=sub, body=body or BODY, headers={"idempotency-key": key})
    return invoke(FUNCTION, event)


def get(
    connection_id: str, sub: str = "alice", space: str = "demo", query: dict[str, str] | None = None
) -> Reply:
    path = {"spaceId": space, "connectionId": connection_id}
    return invoke(FUNCTION, http_event("http_get_connection", sub=sub, path=path, query=query or {}))


def cancel(connection_id: str, sub: str = "alice", space: str = "demo") -> Reply:
    event = http_event(
        "http_cancel_connection", sub=sub, path={"spaceId": space, "connectionId": connection_id}
    )
    return invoke(FUNCTION, event)


def list_page(query: dict[str, str] | None = None, sub: str = "alice") -> Reply:
    return invoke(FUNCTION, http_event("http_list_connections", sub=sub, query=query or {}))


def space_connections(seeded: dict[str, Any]) -> list[dict[str, Any]]:
    response = seeded["ddb"].query(
        TableName=seeded["table"],
        IndexName="GSI1",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "SPACE#demo"}},
    )
    return response["Items"]


# ---- create ------------------------------------------------------------------------------------


def test_create_stores_the_request_starts_its_workflow_and_returns_the_token_once(
    seeded: dict[str, Any],
) -> None:
    reply = create()
    assert reply.status == 201, reply.text
    assert reply.headers["X-Request-Id"] == "JKJaXmPLvHcESHA="
    body = reply.json
    assert body["status"] == "PENDING_APPROVAL"
    assert body["requestedBy"] == "alice"
    assert (body["accountId"], body["displayName"], body["roleArns"]) == (
        BODY["accountId"],
        BODY["displayName"],
        BODY["roleArns"],
    )
    assert body["expiresAt"] > body["createdAt"]
    assert len(body["connectionToken"]) >= 22  # at least 128 bits, URL-safe

    executions = seeded["sfn"].list_executions(stateMachineArn=seeded["state_machine"])["executions"]
    assert [execution["name"] for execution in executions] == [body["connectionId"]]

    read = get(body["connectionId"])
    assert read.status == 200
    assert "connectionToken" not in read.json
    assert [(event["type"], event["actor"], event["toStatus"]) for event in read.json["history"]] == [
        ("REQUESTED", "alice", "PENDING_APPROVAL")
    ]
    stored = seeded["stores"].item(body["connectionId"])
    assert stored is not None and body["connectionToken"] not in str(stored)


def test_a_power_user_may_request_too(seeded: dict[str, Any]) -> None:
    reply = create(sub="bob")
    assert reply.status == 201
    assert reply.json["requestedBy"] == "bob"


def page(token: str) -> Reply:
    """``GET /verify?token=``: the administrator's page."""
    return invoke("decide_connection", http_event("http_verify_page", query={"token": token}))


def without_token(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "connectionToken"}


def test_same_idempotency_key_and_body_answer_the_same_connection_with_a_new_token(
    seeded: dict[str, Any],
) -> None:
    first = create(key="retry-1")
    again = create(key="retry-1")
    assert (first.status, again.status) == (201, 201)
    # The same connection, once, with a connection token that replaces the first
    assert without_token(again.json) == without_token(first.json)
    assert again.json["connectionToken"] and again.json["connectionToken"] != first.json["connectionToken"]
    assert len(space_connections(seeded)) == 1
    # Only one connection token is live: the first answers 410 ("replaced"), the new one opens the page
    assert page(first.json["connectionToken"]).status == 410
    assert page(again.json["connectionToken"]).status == 200
    history = [event["type"] for event in get(first.json["connectionId"]).json["history"]]
    assert history == ["REQUESTED", "CONNECTION_TOKEN_REPLACED"]
    # And a third replay replaces the second
    third = create(key="retry-1")
    assert third.json["connectionId"] == first.json["connectionId"]
    assert page(again.json["connectionToken"]).status == 410
    assert page(third.json["connectionToken"]).status == 200
    # The same key with another body is still a conflict
    assert create(key="retry-1", body={**BODY, "displayName": "Else"}).status == 409


def test_the_idempotency_record_keeps_no_connection_token(seeded: dict[str, Any]) -> None:
    first = create(key="retry-record")
    again = create(key="retry-record")
    records = [item for item in dump_table(seeded["ddb"]) if item["pk"]["S"].startswith("IDEMPOTENCY#")]
    assert len(records) == 1
    stored = json.dumps(records)
    for token in (first.json["connectionToken"], again.json["connectionToken"]):
        assert token not in stored
    assert "connectionToken" not in stored
    assert first.json["connectionId"] in stored  # the record is the response, less the token


def test_a_replay_after_the_request_left_pending_answers_without_a_token(seeded: dict[str, Any]) -> None:
    first = create(key="retry-late")
    assert cancel(first.json["connectionId"]).status == 200
    before = dump_table(seeded["ddb"])
    again = create(key="retry-late")
    assert again.status == 201
    assert again.json["connectionToken"] == ""
    assert without_token(again.json) == without_token(first.json)
    assert dump_table(seeded["ddb"]) == before


def test_same_idempotency_key_with_another_body_is_a_conflict(seeded: dict[str, Any]) -> None:
    assert create(key="retry-2").status == 201
    before = dump_table(seeded["ddb"])
    reply = create(key="retry-2", body={**BODY, "displayName": "Something else"})
    assert reply.status == 409
    assert reply.json["title"] == "Idempotency key reused"
    assert dump_table(seeded["ddb"]) == before


def test_an_idempotency_key_is_scoped_to_its_caller(seeded: dict[str, Any]) -> None:
    assert create(sub="alice", key="shared").status == 201
    # bob's request with the same key is a new request: the account is then already live.
    assert create(sub="bob", key="shared").status == 409


def test_a_second_live_connection_of_the_account_in_the_space_is_a_conflict(seeded: dict[str, Any]) -> None:
    assert create().status == 201
    before = dump_table(seeded["ddb"])
    reply = create(body={**BODY, "displayName": "Again"})
    assert reply.status == 409
    assert reply.json["title"] == "Account already connected"
    assert dump_table(seeded["ddb"]) == before


def test_the_same_account_may_be_requested_in_another_space(seeded: dict[str, Any]) -> None:
    assert create().status == 201
    event = http_event("http_create_connection", sub="dave", path={"spaceId": OTHER_SPACE}, body=BODY)
    event["headers"].pop("idempotency-key")
    assert invoke(FUNCTION, event).status == 201


def test_an_account_without_an_administrator_is_unprocessable(seeded: dict[str, Any]) -> None:
    before = dump_table(seeded["ddb"])
    reply = create(body={**BODY, "accountId": UNREGISTERED_ACCOUNT, "roleArns": []})
    assert reply.status == 422
    assert UNREGISTERED_ACCOUNT in reply.json["detail"]
    assert dump_table(seeded["ddb"]) == before


def test_a_role_of_another_account_is_refused_by_its_index(seeded: dict[str, Any]) -> None:
    roles = [BODY["roleArns"][0], "arn:aws:iam::999999999999:role/Elsewhere"]
    reply = create(body={**BODY, "roleArns": roles})
    assert reply.status == 400
    assert [error["field"] for error in reply.json["errors"]] == ["roleArns[1]"]


def test_an_invalid_idempotency_key_is_refused(seeded: dict[str, Any]) -> None:
    reply = create(key="ключ")
    assert reply.status == 400
    assert reply.json["errors"][0]["field"] == "Idempotency-Key"


# ---- what a create costs, and who hears what first -----------------------------------------------


@pytest.fixture
def aws_calls(seeded: dict[str, Any]) -> Iterator[list[str]]:
    """``service.Operation`` of every call the handlers make to DynamoDB and Step Functions (a
    botocore hook on the clients they share), counted from a warm handler."""
    from account_connections.adapters.clients import client

    assert list_page().status == 200  # the handler loaded, its clients made
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}.{model.name}")

    clients = [client("dynamodb"), client("stepfunctions")]
    for made in clients:
        made.meta.events.register("before-call", record, unique_id="create-calls")
    yield calls
    for made in clients:
        made.meta.events.unregister("before-call", unique_id="create-calls")


CREATE_CALLS = ["dynamodb.TransactWriteItems", "stepfunctions.StartExecution"]


def test_a_create_is_its_transaction_and_the_workflows_start(aws_calls: list[str]) -> None:
    # The caller's role and the account's administrator are condition checks of the transaction
    assert create().status == 201
    assert aws_calls == CREATE_CALLS


def test_a_keyed_create_adds_the_idempotency_record_and_a_replay_swaps_the_token(
    aws_calls: list[str],
) -> None:
    assert create(key="counted").status == 201
    # powertools' record: put in progress before, completed with the response by the create's own
    # transaction (no UpdateItem after)
    assert aws_calls == ["dynamodb.PutItem", *CREATE_CALLS]
    aws_calls.clear()
    assert create(key="counted").status == 201
    # The record (its put refused, the stored response returned), the connection, its connection
    # token, the swap (which checks the caller's role)
    assert aws_calls == [
        "dynamodb.PutItem",
        "dynamodb.GetItem",
        "dynamodb.GetItem",
        "dynamodb.TransactWriteItems",
    ]


def test_an_account_with_a_policy_is_written_again_with_it(
    seeded: dict[str, Any], aws_calls: list[str]
) -> None:
    # Given an account whose policy is not the plain one
    stamp = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
    seeded["stores"].registry.put_approver(Approver(
        accountId=APPROVED_ACCOUNT, approvers=["ops1@example.com", "ops2@example.com"], quorum=2,
        remindAfterSeconds=[3600], **stamp,
    ))  # fmt: skip
    aws_calls.clear()
    # When alice asks Then the first write, which assumed the plain policy, was refused with the
    # registered one, and the second copied it (the answer as when the policy was read first)
    reply = create()
    assert reply.status == 201 and reply.json["quorum"] == 2
    assert aws_calls == ["dynamodb.TransactWriteItems", *CREATE_CALLS]
    [execution] = seeded["sfn"].list_executions(stateMachineArn=seeded["state_machine"])["executions"]
    started = json.loads(seeded["sfn"].describe_execution(executionArn=execution["executionArn"])["input"])
    assert [(t["seconds"], t["remind"], t["expire"]) for t in started["schedule"]] == [
        (3600, True, False), (604800 - 3600, False, True),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sub", "body", "status"),
    [
        ("carol", BODY, 403),  # LIMITED_ACCESS
        ("mallory", BODY, 403),  # no member
        ("dave", BODY, 403),  # another space's admin
        ("alice", {**BODY, "accountId": UNREGISTERED_ACCOUNT, "roleArns": []}, 422),
    ],
)
def test_a_refused_create_is_one_cancelled_transaction_and_changes_nothing(
    seeded: dict[str, Any], aws_calls: list[str], sub: str, body: dict[str, Any], status: int
) -> None:
    before = dump_table(seeded["ddb"])
    aws_calls.clear()
    assert create(sub=sub, body=body).status == status
    assert aws_calls == ["dynamodb.TransactWriteItems"]
    assert dump_table(seeded["ddb"]) == before
    assert seeded["sfn"].list_executions(stateMachineArn=seeded["state_machine"])["executions"] == []


def problem(reply: Reply) -> tuple[int, str, str]:
    return reply.status, reply.json["title"], reply.json["detail"]


@pytest.mark.parametrize("sub", ["carol", "mallory"])
def test_a_caller_who_may_not_create_hears_so_before_any_other_refusal(
    seeded: dict[str, Any], sub: str
) -> None:
    # The 403 every other route answers them (a change, as cancel is), word for word
    expected = problem(cancel("0" * 8 + "-0000-0000-0000-" + "0" * 12, sub=sub))
    assert expected[0] == 403
    before = dump_table(seeded["ddb"])
    refusals = {
        "plain": create(sub=sub),
        "a role of another account": create(
            sub=sub, body={**BODY, "roleArns": ["arn:aws:iam::999999999999:role/X"]}
        ),
        "a bad Idempotency-Key": create(sub=sub, key="ключ"),
        "an account nobody administers": create(sub=sub, body={**BODY, "accountId": UNREGISTERED_ACCOUNT}),
        "with an Idempotency-Key": create(sub=sub, key=f"{sub}-key"),
    }
    assert {name: problem(reply) for name, reply in refusals.items()} == dict.fromkeys(refusals, expected)
    assert dump_table(seeded["ddb"]) == before  # the refused keyed create's record is gone too


@pytest.mark.parametrize("pending", [True, False])
@pytest.mark.parametrize("demoted", [SpaceRole.LIMITED_ACCESS, None])
def test_a_replay_by_a_member_who_may_no_longer_create_is_refused_and_changes_nothing(
    seeded: dict[str, Any], demoted: SpaceRole | None, pending: bool
) -> None:
    first = create(key="then-demoted")
    assert first.status == 201
    if not pending:  # a replay then writes nothing: the role is read
        assert cancel(first.json["connectionId"]).status == 200
    registry = seeded["stores"].registry
    if demoted is None:
        assert registry.delete_member("demo", "alice")
    else:
        stamp = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
        registry.put_member(Member(spaceId="demo", userId="alice", role=demoted, **stamp))
    before = dump_table(seeded["ddb"])
    again = create(key="then-demoted")
    assert problem(again) == problem(cancel(first.json["connectionId"]))  # the routes' own 403
    assert again.status == 403 and "connectionToken" not in again.json
    assert dump_table(seeded["ddb"]) == before


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every response the handlers' tracer would put into an X-Ray trace as metadata."""
    from account_connections.observability import tracer

    captured: list[Any] = []

    def record(method_name: str | None = None, data: Any = None, subsegment: Any = None,
               capture_response: bool | str | None = None) -> None:  # fmt: skip
        if data is not None and capture_response and subsegment is not None:
            captured.append(data)

    monkeypatch.setattr(tracer, "_add_response_as_metadata", record)
    return captured


def test_no_trace_captures_the_response_that_holds_the_connection_token(
    seeded: dict[str, Any], traced: list[Any]
) -> None:
    reply = create(key="traced")
    assert reply.status == 201 and reply.json["connectionToken"]
    assert get(reply.json["connectionId"]).status == 200
    assert traced == []


# Every header a proxy or a caller could use to name another host or scheme.
FORGED_ORIGIN: dict[str, str | None] = {
    "host": "evil.example", "x-forwarded-proto": "http", "x-forwarded-host": "evil.example",
    "forwarded": "proto=http;host=evil.example", "idempotency-key": None,
}  # fmt: skip


def links_base_url(seeded: dict[str, Any], connection_id: str) -> str:
    """The base URL the workflow will start the emailed links with (its execution's input)."""
    arn = seeded["state_machine"].replace(":stateMachine:", ":execution:") + f":{connection_id}"
    execution = seeded["sfn"].describe_execution(executionArn=arn)
    return str(json.loads(execution["input"])["verifyBaseUrl"])


def test_links_start_with_the_apis_own_domain_never_with_a_request_header(seeded: dict[str, Any]) -> None:
    # Given no PublicBaseUrl, When a create names another host and scheme in its headers
    event = http_event("http_create_connection", body=BODY, headers=FORGED_ORIGIN)
    event["requestContext"]["domainName"] = "api.connections.example.com"
    reply = invoke(FUNCTION, event)
    assert reply.status == 201, reply.text
    # Then the links start with the domain API Gateway says the request reached, over https
    assert links_base_url(seeded, reply.json["connectionId"]) == "https://api.connections.example.com"


def test_links_start_with_the_public_base_url_when_one_is_set(
    seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from account_connections.settings import load_settings

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://connections.example.com/")
    load_settings.cache_clear()
    reply = invoke(FUNCTION, http_event("http_create_connection", body=BODY, headers=FORGED_ORIGIN))
    assert reply.status == 201, reply.text
    assert links_base_url(seeded, reply.json["connectionId"]) == "https://connections.example.com"


# ---- list and read ---------------------------------------------------------------------------


def seed_connections(count: int) -> list[str]:
    ids = []
    for index in range(count):
        account = f"1111222233{index:02d}"
        reply = invoke(
            "administer_spaces",
            http_event("http_put_approver", path={"accountId": account}, body={"email": "a@b.co"}),
        )
        assert reply.status == 200
        created = create(body={"accountId": account, "displayName": f"Account {index}"})
        assert created.status == 201, created.text
        ids.append(created.json["connectionId"])
    return ids


def test_list_is_newest_first_and_paginates(seeded: dict[str, Any]) -> None:
    ids = seed_connections(3)
    first = list_page({"limit": "2"})
    assert first.status == 200
    assert [item["connectionId"] for item in first.json["items"]] == ids[::-1][:2]
    assert first.json["nextToken"]
    second = list_page({"limit": "2", "nextToken": first.json["nextToken"]})
    assert [item["connectionId"] for item in second.json["items"]] == ids[:1]
    assert second.json["nextToken"] is None
    assert all("connectionToken" not in item for item in first.json["items"] + second.json["items"])


def test_list_filters_by_status(seeded: dict[str, Any]) -> None:
    ids = seed_connections(2)
    assert cancel(ids[0]).status == 200
    cancelled = list_page({"status": "CANCELLED"})
    pending = list_page({"status": "PENDING_APPROVAL"})
    assert [item["connectionId"] for item in cancelled.json["items"]] == [ids[0]]
    assert [item["connectionId"] for item in pending.json["items"]] == [ids[1]]


def test_a_next_token_from_another_space_is_refused(seeded: dict[str, Any]) -> None:
    seed_connections(2)
    token = list_page({"limit": "1"}).json["nextToken"]
    event = http_event(
        "http_list_connections", sub="dave", path={"spaceId": OTHER_SPACE}, query={"nextToken": token}
    )
    reply = invoke(FUNCTION, event)
    assert reply.status == 400
    assert reply.json["errors"][0]["field"] == "nextToken"


def test_every_member_may_read_including_limited_access(seeded: dict[str, Any]) -> None:
    connection_id = create().json["connectionId"]
    assert list_page(sub="carol").status == 200
    assert get(connection_id, sub="carol").json["connectionId"] == connection_id


def test_get_of_another_spaces_connection_is_not_found(seeded: dict[str, Any]) -> None:
    connection_id = create().json["connectionId"]
    reply = get(connection_id, sub="dave", space=OTHER_SPACE)
    assert reply.status == 404
    assert reply.json["detail"] == f"connection {connection_id} does not exist"


def test_get_of_an_unknown_connection_is_not_found(seeded: dict[str, Any]) -> None:
    assert get("00000000-0000-4000-8000-000000000000").status == 404


def with_history(seeded: dict[str, Any], events: int) -> str:
    """A new request with ``events`` events in its history, its REQUESTED event the first."""
    connection_id = str(create().json["connectionId"])
    state = seeded["stores"]
    for event in history_events(state.connections.get(connection_id), events - 1):
        seeded["ddb"].put_item(**put_event(state.table, event)["Put"])
    return connection_id


def test_a_long_history_comes_in_pages_in_order_nothing_lost_or_repeated(
    seeded: dict[str, Any], ddb_operations: list[str]
) -> None:
    connection_id = with_history(seeded, 150)
    ddb_operations.clear()
    first = get(connection_id)
    assert first.status == 200, first.text
    assert len(first.json["history"]) == 100 and first.json["historyNextToken"]
    # Each page is read by Query of the connection's partition, never a Scan
    assert "Scan" not in ddb_operations and ddb_operations.count("Query") == 2
    second = get(connection_id, query={"historyNextToken": first.json["historyNextToken"]})
    assert second.status == 200, second.text
    assert len(second.json["history"]) == 50 and second.json["historyNextToken"] is None
    details = [event["detail"] for event in first.json["history"] + second.json["history"]]
    assert details == ["requested by alice"] + [f"link {i}" for i in range(149)]
    # Every page carries the connection as it is
    same = {key: value for key, value in first.json.items() if not key.startswith("history")}
    assert {key: value for key, value in second.json.items() if not key.startswith("history")} == same


def test_a_history_page_may_be_smaller(seeded: dict[str, Any]) -> None:
    connection_id = with_history(seeded, 5)
    pages: list[str] = []
    token: str | None = None
    while True:
        reply = get(
            connection_id, query={"historyLimit": "2", **({"historyNextToken": token} if token else {})}
        )
        assert reply.status == 200 and len(reply.json["history"]) <= 2
        pages.extend(event["detail"] for event in reply.json["history"])
        token = reply.json["historyNextToken"]
        if token is None:
            break
    assert pages == ["requested by alice", "link 0", "link 1", "link 2", "link 3"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"historyLimit": "0"}, "historyLimit"),
        ({"historyLimit": "101"}, "historyLimit"),
        ({"historyNextToken": "not-a-token"}, "historyNextToken"),
    ],
)
def test_a_bad_history_page_is_a_bad_request(
    seeded: dict[str, Any], query: dict[str, str], field: str
) -> None:
    connection_id = with_history(seeded, 3)
    reply = get(connection_id, query=query)
    assert reply.status == 400
    assert [error["field"] for error in reply.json["errors"]] == [field]


def test_a_history_token_of_another_connection_or_query_is_refused(seeded: dict[str, Any]) -> None:
    first, second = with_history(seeded, 3), seed_connections(1)[0]
    token = get(first, query={"historyLimit": "1"}).json["historyNextToken"]
    listed = list_page({"limit": "1"}).json["nextToken"]
    tampered = token[:-4] + ("A" if token[-4] != "A" else "B") + token[-3:]
    for foreign in (token, listed, tampered):
        reply = get(second, query={"historyNextToken": foreign})
        assert reply.status == 400, foreign
        assert reply.json["errors"][0]["field"] == "historyNextToken"


def test_detaching_a_role_answers_the_first_page_as_get_does(seeded: dict[str, Any]) -> None:
    connection_id = with_history(seeded, 120)
    connections = seeded["stores"].connections
    approved = connections.transition(
        connections.get(connection_id), StatusChange(ConnectionStatus.APPROVED, "admin@example.com")
    )
    verified = connections.transition(approved, StatusChange(ConnectionStatus.VERIFIED, "system"))
    connections.attach_role(verified, recorded_role("BuildRole"), actor="alice")
    path = {"spaceId": "demo", "connectionId": connection_id, "roleName": "BuildRole"}
    reply = invoke(FUNCTION, http_event("http_detach_role", path=path))
    assert reply.status == 200, reply.text
    assert reply.json["roles"] == [] and len(reply.json["history"]) == 100
    assert reply.json == get(connection_id).json
    rest = get(connection_id, query={"historyNextToken": reply.json["historyNextToken"]}).json["history"]
    # The made-up links are dated a second after the request, the real changes when they happened
    # (maybe sooner): every event comes once, in time order, across the two pages.
    every = reply.json["history"] + rest
    assert [event["at"] for event in every] == sorted(event["at"] for event in every)
    changes = [event["type"] for event in every if event["type"] != "LINK_SENT"]
    assert changes == ["REQUESTED", "STATUS_CHANGED", "STATUS_CHANGED", "ROLE_ATTACHED", "ROLE_DETACHED"]
    assert len(every) == 124


# ---- cancel and disconnect -----------------------------------------------------------------------


def test_cancel_of_a_pending_request_cancels_it_with_an_audit_event(seeded: dict[str, Any]) -> None:
    connection_id = create().json["connectionId"]
    reply = cancel(connection_id, sub="bob")
    assert reply.status == 200
    assert reply.json["status"] == "CANCELLED"
    history = get(connection_id).json["history"]
    assert [(event["fromStatus"], event["toStatus"], event["actor"]) for event in history] == [
        (None, "PENDING_APPROVAL", "alice"),
        ("PENDING_APPROVAL", "CANCELLED", "bob"),
    ]
    # The account is free again in the space.
    assert create(body={**BODY, "displayName": "Second try"}).status == 201


def test_cancel_while_the_workflow_waits_still_cancels(seeded: dict[str, Any]) -> None:
    # The workflow's wait for a decision holds a task token; one Step Functions no longer knows
    # (timed out, or the execution ended) must not stop the cancel.
    connection_id = create().json["connectionId"]
    seeded["ddb"].update_item(
        TableName=seeded["table"],
        Key={"pk": {"S": f"CONNECTION#{connection_id}"}, "sk": {"S": "CONNECTION"}},
        UpdateExpression="SET taskToken = :token",
        ConditionExpression="#status = :pending",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":token": {"S": "AAAA" * 20}, ":pending": {"S": "PENDING_APPROVAL"}},
    )
    reply = cancel(connection_id)
    assert reply.status == 200
    assert reply.json["status"] == "CANCELLED"
    assert "taskToken" not in reply.text


def test_cancel_twice_is_a_conflict_and_changes_nothing(seeded: dict[str, Any]) -> None:
    connection_id = create().json["connectionId"]
    assert cancel(connection_id).status == 200
    before = dump_table(seeded["ddb"])
    reply = cancel(connection_id)
    assert reply.status == 409
    assert "CANCELLED" in reply.json["detail"]
    assert dump_table(seeded["ddb"]) == before


def test_delete_of_a_verified_connection_disconnects_it(seeded: dict[str, Any]) -> None:
    connection_id = create().json["connectionId"]
    connections = seeded["stores"].connections
    approved = connections.transition(
        connections.get(connection_id), StatusChange(ConnectionStatus.APPROVED, "admin@example.com")
    )
    connections.transition(approved, StatusChange(ConnectionStatus.VERIFIED, "system"))
    reply = cancel(connection_id)
    assert reply.status == 200
    assert reply.json["status"] == "DISCONNECTED"
    assert reply.json["disconnectedAt"]
    assert get(connection_id).json["history"][-1]["toStatus"] == "DISCONNECTED"


@pytest.mark.parametrize("status", [ConnectionStatus.APPROVED, ConnectionStatus.REJECTED])
def test_delete_in_any_other_status_is_a_conflict(seeded: dict[str, Any], status: ConnectionStatus) -> None:
    connection_id = create().json["connectionId"]
    connections = seeded["stores"].connections
    connections.transition(connections.get(connection_id), StatusChange(status, "admin@example.com"))
    before = dump_table(seeded["ddb"])
    assert cancel(connection_id).status == 409
    assert dump_table(seeded["ddb"]) == before


def test_cancel_of_another_spaces_connection_is_not_found_and_changes_nothing(seeded: dict[str, Any]) -> None:
    connection_id = create().json["connectionId"]
    before = dump_table(seeded["ddb"])
    assert cancel(connection_id, sub="dave", space=OTHER_SPACE).status == 404
    assert dump_table(seeded["ddb"]) == before
