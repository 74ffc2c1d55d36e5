"""A transaction that committed but whose answer was lost (a read timeout, a dropped connection),
which the SDK's retries then send again: every transaction carries a ``ClientRequestToken`` of
its own (botocore fills one in: an idempotency token in DynamoDB's model), which the retry
repeats, so DynamoDB answers the retry as it answered the first attempt instead of evaluating it
again against what the first wrote (a create would be refused as a duplicate of itself). Against
moto with the local stack's token fix (``local.dynamodb_client_tokens``), without which both
tests fail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local import dynamodb_client_tokens
from tests.integration.test_requester_api import cancel, create, get, list_page, space_connections

RETRY_HOOK = "lose-first-transaction-answer"
NEEDS_RETRY = "needs-retry.dynamodb.TransactWriteItems"


@pytest.fixture
def answers_lost(seeded: dict[str, Any]) -> Iterator[list[str]]:
    """Each TransactWriteItems' first answer, when it succeeded, is treated as lost: the SDK sends
    the same request again (botocore's ``needs-retry`` answered with no delay), as its standard
    retries do after a timeout. Yields the operations whose answer was lost."""
    from account_connections.adapters.clients import client

    dynamodb_client_tokens.install()
    assert list_page().status == 200  # the handler loaded, its DynamoDB client made
    lost: list[str] = []

    def lose_the_first_answer(attempts: int, response: Any, caught_exception: Any, **_: Any) -> int | None:
        if attempts == 1 and caught_exception is None and response[0].status_code == 200:
            lost.append("TransactWriteItems")
            return 0
        return None

    ddb = client("dynamodb")
    ddb.meta.events.register(NEEDS_RETRY, lose_the_first_answer, unique_id=RETRY_HOOK)
    yield lost
    ddb.meta.events.unregister(NEEDS_RETRY, unique_id=RETRY_HOOK)


def test_a_create_whose_answer_was_lost_is_created_once_with_its_workflow(
    seeded: dict[str, Any], answers_lost: list[str]
) -> None:
    reply = create()
    assert reply.status == 201, reply.text
    assert answers_lost == ["TransactWriteItems"]  # committed, answer lost, sent again
    [stored] = space_connections(seeded)
    assert stored["connectionId"]["S"] == reply.json["connectionId"]
    executions = seeded["sfn"].list_executions(stateMachineArn=seeded["state_machine"])["executions"]
    assert [execution["name"] for execution in executions] == [reply.json["connectionId"]]
    assert [event["type"] for event in get(reply.json["connectionId"]).json["history"]] == ["REQUESTED"]


def test_a_cancel_whose_answer_was_lost_is_answered_as_done_once(
    seeded: dict[str, Any], answers_lost: list[str]
) -> None:
    created = create()
    assert created.status == 201
    answers_lost.clear()
    reply = cancel(created.json["connectionId"])
    assert reply.status == 200, reply.text
    assert answers_lost == ["TransactWriteItems"]
    read = get(created.json["connectionId"]).json
    assert read["status"] == "CANCELLED"
    assert [(event["type"], event["toStatus"]) for event in read["history"]] == [
        ("REQUESTED", "PENDING_APPROVAL"),
        ("STATUS_CHANGED", "CANCELLED"),
    ]
