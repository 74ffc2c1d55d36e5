"""What the administrator's page and decision cost in AWS calls (issue 5: a decision makes at
most three), counted by a botocore ``before-call`` hook on boto3's default session; and what
the token items that make it possible keep, and for how long."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import boto3
import pytest

from account_connections.adapters.clients import client
from account_connections.domain.connection import request_digest
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import hash_token
from tests.builders import LinkClock
from tests.proofs import ADMIN_SESSION, FakeSts
from tests.support import stores
from tests.workflow.conftest import ADMIN_ACCOUNT, ADMIN_EMAIL, TABLE, Stack

Recorder = Callable[[], AbstractContextManager[list[str]]]
SECRETS = ("taskToken", "csrfSecret")


@pytest.fixture
def aws_calls(stack: Stack) -> Iterator[Recorder]:
    """``with aws_calls() as seen:`` collects the ``service.Operation`` of every AWS call this
    thread makes in the block (the workflow's steps run on moto's threads and are not counted)."""
    calls: list[tuple[int, str]] = []

    def hook(model: Any, **_: Any) -> None:
        calls.append((threading.get_ident(), f"{model.service_model.service_name}.{model.name}"))

    # Clients copy their session's hooks when they are made: register, then let the handlers'
    # cached clients be made anew.
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", hook, unique_id="test-aws-calls")
    client.cache_clear()

    @contextmanager
    def record() -> Iterator[list[str]]:
        me, start = threading.get_ident(), len(calls)
        seen: list[str] = []
        try:
            yield seen
        finally:
            seen.extend(name for thread, name in calls[start:] if thread == me)

    try:
        yield record
    finally:
        boto3.DEFAULT_SESSION.events.unregister("before-call", unique_id="test-aws-calls")
        client.cache_clear()


def _token_item(stack: Stack, token: str) -> dict[str, Any]:
    item = stack.stores.token_item(hash_token(token))
    assert item is not None
    return item


def _csrf(stack: Stack, token: str) -> str:
    body = stack.page(token)["body"]
    return body.split('name="csrf" value="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize(
    ("how", "last_call"),
    [
        ("json approve", "SendTaskSuccess"),
        ("form approve", "SendTaskSuccess"),
        ("json reject", "SendTaskFailure"),
    ],
)
def test_a_decision_makes_three_aws_calls(
    stack: Stack, aws_calls: Recorder, how: str, last_call: str
) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    csrf = _csrf(stack, token)  # also loads the handler, as a warm Lambda would have it
    with aws_calls() as seen:
        if how == "json approve":
            answer = stack.decide_json(token, "approve")
        elif how == "form approve":
            answer = stack.decide_form(token, {"decision": "approve"}, csrf=csrf)
        else:
            answer = stack.decide_json(token, "reject", reason="not ours")
    assert answer["statusCode"] == 200, answer["body"]
    # The token's item, the transaction, the answer to the workflow: nothing else.
    assert seen == ["dynamodb.GetItem", "dynamodb.TransactWriteItems", f"stepfunctions.{last_call}"]
    assert len(seen) <= 3
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    expected = ConnectionStatus.VERIFIED if "approve" in how else ConnectionStatus.REJECTED
    decided = stack.connections.get(connection_id)
    assert decided.status == expected and decided.decidedBy == ADMIN_EMAIL


@pytest.mark.parametrize("head", [False, True])
def test_the_page_makes_two_reads_and_a_used_link_one(stack: Stack, aws_calls: Recorder, head: bool) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    stack.page(token)
    with aws_calls() as seen:
        assert stack.page(token, head=head)["statusCode"] == 200
    assert seen == ["dynamodb.GetItem", "dynamodb.GetItem"]  # the token's item, the connection
    assert stack.decide_json(token, "approve")["statusCode"] == 200
    stack.wait_for_end(connection_id)
    with aws_calls() as seen:
        assert stack.page(token, head=head)["statusCode"] == 410
    assert seen == ["dynamodb.GetItem"]  # the token's own item says it was used


def test_token_items_keep_the_task_token_only_while_they_work(stack: Stack, link_clock: LinkClock) -> None:
    connection_id, connection_token = stack.request()
    first = stack.wait_for_email().token
    stored = stack.item(connection_id)
    for token in (first, connection_token):
        item = _token_item(stack, token)
        assert {name: item[name] for name in SECRETS} == {name: stored[name] for name in SECRETS}
        assert item["request"]["displayName"] == "Production"
    assert _token_item(stack, first)["approverEmail"] == ADMIN_EMAIL
    assert _token_item(stack, connection_token)["approverEmails"] == [ADMIN_EMAIL]
    # A resend (a minute later: links are rate-limited): the replaced link keeps no copy; the new
    # one and the connection token do.
    link_clock.advance()
    assert stack.requester_http("http_resend_connection", connection_id)["statusCode"] == 200
    second = stack.wait_for_email(count=2).token
    replaced = _token_item(stack, first)
    assert replaced["state"] == "REPLACED" and not set(SECRETS) & set(replaced)
    assert _token_item(stack, second)["taskToken"] == stored["taskToken"]
    assert _token_item(stack, connection_token)["taskToken"] == stored["taskToken"]
    # The decision consumes its token and drops its copy in the same transaction.
    assert stack.decide_json(second, "approve")["statusCode"] == 200
    used = _token_item(stack, second)
    assert used["state"] == "USED" and not set(SECRETS) & set(used)
    # The connection's API never shows the internals that make this work.
    shown = stack.requester_http("http_get_connection", connection_id)
    assert shown["statusCode"] == 200
    for internal in ("taskToken", "csrfSecret", "requestDigest", "approverEmail", stored["taskToken"]):
        assert internal not in shown["body"]


def test_decided_by_is_the_address_the_link_went_to_even_if_the_administrator_left(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    assert stack.registry.delete_approver(ADMIN_ACCOUNT)
    answer = stack.decide_json(token, "approve")
    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"])["decidedBy"] == ADMIN_EMAIL
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    assert stack.connections.get(connection_id).decidedBy == ADMIN_EMAIL


def test_a_request_changed_since_its_link_was_sent_cannot_be_decided(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    # A change of what the page shows (no route makes one today) stores the request's new digest.
    changed = stack.connections.get(connection_id).model_copy(update={"displayName": "Someone else's"})
    stack.ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"CONNECTION#{connection_id}"}, "sk": {"S": "CONNECTION"}},
        UpdateExpression="SET displayName = :name, requestDigest = :digest",
        ExpressionAttributeValues={
            ":name": {"S": changed.displayName},
            ":digest": {"S": request_digest(changed)},
        },
    )
    before = stack.dump()
    answer = stack.decide_json(token, "approve")
    assert answer["statusCode"] == 409
    assert "changed after this link was sent" in json.loads(answer["body"])["detail"]
    # The page shows the request as it now is, and its form is refused the same way.
    assert "Someone else" in stack.page(token)["body"]
    assert stack.approve(token)["statusCode"] == 409
    assert stack.dump() == before
    assert stack.connections.get(connection_id).status == ConnectionStatus.PENDING_APPROVAL


def test_the_connection_token_before_the_workflow_waits_is_not_ready_yet(stack: Stack, sts: FakeSts) -> None:
    created = threading.Event()
    token: list[str] = []
    answers: list[dict[str, Any]] = []

    def decide_before_notify(_: dict[str, Any]) -> None:
        assert created.wait(10)
        answers.append(stack.decide_json(token[0], "approve"))

    stack.before_step["NotifyApproverFunction"] = decide_before_notify
    connection_id, connection_token = stack.request()
    token.append(connection_token)
    created.set()
    stack.wait_for_email()
    assert answers and answers[0]["statusCode"] == 409
    assert "still starting" in json.loads(answers[0]["body"])["detail"]
    assert stack.connections.get(connection_id).status == ConnectionStatus.PENDING_APPROVAL
    # Once the link went out, the connection token carries what a decision needs (with a proof).
    proof = sts.proof(connection_id, ADMIN_SESSION)
    assert stack.decide_json(connection_token, "approve", accountProof=proof)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"


def test_a_decision_on_a_cancelled_request_says_so(stack: Stack) -> None:
    connection_id, connection_token = stack.request()
    token = stack.wait_for_email().token
    assert stack.requester_http("http_cancel_connection", connection_id)["statusCode"] == 200
    for dead in (token, connection_token):
        answer = stack.decide_json(dead, "reject", reason="late")
        assert answer["statusCode"] == 410
        assert json.loads(answer["body"])["detail"].startswith("The requester cancelled")
    assert stores(TABLE, stack.ddb).connections.get(connection_id).status == ConnectionStatus.CANCELLED
