"""SPEC.md's input rules through the real handlers: every refused input names its field, no input
however odd produces a 5xx, and a refused request changes no state (table dumps compared)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from account_connections.api.app import MAX_BODY_BYTES
from local.seed_data import SPACE_ID as SPACE
from tests.integration.conftest import APPROVED_ACCOUNT, dump_table
from tests.support import Reply, http_event, invoke, load_event

VALID: dict[str, Any] = {"accountId": APPROVED_ACCOUNT, "displayName": "Production"}


def role(name: str) -> str:
    return f"arn:aws:iam::{APPROVED_ACCOUNT}:role/{name}"


def create(body: Any, headers: dict[str, str | None] | None = None, **overrides: Any) -> Reply:
    event = http_event(
        "http_create_connection", body=body, headers={"idempotency-key": None, **(headers or {})}
    )
    event.update(overrides)
    return invoke("manage_connections", event)


def refused(
    seeded: dict[str, Any], call: Any, *, request_id: str = "JKJaXmPLvHcESHA=", page: bool | None = False
) -> Reply:
    """Run ``call`` and check that it was refused with a 4xx problem (an HTML page if ``page``,
    either if None) and changed nothing."""
    before = dump_table(seeded["ddb"])
    reply = call()
    assert 400 <= reply.status < 500, reply.text
    if page:
        assert reply.headers["Content-Type"].startswith("text/html")
    elif page is False or reply.headers["Content-Type"] == "application/problem+json":
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert reply.json["status"] == reply.status
    assert reply.headers["X-Request-Id"] == request_id
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


# ---- deep nesting: cheap to refuse, never a RecursionError ------------------------------------

DEEP = "[" * 60_000
NESTED_33 = '{"accountId": ' + "[" * 32 + "1" + "]" * 32 + ', "displayName": "x"}'


@pytest.mark.parametrize("raw", [DEEP, "{" * 60_000, '{"a":' * 40 + "1" + "}" * 40, NESTED_33],
                         ids=["60000-arrays", "60000-braces", "40-objects", "33-levels"])  # fmt: skip
def test_json_nested_deeper_than_32_levels_is_a_400_naming_the_body(seeded: dict[str, Any], raw: str) -> None:
    reply = refused(seeded, lambda: create(raw))
    assert reply.status == 400
    assert reply.json["errors"] == [
        {"field": "body", "message": "must not nest arrays and objects deeper than 32 levels"}
    ]


def test_brackets_inside_strings_are_not_nesting(seeded: dict[str, Any]) -> None:
    description = '\\"' + "[" * 400 + "{" * 400 + '"]'
    reply = create(json.dumps({**VALID, "description": description}))
    assert reply.status == 201, reply.text
    assert reply.json["description"] == description


def verify(body: str, content_type: str = "application/json", **overrides: Any) -> Reply:
    """``POST /verify`` with ``body`` as ``content_type``."""
    event = load_event("http_verify_decide_json", body=body, **overrides)
    event["headers"]["content-type"] = content_type
    return invoke("decide_connection", event)


VERIFY_REQUEST_ID = "Kd8e3hZ3vHcEJbQ="


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [("application/json", False), ("application/json", True), ("application/vnd.api+json", False)],
    ids=["json", "base64-json", "plus-json"],
)
def test_a_deep_json_decision_is_a_400_naming_the_body(
    seeded: dict[str, Any], content_type: str, encoded: bool
) -> None:
    body = base64.b64encode(DEEP.encode()).decode() if encoded else DEEP
    reply = refused(seeded, lambda: verify(body, content_type, isBase64Encoded=encoded),
                    request_id=VERIFY_REQUEST_ID)  # fmt: skip
    assert reply.status == 400
    assert fields(reply) == {"body"}


def _form(body: str) -> Reply:
    return invoke("decide_connection", load_event("http_verify_decide_form", body=body))


def test_a_deep_account_proof_in_the_form_is_a_400_naming_it(seeded: dict[str, Any]) -> None:
    body = urlencode({"token": "t", "decision": "approve", "csrf": "c", "accountProof": DEEP[:20_000]})
    reply = refused(seeded, lambda: _form(body), request_id=VERIFY_REQUEST_ID, page=None)
    assert reply.status == 400 and "accountProof" in reply.text


def test_a_form_with_more_fields_than_the_form_has_is_a_400(seeded: dict[str, Any]) -> None:
    reply = refused(seeded, lambda: _form("a&b&c&d&e&f&g&h&i"), request_id=VERIFY_REQUEST_ID, page=None)
    assert reply.status == 400 and "too many fields" in reply.text


def _live_link(seeded: dict[str, Any]) -> str:
    """A pending request whose workflow waits (task token stored), and its emailed link's token."""
    from account_connections.domain.access import Principal
    from account_connections.domain.connection import CreateConnectionRequest
    from account_connections.logic.connections import create_connection
    from account_connections.logic.links import first_links
    from tests.fakes import FakeMailer, FakeWorkflow

    state = seeded["stores"]
    created = create_connection(
        state.connections, FakeWorkflow(), Principal("alice", frozenset()), SPACE,
        CreateConnectionRequest(**VALID), approval_timeout_seconds=3600,
        verify_base_url="https://connections.example.com", correlation_id="corr",
    )  # fmt: skip
    connection, secrets = state.connections.read(created.connectionId)
    mailer = FakeMailer()
    approver = state.registry.get_approver(APPROVED_ACCOUNT)
    assert approver is not None
    first_links(state.connections, mailer, connection, secrets, approver,
                verify_base_url="https://connections.example.com", task_token="task-1")  # fmt: skip
    return mailer.emails[-1].token


@pytest.mark.parametrize("csrf", ["éé", "\u202e" + "0" * 63, "😀" * 32])
def test_a_non_ascii_csrf_token_is_a_stale_form_not_a_500(seeded: dict[str, Any], csrf: str) -> None:
    token = _live_link(seeded)
    body = urlencode({"token": token, "decision": "approve", "csrf": csrf})
    reply = refused(seeded, lambda: _form(body), request_id=VERIFY_REQUEST_ID, page=True)
    assert reply.status == 409 and "open the link again" in reply.text


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
        # a well-formed token of 1500 nested arrays: Python's JSON decoder would recurse too deep
        {"nextToken": base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")},
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
