"""acctconn connections list|get|request|cancel against a fake API: what each sends, what it
prints (table and --json), pagination, and how each refusal ends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.cli.conftest import CONNECTION_ID, OTHER_CONNECTION_ID
from tests.cli.fake_api import FakeApi, problem

LIST = "/spaces/demo/connections"
ONE = f"{LIST}/{CONNECTION_ID}"


def connection(connection_id: str = CONNECTION_ID, **fields: Any) -> dict[str, Any]:
    return {
        "connectionId": connection_id,
        "spaceId": "demo",
        "accountId": "111122223333",
        "displayName": "Production",
        "description": None,
        "roleArns": ["arn:aws:iam::111122223333:role/BuildRole"],
        "status": "PENDING_APPROVAL",
        "requestedBy": "alice",
        "createdAt": "2026-01-02T10:00:00.000Z",
        "updatedAt": "2026-01-02T10:00:00.000Z",
        "expiresAt": "2026-01-09T10:00:00.000Z",
        "version": 1,
        "quorum": 1,
        "approvals": [],
        **fields,
    }


def event(event_id: str, event_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "connectionId": CONNECTION_ID,
        "spaceId": "demo",
        "accountId": "111122223333",
        "type": event_type,
        "actor": "alice",
        "at": "2026-01-02T10:00:00.000Z",
        **fields,
    }


def detail(**fields: Any) -> dict[str, Any]:
    shown = connection(
        status="VERIFIED",
        decidedBy="admin@example.com",
        decisionMethod="EMAIL_LINK",
        paidTiersAuthorized=True,
        verifiedAt="2026-01-02T10:05:00.000Z",
        approvals=[
            {
                "approver": "admin@example.com",
                "decisionMethod": "EMAIL_LINK",
                "at": "2026-01-02T10:04:00.000Z",
            }
        ],
        roles=[
            {
                "roleArn": "arn:aws:iam::111122223333:role/BuildRole",
                "roleName": "BuildRole",
                "attached": True,
                "checkedAt": "2026-01-02T10:05:00.000Z",
            },
            {
                "roleArn": "arn:aws:iam::111122223333:role/UntrustedRole",
                "roleName": "UntrustedRole",
                "attached": False,
                "reason": "its trust policy does not allow the runner",
                "checkedAt": "2026-01-02T10:05:00.000Z",
            },
        ],
        history=[
            event("000001", "REQUESTED", toStatus="PENDING_APPROVAL", detail="requested by alice"),
            event("l1", "LINK_SENT", actor="system", detail="link sent to admin@example.com"),
        ],
        historyNextToken=None,
    )
    return {**shown, **fields}


# list


def test_list_asks_for_one_page_and_shows_a_table(api: FakeApi) -> None:
    api.on("GET", LIST, httpx.Response(200, json={"items": [connection(), connection(OTHER_CONNECTION_ID)]}))
    result = api.run("connections", "list", "demo")
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "GET" and api.last.url.path == LIST
    assert dict(api.last.url.params) == {"limit": "25"}
    for text in (
        "Connection",
        "Account",
        "Status",
        CONNECTION_ID,
        OTHER_CONNECTION_ID,
        "Production",
        "2 connections",
    ):
        assert text in result.stdout
    assert result.stderr == ""


def test_list_filters_by_status_and_limit(api: FakeApi) -> None:
    api.on("GET", LIST, httpx.Response(200, json={"items": []}))
    result = api.run("connections", "list", "demo", "--status", "verified", "--limit", "5")
    assert result.exit_code == 0, result.stderr
    assert dict(api.last.url.params) == {"status": "VERIFIED", "limit": "5"}
    assert "0 connections" in result.stdout


def test_list_json_prints_the_page_as_the_api_sent_it(api: FakeApi) -> None:
    page = {"items": [connection()], "nextToken": "page-2"}
    api.on("GET", LIST, httpx.Response(200, json=page))
    result = api.run("--json", "connections", "list", "demo")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == page


def test_one_page_of_more_says_how_to_get_the_next(api: FakeApi) -> None:
    api.on("GET", LIST, httpx.Response(200, json={"items": [connection()], "nextToken": "page-2"}))
    result = api.run("connections", "list", "demo")
    assert result.exit_code == 0
    assert "--next-token page-2" in result.stderr and "--all" in result.stderr
    assert "page-2" not in result.stdout
    api.on("GET", LIST, httpx.Response(200, json={"items": []}))
    api.run("connections", "list", "demo", "--next-token", "page-2")
    assert api.last.url.params["nextToken"] == "page-2"


def test_all_follows_next_token_and_json_is_one_array(api: FakeApi) -> None:
    first, second, third = connection(), connection(OTHER_CONNECTION_ID), connection(status="CANCELLED")

    def pages(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("nextToken")
        page = {
            None: {"items": [first], "nextToken": "t1"},
            "t1": {"items": [second], "nextToken": "t2"},
            "t2": {"items": [third]},
        }[token]
        return httpx.Response(200, json=page)

    api.on("GET", LIST, pages)
    result = api.run("--json", "connections", "list", "demo", "--all", "--status", "PENDING_APPROVAL")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [first, second, third]
    assert [request.url.params.get("nextToken") for request in api.requests] == [None, "t1", "t2"]
    assert all(request.url.params["status"] == "PENDING_APPROVAL" for request in api.requests)
    table = api.run("connections", "list", "demo", "--all")
    assert table.exit_code == 0 and "3 connections" in table.stdout and table.stderr == ""


def test_a_list_too_wide_for_the_terminal_is_a_block_per_item(api: FakeApi) -> None:
    api.on("GET", LIST, httpx.Response(200, json={"items": [connection(), connection(OTHER_CONNECTION_ID)]}))
    result = api.run("connections", "list", "demo", columns=60)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 60 for line in lines)
    # Every id whole on its line, beside its field's name; no colour (stdout is no terminal).
    assert [line.split() for line in lines if "Connection" in line] == [
        ["Connection", CONNECTION_ID],
        ["Connection", OTHER_CONNECTION_ID],
    ]
    assert "2 connections" in result.stdout
    assert "\x1b[" not in result.stdout


def test_a_table_written_to_a_pipe_is_one_line_per_item(api: FakeApi) -> None:
    api.on("GET", LIST, httpx.Response(200, json={"items": [connection(), connection(OTHER_CONNECTION_ID)]}))
    result = api.run("connections", "list", "demo", columns=None)
    rows = [line.split() for line in result.stdout.splitlines() if "alice" in line]
    assert rows == [
        [
            CONNECTION_ID,
            "111122223333",
            "Production",
            "PENDING_APPROVAL",
            "2026-01-02T10:00:00.000Z",
            "alice",
        ],
        [
            OTHER_CONNECTION_ID,
            "111122223333",
            "Production",
            "PENDING_APPROVAL",
            "2026-01-02T10:00:00.000Z",
            "alice",
        ],
    ]


# get


def test_get_shows_the_connection_its_roles_approvals_and_history(api: FakeApi) -> None:
    api.on("GET", ONE, httpx.Response(200, json=detail()))
    result = api.run("connections", "get", "demo", CONNECTION_ID)
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "GET" and api.last.url.path == ONE and not api.last.url.params
    for text in (
        "VERIFIED",
        "Roles",
        "BuildRole",
        "UntrustedRole",
        "its trust policy does not allow the runner",
        "Approvals",
        "admin@example.com",
        "EMAIL_LINK",
        "History",
        "REQUESTED",
        "LINK_SENT",
        "requested by alice",
    ):
        assert text in result.stdout, text


def test_get_json_is_the_api_answer(api: FakeApi) -> None:
    api.on("GET", ONE, httpx.Response(200, json=detail()))
    result = api.run("--json", "connections", "get", "demo", CONNECTION_ID)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == detail()


def test_get_follows_the_pages_of_the_history(api: FakeApi) -> None:
    later = event("000002", "STATUS_CHANGED", fromStatus="PENDING_APPROVAL", toStatus="APPROVED")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("historyNextToken") == "h2":
            return httpx.Response(200, json=detail(history=[later], historyNextToken=None))
        return httpx.Response(200, json=detail(historyNextToken="h2"))

    api.on("GET", ONE, answer)
    result = api.run("--json", "connections", "get", "demo", CONNECTION_ID)
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert [item["eventId"] for item in shown["history"]] == ["000001", "l1", "000002"]
    assert shown["historyNextToken"] is None
    table = api.run("connections", "get", "demo", CONNECTION_ID)
    assert "PENDING_APPROVAL -> APPROVED" in table.stdout


def test_get_an_unknown_connection_is_refused(api: FakeApi) -> None:
    api.on("GET", ONE, problem(404, "Not Found", f"no connection {CONNECTION_ID} in space demo"))
    result = api.run("connections", "get", "demo", CONNECTION_ID)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: Not Found (404): no connection {CONNECTION_ID} in space demo [request id req-42]\n"
    )


def test_a_bad_connection_id_is_a_usage_error_and_nothing_is_sent(api: FakeApi) -> None:
    result = api.run("connections", "get", "demo", "../../approvers")
    assert result.exit_code == 2
    assert "is not a connection id" in result.stderr
    assert api.requests == []


# request


def test_request_sends_the_body_and_prints_the_token_once(api: FakeApi) -> None:
    created = {**connection(description="Deploy target"), "connectionToken": "ct-secret-123"}
    api.on("POST", LIST, httpx.Response(201, json=created))
    result = api.run(
        "connections", "request", "demo",
        "--account", "111122223333", "--name", "Production", "--description", "Deploy target",
        "--role", "arn:aws:iam::111122223333:role/BuildRole",
        "--role", "arn:aws:iam::111122223333:role/UntrustedRole",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "POST" and api.last.url.path == LIST
    assert api.last.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in api.last.headers
    assert api.body() == {
        "accountId": "111122223333",
        "displayName": "Production",
        "description": "Deploy target",
        "roleArns": [
            "arn:aws:iam::111122223333:role/BuildRole",
            "arn:aws:iam::111122223333:role/UntrustedRole",
        ],
    }
    assert "ct-secret-123" in result.stdout and CONNECTION_ID in result.stdout
    assert "shown only this once" in result.stderr


def test_request_sends_only_what_was_given_and_the_idempotency_key(api: FakeApi) -> None:
    created = {**connection(roleArns=[]), "connectionToken": "ct-1"}
    api.on("POST", LIST, httpx.Response(201, json=created))
    result = api.run(
        "--json", "connections", "request", "demo", "--account", "111122223333", "--name", "Prod",
        "--idempotency-key", "key-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.body() == {"accountId": "111122223333", "displayName": "Prod"}
    assert api.last.headers["Idempotency-Key"] == "key-1"
    assert json.loads(result.stdout) == created
    assert "shown only this once" in result.stderr


def test_a_replay_of_a_decided_request_says_there_is_no_token(api: FakeApi) -> None:
    api.on("POST", LIST, httpx.Response(201, json={**connection(status="VERIFIED"), "connectionToken": ""}))
    result = api.run("connections", "request", "demo", "--account", "111122223333", "--name", "P")
    assert result.exit_code == 0
    assert "no longer pending" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--account", "11112222333", "--name", "P"),
        ("--account", "1111222233334", "--name", "P"),
        ("--account", "11112222333x", "--name", "P"),
        ("--name", "P"),
        ("--account", "111122223333"),
    ],
)
def test_request_usage_errors_send_nothing(api: FakeApi, args: tuple[str, ...]) -> None:
    result = api.run("connections", "request", "demo", *args)
    assert result.exit_code == 2, result.stdout
    assert api.requests == []


def test_forbidden_is_refused_with_the_problem(api: FakeApi) -> None:
    api.on("POST", LIST, problem(403, "Forbidden", "carol may not change connections of space demo"))
    result = api.run("connections", "request", "demo", "--account", "111122223333", "--name", "P")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Forbidden (403): carol may not change connections of space demo")
    assert len(result.stderr.splitlines()) == 1


def test_invalid_input_names_each_field(api: FakeApi) -> None:
    errors = [{"field": "displayName", "message": "must not contain control characters"}]
    api.on("POST", LIST, problem(400, "Invalid request", "the request is not valid", errors))
    result = api.run("connections", "request", "demo", "--account", "111122223333", "--name", "a\tb")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Invalid request (400): the request is not valid; "
        "displayName: must not contain control characters [request id req-42]\n"
    )


@pytest.mark.parametrize(
    ("status", "title"), [(409, "Conflict"), (422, "Unprocessable Content")]
)  # fmt: skip
def test_conflicts_and_unprocessable_requests_are_refused(api: FakeApi, status: int, title: str) -> None:
    api.on("POST", LIST, problem(status, title, "because"))
    result = api.run("connections", "request", "demo", "--account", "444455556666", "--name", "P")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {title} ({status}): because")


# cancel


def test_cancel_deletes_and_shows_the_connection_as_it_now_is(api: FakeApi) -> None:
    api.on("DELETE", ONE, httpx.Response(200, json=connection(status="CANCELLED")))
    result = api.run("connections", "cancel", "demo", CONNECTION_ID)
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "DELETE" and api.last.url.path == ONE
    assert "CANCELLED" in result.stdout
    as_json = api.run("--json", "connections", "cancel", "demo", CONNECTION_ID)
    assert json.loads(as_json.stdout) == connection(status="CANCELLED")


def test_cancel_of_a_decided_request_is_a_conflict(api: FakeApi) -> None:
    api.on("DELETE", ONE, problem(409, "Conflict", "the connection is REJECTED"))
    result = api.run("connections", "cancel", "demo", CONNECTION_ID)
    assert result.exit_code == 1
    assert "Conflict (409): the connection is REJECTED" in result.stderr


# failures every command shares


def test_no_token_is_an_auth_error_and_nothing_is_sent(api: FakeApi) -> None:
    result = api.run("connections", "list", "demo", token=None)
    assert result.exit_code == 4
    assert "ACCTCONN_TOKEN" in result.stderr
    assert api.requests == []


def test_a_rejected_token_is_an_auth_error(api: FakeApi) -> None:
    api.on("GET", LIST, problem(401, "Unauthorized", "the token has expired"))
    result = api.run("connections", "list", "demo")
    assert result.exit_code == 4
    assert result.stderr.startswith("Error: Unauthorized (401): the token has expired")


def test_a_server_failure_is_an_api_error(api: FakeApi) -> None:
    api.on("GET", LIST, problem(503, "Service Unavailable", "try again"))
    assert api.run("connections", "list", "demo").exit_code == 3
    api.on("GET", LIST, httpx.Response(200, json=["not", "a", "page"]))
    result = api.run("connections", "list", "demo")
    assert result.exit_code == 3
    assert "not a page" in result.stderr


def test_an_unreachable_api_is_an_api_error(api: FakeApi) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api.on("GET", LIST, refuse)
    result = api.run("connections", "list", "demo")
    assert result.exit_code == 3
    assert result.stderr == "Error: cannot reach the API at http://api.test: connection refused\n"
