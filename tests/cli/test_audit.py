"""acctconn audit connections|events against a fake API: the filters as the query, tables,
--json, and the API's CSV written as sent, its pages followed with --all."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli.conftest import CONNECTION_ID
from tests.cli.fake_api import FakeApi, problem
from tests.cli.test_connections import connection, event

CSV_HEADERS = {"content-type": "text/csv; charset=utf-8"}
CONNECTIONS_CSV = "connectionId,spaceId,status\r\n"


def test_connections_sends_each_filter_and_shows_a_table(api: FakeApi) -> None:
    api.on("GET", "/audit/connections", httpx.Response(200, json={"items": [connection(status="VERIFIED")]}))
    result = api.run(
        "audit", "connections", "--status", "VERIFIED", "--space", "demo", "--account", "111122223333",
        "--from", "2026-01-01", "--to", "2026-01-31T23:00:00Z", "--limit", "50",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.last.headers["Accept"].startswith("application/json")
    assert dict(api.last.url.params) == {
        "status": "VERIFIED",
        "spaceId": "demo",
        "accountId": "111122223333",
        "from": "2026-01-01",
        "to": "2026-01-31T23:00:00Z",
        "limit": "50",
    }
    for text in ("Space", "demo", CONNECTION_ID, "VERIFIED", "1 connections"):
        assert text in result.stdout, text


def test_events_sends_each_filter_and_shows_the_changes(api: FakeApi) -> None:
    changed = event("000002", "STATUS_CHANGED", fromStatus="PENDING_APPROVAL", toStatus="CANCELLED")
    api.on("GET", "/audit/events", httpx.Response(200, json={"items": [changed]}))
    result = api.run(
        "audit",
        "events",
        "--connection",
        CONNECTION_ID,
        "--actor",
        "alice",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
    )
    assert result.exit_code == 0, result.stderr
    assert dict(api.last.url.params) == {
        "connectionId": CONNECTION_ID,
        "actor": "alice",
        "from": "2026-01-01",
        "to": "2026-01-02",
        "limit": "100",
    }
    assert "STATUS_CHANGED" in result.stdout and "PENDING_APPROVAL -> CANCELLED" in result.stdout


def test_json_is_the_page_or_with_all_one_array(api: FakeApi) -> None:
    first, second = event("e1", "REQUESTED"), event("e2", "LINK_SENT")

    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("nextToken") == "n1":
            return httpx.Response(200, json={"items": [second]})
        return httpx.Response(200, json={"items": [first], "nextToken": "n1"})

    api.on("GET", "/audit/events", pages)
    page = api.run("--json", "audit", "events")
    assert json.loads(page.stdout) == {"items": [first], "nextToken": "n1"}
    every = api.run("--json", "audit", "events", "--all")
    assert json.loads(every.stdout) == [first, second]


def test_csv_asks_for_csv_and_writes_it_as_sent(api: FakeApi) -> None:
    body = CONNECTIONS_CSV + f'{CONNECTION_ID},demo,VERIFIED\r\n"=cmd",demo,"a, b"\r\n'
    api.on("GET", "/audit/connections", httpx.Response(200, text=body, headers=CSV_HEADERS))
    result = api.run("audit", "connections", "--csv", "--space", "demo")
    assert result.exit_code == 0, result.stderr
    assert api.last.headers["Accept"].split(",")[0] == "text/csv"
    assert api.last.url.params["spaceId"] == "demo"
    assert result.stdout_bytes == body.encode()
    assert result.stderr == ""


def test_csv_with_more_says_how_to_get_the_next_page(api: FakeApi) -> None:
    headers = {**CSV_HEADERS, "X-Next-Token": "n1"}
    api.on("GET", "/audit/events", httpx.Response(200, text="eventId\r\ne1\r\n", headers=headers))
    result = api.run("audit", "events", "--csv")
    assert result.stdout_bytes == b"eventId\r\ne1\r\n"
    assert "--next-token n1" in result.stderr


def test_csv_with_all_follows_the_header_token_and_writes_one_header(api: FakeApi) -> None:
    pages = {
        None: ("eventId,type\r\ne1,REQUESTED\r\n", "n1"),
        "n1": ("eventId,type\r\n", "n2"),  # a filtered page may hold nothing
        "n2": ("eventId,type\r\ne2,LINK_SENT\r\n", None),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        text, next_token = pages[request.url.params.get("nextToken")]
        headers = {**CSV_HEADERS, **({"X-Next-Token": next_token} if next_token else {})}
        return httpx.Response(200, text=text, headers=headers)

    api.on("GET", "/audit/events", answer)
    result = api.run("audit", "events", "--csv", "--all", "--actor", "alice")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b"eventId,type\r\ne1,REQUESTED\r\ne2,LINK_SENT\r\n"
    assert [request.url.params.get("nextToken") for request in api.requests] == [None, "n1", "n2"]
    assert all(request.url.params["actor"] == "alice" for request in api.requests)
    assert result.stderr == ""


def test_an_answer_that_is_not_csv_is_an_api_error(api: FakeApi) -> None:
    api.on("GET", "/audit/events", httpx.Response(200, json={"items": []}))
    result = api.run("audit", "events", "--csv")
    assert result.exit_code == 3
    assert "is not CSV" in result.stderr


@pytest.mark.parametrize("args", [("--csv",), ()])
def test_a_non_auditor_is_forbidden(api: FakeApi, args: tuple[str, ...]) -> None:
    api.on("GET", "/audit/connections", problem(403, "Forbidden", "needs the auditors group"))
    result = api.run("audit", "connections", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Forbidden (403): needs the auditors group")


def test_a_bad_date_is_the_service_s_to_name(api: FakeApi) -> None:
    errors = [{"field": "from", "message": "must be an ISO 8601 date or date-time"}]
    api.on("GET", "/audit/events", problem(400, "Invalid request", "the query is not valid", errors))
    result = api.run("audit", "events", "--from", "yesterday")
    assert result.exit_code == 1
    assert "from: must be an ISO 8601 date or date-time" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("connections", "--account", "12"),
        ("connections", "--status", "DONE"),
        ("connections", "--limit", "1001"),
        ("events", "--connection", "nope"),
    ],
)
def test_bad_filters_are_usage_errors(api: FakeApi, args: tuple[str, ...]) -> None:
    result = api.run("audit", *args)
    assert result.exit_code == 2
    assert api.requests == []
