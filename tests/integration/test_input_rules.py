"""SPEC.md's input rules through the real handlers: every refused input names its field, no input
however odd produces a 5xx, and a refused request changes no state (table dumps compared)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from account_connections.api.app import MAX_BODY_BYTES
from tests.integration.conftest import APPROVED_ACCOUNT, dump_table
from tests.support import Reply, http_event, invoke

VALID = {"accountId": APPROVED_ACCOUNT, "displayName": "Production"}


def role(name: str) -> str:
    return f"arn:aws:iam::{APPROVED_ACCOUNT}:role/{name}"


def create(body: Any, headers: dict[str, str | None] | None = None, **overrides: Any) -> Reply:
    event = http_event(
        "http_create_connection", body=body, headers={"idempotency-key": None, **(headers or {})}
    )
    event.update(overrides)
    return invoke("manage_connections", event)


def refused(seeded: dict[str, Any], call: Any) -> Reply:
    """Run ``call`` and check that it was refused with a 4xx problem and changed nothing."""
    before = dump_table(seeded["ddb"])
    reply = call()
    assert 400 <= reply.status < 500, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.json["status"] == reply.status
    assert reply.headers["X-Request-Id"] == "JKJaXmPLvHcESHA="
    assert dump_table(seeded["ddb"]) == before
    return reply


def fields(reply: Reply) -> set[str]:
    return {error["field"] for error in reply.json.get("errors", [])}


# ---- the body of a connection request ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "accountId": "11112222333"}, "accountId"),
        ({**VALID, "accountId": "1111222233334"}, "accountId"),
        ({**VALID, "accountId": "١١١١٢٢٢٢٣٣٣٣"}, "accountId"),  # Arabic-Indic digits
        ({**VALID, "accountId": "１１１１２２２２３３３３"}, "accountId"),  # fullwidth digits
        ({**VALID, "accountId": "11112222333３"}, "accountId"),
        ({**VALID, "accountId": 111122223333}, "accountId"),
        ({**VALID, "accountId": 1e400}, "accountId"),
        ({**VALID, "accountId": None}, "accountId"),
        ({"displayName": "Production"}, "accountId"),
        ({**VALID, "displayName": ""}, "displayName"),
        ({**VALID, "displayName": "x" * 101}, "displayName"),
        ({**VALID, "displayName": "line\nbreak"}, "displayName"),
        ({**VALID, "displayName": "nul\u0000"}, "displayName"),
        ({**VALID, "displayName": "rtl\u202eoverride"}, "displayName"),
        ({**VALID, "displayName": 42}, "displayName"),
        ({**VALID, "displayName": ["Production"]}, "displayName"),
        ({**VALID, "description": "d" * 1001}, "description"),
        ({**VALID, "description": {"text": "nested"}}, "description"),
        ({**VALID, "roleArns": [role(f"R{i}") for i in range(11)]}, "roleArns"),
        ({**VALID, "roleArns": role("Single")}, "roleArns"),
        ({**VALID, "roleArns": ["not-an-arn"]}, "roleArns[0]"),
        ({**VALID, "roleArns": [role("A"), role("A")]}, "roleArns[1]"),
        ({**VALID, "unexpected": True}, "unexpected"),
        ({**VALID, "status": "VERIFIED"}, "status"),
        ({**VALID, "requestedBy": "someone-else"}, "requestedBy"),
    ],
)
def test_each_input_rule_is_a_400_naming_the_field(seeded: dict[str, Any], body: Any, field: str) -> None:
    reply = refused(seeded, lambda: create(json.dumps(body)))
    assert reply.status == 400
    assert field in fields(reply)


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "{'accountId': '111122223333'}",
        "null",
        "[]",
        '"a string"',
        "12",
        '{"accountId": "111122223333", "displayName": "x",}',
        '{"accountId": ' + "9" * 5000 + ', "displayName": "x"}',  # beyond Python's int parsing limit
        '{"accountId": "111122223333", "displayName": "\\ud800"}',  # a lone surrogate
        '{"accountId": "111122223333", "accountId": 5, "displayName": "x"}',
        "\ufeff" + json.dumps(VALID),
    ],
)
def test_bad_json_is_a_400_naming_the_body_or_field(seeded: dict[str, Any], raw: str) -> None:
    reply = refused(seeded, lambda: create(raw))
    assert reply.status == 400
    assert fields(reply)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/xml", "multipart/form-data; boundary=x"]
)
def test_a_body_that_is_not_declared_json_is_a_400_naming_the_content_type(
    seeded: dict[str, Any], content_type: str | None
) -> None:
    reply = refused(seeded, lambda: create(json.dumps(VALID), headers={"content-type": content_type}))
    assert reply.status == 400
    assert fields(reply) == {"Content-Type"}


def test_a_body_over_64_kib_is_413(seeded: dict[str, Any]) -> None:
    body = json.dumps({**VALID, "description": "d" * MAX_BODY_BYTES})
    reply = refused(seeded, lambda: create(body))
    assert reply.status == 413


def test_multibyte_characters_count_as_bytes_towards_64_kib(seeded: dict[str, Any]) -> None:
    body = json.dumps({**VALID, "description": "é" * (MAX_BODY_BYTES // 2)}, ensure_ascii=False)
    assert len(body) < MAX_BODY_BYTES < len(body.encode())
    assert refused(seeded, lambda: create(body)).status == 413


def test_the_limits_themselves_are_accepted(seeded: dict[str, Any]) -> None:
    body = {
        **VALID,
        "displayName": "é" * 100,
        "description": "<script>alert('x')</script> " + "d" * 972,
        "roleArns": [role(f"Role{i}") for i in range(10)],
    }
    reply = create(json.dumps(body, ensure_ascii=False))
    assert reply.status == 201, reply.text
    assert reply.json["displayName"] == "é" * 100
    assert reply.json["description"] == body["description"]


# ---- paths, query strings and headers ---------------------------------------------------------

ODD_PATHS = [
    "/spaces/../spaces/demo/connections",
    "/spaces/%2e%2e/connections",
    "/spaces/demo%2F..%2Fother/connections",
    "/spaces/demo/../other/connections",
    "/spaces/DEMO/connections",
    "/spaces/démo/connections",
    "/spaces/" + "a" * 500 + "/connections",
    "/spaces/demo/connections/..%2f..%2fapprovers",
    "/spaces/demo/connections/%00",
    "/spaces/demo/connections/<script>",
    "/spaces//connections",
    "/spaces/demo/connections/00000000-0000-0000-0000-000000000000/../../..",
]


@pytest.mark.parametrize("path", ODD_PATHS)
def test_path_tricks_never_reach_another_resource(seeded: dict[str, Any], path: str) -> None:
    for event in ("http_create_connection", "http_list_connections", "http_cancel_connection"):
        reply = refused(
            seeded, lambda event=event: invoke("manage_connections", http_event(event, raw_path=path))
        )
        assert reply.status in (400, 403, 404), (event, reply.text)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "101"},
        {"limit": "1e3"},
        {"limit": "9" * 5000},
        {"limit": "٣"},
        {"status": "pending_approval"},
        {"status": "<b>"},
        {"nextToken": "garbage"},
        {"nextToken": "eyJhIjoxfQ"},
        {"nextToken": "x" * 5000},
    ],
)
def test_odd_query_strings_are_a_400_naming_the_parameter(
    seeded: dict[str, Any], query: dict[str, str]
) -> None:
    reply = refused(
        seeded, lambda: invoke("manage_connections", http_event("http_list_connections", query=query))
    )
    assert reply.status == 400
    assert fields(reply) == set(query)


@pytest.mark.parametrize("key", ["", "ключ", "with space", "x" * 256, "tab\tkey"])
def test_odd_idempotency_keys_are_a_400(seeded: dict[str, Any], key: str) -> None:
    reply = refused(seeded, lambda: create(json.dumps(VALID), headers={"idempotency-key": key}))
    assert reply.status == 400
    assert fields(reply) == {"Idempotency-Key"}


# ---- the operators' inputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "overrides", "field"),
    [
        ("http_put_space", {"body": {"name": ""}}, "name"),
        ("http_put_space", {"body": {"name": "x" * 101}}, "name"),
        ("http_put_space", {"body": {"name": "bell\x07"}}, "name"),
        ("http_put_space", {"body": {"name": "ok", "owner": "me"}}, "owner"),
        ("http_put_space", {"path": {"spaceId": "Not-Lower"}}, "spaceId"),
        ("http_put_member", {"body": {"role": "ADMIN"}}, "role"),
        ("http_put_member", {"body": {"role": ["SPACE_ADMIN"]}}, "role"),
        ("http_put_member", {"path": {"userId": "a/b"}}, "userId"),
        ("http_put_approver", {"body": {"email": "not-an-email"}}, "email"),
        ("http_put_approver", {"body": {"email": "<script>@x.io"}}, "email"),
        ("http_put_approver", {"body": {"email": "a@b.co", "cc": "c@d.co"}}, "cc"),
        ("http_put_approver", {"path": {"accountId": "12345"}}, "accountId"),
        ("http_put_approver", {"path": {"accountId": "１１１１２２２２３３３３"}}, "accountId"),
        ("http_delete_approver", {"path": {"accountId": "abc"}}, "accountId"),
        ("http_list_approvers", {"query": {"limit": "1000"}}, "limit"),
    ],
)
def test_operator_inputs_are_checked_too(seeded: dict[str, Any], event: str, overrides: dict[str, Any],
                                         field: str) -> None:  # fmt: skip
    before = seeded["sns"].list_subscriptions()["Subscriptions"]
    reply = refused(seeded, lambda: invoke("administer_spaces", http_event(event, **overrides)))
    assert reply.status == 400
    assert field in fields(reply)
    assert seeded["sns"].list_subscriptions()["Subscriptions"] == before
