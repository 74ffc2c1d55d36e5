"""Auditors' routes (functions/query_audit) against moto: every filter, date ranges, pagination,
JSON and CSV, and never a Scan."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from account_connections.adapters.dynamodb import connections as connections_module
from account_connections.adapters.dynamodb.connections import DynamoConnections
from account_connections.domain.audit import AuditEvent
from account_connections.domain.chain import event_hash
from account_connections.domain.connection import Connection, StatusChange
from account_connections.domain.policy import PLAIN
from account_connections.domain.registry import Approver, Member, Space, SpaceRole
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import LinkToken, TokenKind, new_token
from tests.support import Reply, http_event, invoke, stores

FUNCTION = "query_audit"
CSV_HEADERS: dict[str, str | None] = {"accept": "text/csv"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def store(repo: DynamoConnections, space: str, account: str, created: str, by: str, name: str = "Production",
          description: str | None = None) -> Connection:  # fmt: skip
    connection = Connection(
        connectionId=str(uuid.uuid4()), spaceId=space, accountId=account, displayName=name,
        description=description, status=ConnectionStatus.PENDING_APPROVAL, requestedBy=by,
        createdAt=created, updatedAt=created, expiresAt="2027-01-01T00:00:00.000Z",
    )  # fmt: skip
    _, token_hash = new_token()
    token = LinkToken(
        tokenHash=token_hash, connectionId=connection.connectionId, kind=TokenKind.CONNECTION_TOKEN,
        createdAt=created, expiresAt=connection.expiresAt, ttl=0,
    )  # fmt: skip
    return repo.create(connection, token, policy=PLAIN)


def change(monkeypatch: pytest.MonkeyPatch, repo: DynamoConnections, connection: Connection,
           target: ConnectionStatus, actor: str, when: str) -> None:  # fmt: skip
    monkeypatch.setattr(connections_module, "utcnow", lambda: at(when))
    repo.transition(connection, StatusChange(target, actor, detail=f"{target} by {actor}"))
    monkeypatch.undo()


@pytest.fixture
def history(aws: dict[str, Any]) -> dict[str, str]:
    """Five connections over two months in two spaces and three accounts, two of them decided,
    with fixed timestamps for every event. Returns the connection ids by name."""
    state = stores(aws["table"], aws["ddb"])
    repo = state.connections
    # A create checks the requester's role and the account's registration.
    stamp = {"updatedAt": "2026-10-01T00:00:00.000Z", "updatedBy": "oscar"}
    for space, users in (("demo", ("alice", "bob")), ("other", ("dave",))):
        state.registry.put_space(Space(spaceId=space, name=space, **stamp))
        for user in users:
            state.registry.put_member(Member(spaceId=space, userId=user, role=SpaceRole.SPACE_ADMIN, **stamp))
    for account in ("111122223333", "444455556666", "555566667777"):
        state.registry.put_approver(Approver(accountId=account, email="admin@example.com", **stamp))
    patch = pytest.MonkeyPatch()
    c1 = store(repo, "demo", "111122223333", "2026-10-05T10:00:00.000Z", "alice")
    change(patch, repo, c1, ConnectionStatus.CANCELLED, "alice", "2026-10-06T08:00:00.000Z")
    c2 = store(repo, "demo", "111122223333", "2026-11-02T09:00:00.000Z", "bob")
    c3 = store(repo, "other", "111122223333", "2026-11-15T23:59:59.500Z", "dave")
    change(patch, repo, c3, ConnectionStatus.REJECTED, "admin@example.com", "2026-11-16T10:00:00.000Z")
    c4 = store(repo, "demo", "444455556666", "2026-11-20T00:00:00.000Z", "alice")
    formula, command = '=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0"
    c5 = store(repo, "other", "555566667777", "2026-11-30T12:00:00.000Z", "dave", formula, command)
    return {name: connection.connectionId for name, connection in zip(
        ("c1", "c2", "c3", "c4", "c5"), (c1, c2, c3, c4, c5), strict=True)}  # fmt: skip


@pytest.fixture(autouse=True)
def _never_scans(ddb_operations: list[str]) -> Iterator[None]:
    yield
    assert "Scan" not in ddb_operations


def connections(query: dict[str, str], headers: dict[str, str | None] | None = None) -> Reply:
    return invoke(FUNCTION, http_event("http_audit_connections", query=query, headers=headers))


def events(query: dict[str, str], headers: dict[str, str | None] | None = None) -> Reply:
    return invoke(FUNCTION, http_event("http_audit_events", query=query, headers=headers))


def names(reply: Reply, ids: dict[str, str], key: str = "connectionId") -> list[str]:
    assert reply.status == 200, reply.text
    by_id = {value: name for name, value in ids.items()}
    return [by_id[item[key]] for item in reply.json["items"]]


def event_names(reply: Reply, ids: dict[str, str]) -> list[str]:
    assert reply.status == 200, reply.text
    by_id = {value: name for name, value in ids.items()}
    return [f"{by_id[item['connectionId']]}:{item['toStatus']}" for item in reply.json["items"]]


# ---- connections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["c5", "c4", "c3", "c2", "c1"]),
        ({"status": "PENDING_APPROVAL"}, ["c5", "c4", "c2"]),
        ({"status": "REJECTED"}, ["c3"]),
        ({"spaceId": "demo"}, ["c4", "c2", "c1"]),
        ({"spaceId": "demo", "status": "PENDING_APPROVAL"}, ["c4", "c2"]),
        ({"accountId": "111122223333"}, ["c3", "c2", "c1"]),
        ({"accountId": "111122223333", "spaceId": "other"}, ["c3"]),
        ({"accountId": "111122223333", "status": "CANCELLED"}, ["c1"]),
        ({"accountId": "111122223333", "spaceId": "demo", "status": "PENDING_APPROVAL"}, ["c2"]),
        ({"spaceId": "nowhere"}, []),
        # Date ranges: a date as `to` covers its whole day; bounds are inclusive.
        ({"from": "2026-11-01", "to": "2026-11-15"}, ["c3", "c2"]),
        ({"from": "2026-11-15T23:59:59.500Z", "to": "2026-11-20T00:00:00Z"}, ["c4", "c3"]),
        ({"from": "2026-11-20T01:00:00+02:00"}, ["c5", "c4"]),  # 2026-11-19T23:00Z
        ({"to": "2026-10-31"}, ["c1"]),
        ({"from": "2026-11-02T09:00:00"}, ["c5", "c4", "c3", "c2"]),  # no offset: UTC
        ({"spaceId": "demo", "from": "2026-11-01", "to": "2026-11-30"}, ["c4", "c2"]),
        ({"status": "PENDING_APPROVAL", "to": "2026-11-20"}, ["c4", "c2"]),
        ({"accountId": "111122223333", "from": "2026-11-03"}, ["c3"]),
        ({"from": "2026-12-01"}, []),
    ],
)
def test_connections_by_every_filter(
    history: dict[str, str], query: dict[str, str], expected: list[str]
) -> None:
    assert names(connections(query), history) == expected


def test_each_page_is_one_query(history: dict[str, str], ddb_operations: list[str]) -> None:
    for query in ({}, {"status": "REJECTED"}, {"spaceId": "demo"}, {"accountId": "111122223333"},
                  {"from": "2026-11-01"}):  # fmt: skip
        ddb_operations.clear()
        assert connections(query).status == 200
        assert ddb_operations == ["Query"]
    for query in ({}, {"connectionId": history["c1"]}, {"actor": "alice"}):
        ddb_operations.clear()
        assert events(query).status == 200
        assert ddb_operations == ["Query"]


def follow(fetch: Any, query: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    token: str | None = None
    while True:
        reply = fetch({**query, **({"nextToken": token} if token else {})})
        assert reply.status == 200, reply.text
        pages += 1
        items.extend(reply.json["items"])
        token = reply.json["nextToken"]
        if not token:
            return items, pages


def test_pages_follow_next_token_to_the_end(history: dict[str, str]) -> None:
    items, pages = follow(connections, {"limit": "2"})
    assert [item["connectionId"] for item in items] == [
        history[name] for name in ("c5", "c4", "c3", "c2", "c1")
    ]
    assert pages == 3


def test_a_filtered_page_may_be_short_but_following_the_token_finds_everything(
    history: dict[str, str],
) -> None:
    items, pages = follow(connections, {"spaceId": "demo", "status": "PENDING_APPROVAL", "limit": "1"})
    assert [item["connectionId"] for item in items] == [history["c4"], history["c2"]]
    assert pages >= 3


def test_a_next_token_of_another_query_is_refused(history: dict[str, str]) -> None:
    token = connections({"status": "PENDING_APPROVAL", "limit": "1"}).json["nextToken"]
    for reply in (
        connections({"spaceId": "demo", "nextToken": token}),
        connections({"status": "REJECTED", "nextToken": token}),
        events({"nextToken": token}),
        connections({"nextToken": token + "x"}),
    ):
        assert reply.status == 400
        assert reply.json["errors"][0]["field"] == "nextToken"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-11-30", "to": "2026-11-01"}, "from"),
        ({"from": "2026-11-02T10:00:00Z", "to": "2026-11-02T09:00:00Z"}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"to": "2026-11-01T25:00:00Z"}, "to"),
        ({"from": "../../etc"}, "from"),
        ({"from": "２０２６-１１-０１"}, "from"),
        ({"from": "2026-11-01" + "0" * 100}, "from"),
        ({"status": "PENDING"}, "status"),
        ({"accountId": "1111222233"}, "accountId"),
        ({"accountId": "١١١١٢٢٢٢٣٣٣٣"}, "accountId"),
        ({"spaceId": "Demo Space"}, "spaceId"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "9" * 400}, "limit"),
        ({"nextToken": "x" * 3000}, "nextToken"),
    ],
)
def test_invalid_queries_are_a_400_naming_the_parameter(history: dict[str, str], query: dict[str, str],
                                                        field: str) -> None:  # fmt: skip
    reply = connections(query)
    assert reply.status == 400, reply.text
    assert field in {error["field"] for error in reply.json["errors"]}


def test_the_event_in_events_is_served(history: dict[str, str]) -> None:
    reply = invoke(FUNCTION, http_event("http_audit_connections"))  # PENDING_APPROVAL, November 2026
    assert names(reply, history) == ["c5", "c4", "c2"]


# ---- events --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["c5:PENDING_APPROVAL", "c4:PENDING_APPROVAL", "c3:REJECTED", "c3:PENDING_APPROVAL",
              "c2:PENDING_APPROVAL", "c1:CANCELLED", "c1:PENDING_APPROVAL"]),
        ({"actor": "alice"}, ["c4:PENDING_APPROVAL", "c1:CANCELLED", "c1:PENDING_APPROVAL"]),
        ({"actor": "admin@example.com"}, ["c3:REJECTED"]),
        ({"actor": "alice", "from": "2026-10-06"}, ["c4:PENDING_APPROVAL", "c1:CANCELLED"]),
        ({"from": "2026-11-16", "to": "2026-11-20"}, ["c4:PENDING_APPROVAL", "c3:REJECTED"]),
        ({"to": "2026-10-05"}, ["c1:PENDING_APPROVAL"]),
        ({"actor": "nobody"}, []),
    ],
)  # fmt: skip
def test_events_by_actor_and_date(
    history: dict[str, str], query: dict[str, str], expected: list[str]
) -> None:
    assert event_names(events(query), history) == expected


def test_events_of_one_connection(history: dict[str, str]) -> None:
    c3 = history["c3"]
    assert event_names(events({"connectionId": c3}), history) == ["c3:REJECTED", "c3:PENDING_APPROVAL"]
    assert event_names(events({"connectionId": c3, "to": "2026-11-15"}), history) == ["c3:PENDING_APPROVAL"]
    assert event_names(events({"connectionId": c3, "from": "2026-11-16T00:00:00Z"}), history) == [
        "c3:REJECTED"
    ]
    assert event_names(events({"connectionId": c3, "actor": "dave"}), history) == ["c3:PENDING_APPROVAL"]
    assert event_names(events({"connectionId": str(uuid.uuid4())}), history) == []


def test_event_pages_follow_next_token(history: dict[str, str]) -> None:
    items, pages = follow(events, {"limit": "3"})
    assert len(items) == 7 and pages == 3
    assert [item["at"] for item in items] == sorted((item["at"] for item in items), reverse=True)
    by_connection, _ = follow(events, {"connectionId": history["c1"], "limit": "1"})
    assert [item["toStatus"] for item in by_connection] == ["CANCELLED", "PENDING_APPROVAL"]


def test_invalid_event_queries(history: dict[str, str]) -> None:
    for query, field in (({"connectionId": "../CONNECTION"}, "connectionId"), ({"actor": "a b"}, "actor"),
                         ({"from": "2026-11-02", "to": "2026-11-01"}, "from")):  # fmt: skip
        reply = events(query)
        assert reply.status == 400
        assert reply.json["errors"][0]["field"] == field


# ---- CSV -----------------------------------------------------------------------------------------


def rows(reply: Reply) -> list[list[str]]:
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(reply.text, newline="")))


def test_connections_as_csv_with_a_header_and_formula_safe_cells(history: dict[str, str]) -> None:
    table = rows(connections({}, CSV_HEADERS))
    header, *lines = table
    assert header == list(Connection.model_fields)
    assert [line[header.index("connectionId")] for line in lines] == [
        history[name] for name in ("c5", "c4", "c3", "c2", "c1")
    ]
    c5 = dict(zip(header, lines[0], strict=True))
    assert c5["displayName"] == '\'=HYPERLINK("http://evil.example","click")'
    assert c5["description"] == "'+cmd|' /C calc'!A0"
    assert c5["status"] == "PENDING_APPROVAL" and c5["decidedBy"] == ""
    assert "'" not in lines[1][header.index("displayName")]


def test_csv_pages_carry_the_next_token_in_a_header(history: dict[str, str]) -> None:
    first = connections({"limit": "3"}, CSV_HEADERS)
    assert len(rows(first)) == 4
    token = first.headers["X-Next-Token"]
    second = connections({"limit": "3", "nextToken": token}, CSV_HEADERS)
    assert len(rows(second)) == 3
    assert "X-Next-Token" not in second.headers


def test_events_as_csv(history: dict[str, str]) -> None:
    header, *lines = rows(events({"actor": "admin@example.com"}, CSV_HEADERS))
    assert header == list(AuditEvent.model_fields)
    [line] = lines
    record = dict(zip(header, line, strict=True))
    assert (record["connectionId"], record["fromStatus"], record["toStatus"], record["actor"]) == (
        history["c3"], "PENDING_APPROVAL", "REJECTED", "admin@example.com",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("accept", "is_csv"),
    [
        ("text/csv", True),
        ("text/csv; charset=utf-8", True),
        ("application/json, text/csv;q=0.5", False),
        ("text/csv, application/json;q=0.9", True),
        ("text/csv;q=0", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_csv_only_when_the_caller_prefers_it(
    history: dict[str, str], accept: str | None, is_csv: bool
) -> None:
    reply = connections({}, {"accept": accept})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/csv" if is_csv else "application/json")


# ---- the export ----------------------------------------------------------------------------------


def export(query: dict[str, str], headers: dict[str, str | None] | None = None) -> Reply:
    return invoke(FUNCTION, http_event("http_audit_export", query=query, headers=headers))


def test_the_export_is_every_event_as_json_lines_oldest_first_each_chain_in_order(
    history: dict[str, str], ddb_operations: list[str]
) -> None:
    ddb_operations.clear()
    reply = export({})
    assert reply.status == 200 and ddb_operations == ["Query"]
    assert reply.headers["Content-Type"].startswith("application/x-ndjson")
    assert reply.text.endswith("\n")
    events = [json.loads(line) for line in reply.text.splitlines()]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    by_chain: dict[str, list[int]] = {}
    for event in events:
        by_chain.setdefault(event["chain"], []).append(event["seq"])
        assert event["hash"] == event_hash(event)
        assert "fromStatus" not in event or event["fromStatus"] is not None  # no nulls written
    assert set(by_chain) == {f"CONNECTION#{cid}" for cid in history.values()}
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_chain.values())
    # c1 and c3 each have their request and their decision
    assert len(by_chain[f"CONNECTION#{history['c1']}"]) == 2


def test_the_export_pages_through_the_next_token_header_and_takes_a_range(history: dict[str, str]) -> None:
    everything = [json.loads(line) for line in export({}).text.splitlines()]
    lines: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        reply = export({"limit": "2", **({"nextToken": token} if token else {})})
        assert reply.status == 200, reply.text
        lines += [json.loads(line) for line in reply.text.splitlines()]
        token = reply.headers.get("X-Next-Token")
        if not token:
            break
    assert lines == everything
    november = [
        json.loads(line) for line in export({"from": "2026-11-01", "to": "2026-11-30"}).text.splitlines()
    ]
    assert november and all("2026-11-01" <= e["at"] < "2026-12-01" for e in november)


def test_only_auditors_export(history: dict[str, str]) -> None:
    reply = invoke(FUNCTION, http_event("http_audit_export", query={}, sub="alice", groups=[]))
    assert reply.status == 403 and reply.headers["Content-Type"].startswith("application/problem+json")
