"""A create with an Idempotency-Key against moto: powertools' in-progress record is put first,
and the create's own transaction completes it (``adapters/dynamodb/idempotency.py``), exactly as
powertools' ``save_success`` would have, so that the key costs one call. Each way a create can
end, with the key: its record, its calls, and what the same key answers next."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from account_connections import wiring
from account_connections.api.idempotency import IdempotentCreate, WithoutConnectionToken
from account_connections.domain.connection import CreateConnectionRequest, CreateConnectionResponse
from account_connections.domain.registry import Approver
from tests.integration.conftest import APPROVED_ACCOUNT, UNREGISTERED_ACCOUNT, dump_table
from tests.integration.test_requester_api import (
    BODY,
    CREATE_CALLS,
    cancel,
    create,
    get,
    list_page,
    page,
    space_connections,
    without_token,
)
from tests.support import Reply

RECORD_PK = "IDEMPOTENCY#create_connection"
PUT, TRANSACTION, DELETE = "dynamodb.PutItem", "dynamodb.TransactWriteItems", "dynamodb.DeleteItem"


def records(seeded: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in dump_table(seeded["ddb"]) if item["pk"]["S"] == RECORD_PK]


def the_record(seeded: dict[str, Any]) -> dict[str, Any]:
    [record] = records(seeded)
    return record


@pytest.fixture
def calls(seeded: dict[str, Any]) -> Iterator[tuple[list[str], dict[str, Callable[[], None]]]]:
    """``service.Operation`` of the handler's DynamoDB and Step Functions calls, and a place to
    hang something to do just before one of them (``{"TransactWriteItems": fn}``): another
    invocation's doing, as it would fall between two of this one's calls."""
    from account_connections.adapters.clients import client

    assert list_page().status == 200  # the handler loaded, its clients made
    seen: list[str] = []
    before: dict[str, Callable[[], None]] = {}

    def record(model: Any, **_: Any) -> None:
        seen.append(f"{model.service_model.service_name}.{model.name}")
        hook = before.pop(model.name, None)
        if hook is not None:
            hook()

    made = [client("dynamodb"), client("stepfunctions")]
    for each in made:
        each.meta.events.register("before-call", record, unique_id="idempotent-create-calls")
    yield seen, before
    for each in made:
        each.meta.events.unregister("before-call", unique_id="idempotent-create-calls")


def _payload(key: str, body: dict[str, Any] = BODY) -> dict[str, Any]:
    """What powertools hashes and validates: the route's ``IdempotentCreate`` as JSON."""
    request = CreateConnectionRequest.model_validate(body)
    return IdempotentCreate(key=key, principal="alice", spaceId="demo", body=request).model_dump(mode="json")


def test_the_transaction_completes_the_record_exactly_as_powertools_would(
    seeded: dict[str, Any], calls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clock under every expiry powertools computes: the put's, then a later one for the
    # completion's and for powertools' own save_success
    expiries = iter([1_900_000_000])
    monkeypatch.setattr(
        BasePersistenceLayer, "_get_expiry_timestamp", lambda self: next(expiries, 1_900_000_100)
    )
    seen, before = calls
    in_progress: dict[str, Any] = {}
    before["TransactWriteItems"] = lambda: in_progress.update(the_record(seeded))
    # When alice creates with a key
    reply = create(key="exact")
    # Then three calls: the in-progress put, the transaction, the workflow's start
    assert reply.status == 201, reply.text
    assert seen == [PUT, *CREATE_CALLS]
    assert (in_progress["idempotencyStatus"], in_progress["ttl"]) == (
        {"S": "INPROGRESS"},
        {"N": "1900000000"},
    )
    completed = the_record(seeded)
    assert (completed["idempotencyStatus"], completed["ttl"]) == ({"S": "COMPLETED"}, {"N": "1900000100"})
    # And the record is, attribute for attribute, what powertools' own save_success writes over
    # the same in-progress record with the same response
    result = WithoutConnectionToken().to_dict(CreateConnectionResponse.model_validate(reply.json))
    seeded["ddb"].put_item(TableName=seeded["table"], Item=in_progress)
    DynamoDBPersistenceLayer.save_success(
        wiring.idempotency_persistence(), data=_payload("exact"), result=result
    )
    assert the_record(seeded) == completed
    # Without the connection token, which a replay through powertools swaps for a new one
    assert reply.json["connectionToken"] not in json.dumps(completed)
    again = create(key="exact")
    assert again.status == 201
    assert {**again.json, "connectionToken": ""} == {**reply.json, "connectionToken": ""}


@pytest.mark.parametrize(
    ("sub", "body", "status"),
    [
        ("carol", BODY, 403),  # LIMITED_ACCESS: the transaction's member check
        ("alice", {**BODY, "accountId": UNREGISTERED_ACCOUNT, "roleArns": []}, 422),
    ],
)
def test_a_refused_keyed_create_writes_nothing_and_frees_its_key(
    seeded: dict[str, Any], calls: Any, sub: str, body: dict[str, Any], status: int
) -> None:
    seen, _ = calls
    table = dump_table(seeded["ddb"])
    seen.clear()
    assert create(sub=sub, body=body, key="refused").status == status
    # The record put in progress, the transaction cancelled (its completion with it), the record
    # deleted by powertools: the table as it was
    assert seen == [PUT, TRANSACTION, DELETE]
    assert dump_table(seeded["ddb"]) == table


def test_a_key_refused_for_want_of_an_administrator_creates_once_one_is_registered(
    seeded: dict[str, Any],
) -> None:
    body = {**BODY, "accountId": UNREGISTERED_ACCOUNT, "roleArns": []}
    assert create(body=body, key="later").status == 422
    seeded["stores"].registry.put_approver(Approver(
        accountId=UNREGISTERED_ACCOUNT, email="late@example.com", updatedAt="2026-11-01T00:00:00.000Z",
        updatedBy="oscar",
    ))  # fmt: skip
    reply = create(body=body, key="later")
    assert reply.status == 201 and reply.json["connectionToken"]
    assert the_record(seeded)["idempotencyStatus"] == {"S": "COMPLETED"}


def test_a_keyed_create_of_a_live_account_is_a_conflict_and_frees_its_key(seeded: dict[str, Any]) -> None:
    first = create()
    assert first.status == 201
    table = dump_table(seeded["ddb"])
    assert create(key="live").status == 409
    assert dump_table(seeded["ddb"]) == table
    # Once the live one is cancelled, the same key creates
    assert cancel(first.json["connectionId"]).status == 200
    again = create(key="live")
    assert again.status == 201 and again.json["connectionId"] != first.json["connectionId"]


@pytest.fixture
def no_state_machine(seeded: dict[str, Any]) -> Iterator[Callable[[], None]]:
    """The state machine deleted (``StartExecution`` fails as it would for a real outage), and a
    way to put it back with the same ARN; put back after the test in any case."""
    sfn, arn = seeded["sfn"], seeded["state_machine"]
    described = sfn.describe_state_machine(stateMachineArn=arn)
    sfn.delete_state_machine(stateMachineArn=arn)

    def restore() -> None:
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            made = sfn.create_state_machine(
                name=described["name"], definition=described["definition"], roleArn=described["roleArn"]
            )
            assert made["stateMachineArn"] == arn

    yield restore
    restore()


@pytest.mark.parametrize("key", [None, "no-workflow"])
def test_a_create_whose_workflow_cannot_start_fails_the_same_with_or_without_a_key(
    seeded: dict[str, Any], calls: Any, no_state_machine: Callable[[], None], key: str | None
) -> None:
    seen, _ = calls
    seen.clear()
    # When the transaction commits (completing the key's record) and StartExecution then fails
    reply = create(key=key)
    # Then 503, the request FAILED (its live lock released), and no idempotency record: the
    # completed one is deleted as powertools deletes the record of any create that raised
    assert reply.status == 503
    [stored] = space_connections(seeded)
    assert stored["status"] == {"S": "FAILED"}
    assert records(seeded) == []
    after_start = ["dynamodb.TransactWriteItems"] + ([DELETE] if key else [])
    assert seen == ([PUT] if key else []) + CREATE_CALLS + after_start
    # And the same request again, with its key, is a new create, not a replay of the failed one
    no_state_machine()
    again = create(key=key)
    assert again.status == 201 and again.json["connectionToken"]
    assert again.json["connectionId"] != stored["connectionId"]["S"]


def test_a_policy_written_again_completes_the_record_in_the_transaction_that_commits(
    seeded: dict[str, Any], calls: Any
) -> None:
    # Given an account whose policy is not the plain one the first write assumes
    seeded["stores"].registry.put_approver(Approver(
        accountId=APPROVED_ACCOUNT, approvers=["ops1@example.com", "ops2@example.com"], quorum=2,
        updatedAt="2026-11-01T00:00:00.000Z", updatedBy="oscar",
    ))  # fmt: skip
    seen, _ = calls
    seen.clear()
    reply = create(key="policy")
    # Then the first transaction (its completion with it) was refused, the second committed both
    assert reply.status == 201 and reply.json["quorum"] == 2
    assert seen == [PUT, TRANSACTION, *CREATE_CALLS]
    stored = json.loads(the_record(seeded)["data"]["S"])
    assert stored == {name: value for name, value in reply.json.items() if name != "connectionToken"}
    assert create(key="policy").json["quorum"] == 2


def test_a_second_create_with_the_key_before_the_first_writes_is_in_progress(
    seeded: dict[str, Any], calls: Any
) -> None:
    # Given a second create with the same key, arriving while the first holds the key in progress
    _, before = calls
    second: list[Reply] = []
    before["TransactWriteItems"] = lambda: second.append(create(key="race"))
    first = create(key="race")
    # Then the first creates, the second is told the request is in progress, and one connection
    assert first.status == 201
    assert (second[0].status, second[0].json["title"]) == (409, "Request in progress")
    assert len(space_connections(seeded)) == 1
    assert the_record(seeded)["idempotencyStatus"] == {"S": "COMPLETED"}


def test_a_second_create_with_the_key_after_the_first_committed_is_a_replay(
    seeded: dict[str, Any], calls: Any
) -> None:
    """The record is completed when the transaction commits, before the workflow starts and the
    first create answers: a second create with the key in that window replays it (before, with
    powertools' update after StartExecution, it heard 409 in progress and had to come back)."""
    _, before = calls
    second: list[Reply] = []
    before["StartExecution"] = lambda: second.append(create(key="window"))
    first = create(key="window")
    assert first.status == 201
    [replayed] = second
    assert replayed.status == 201
    assert without_token(replayed.json) == without_token(first.json)
    # Only one connection token is live: the replay's, which replaced the first's
    assert page(first.json["connectionToken"]).status == 410
    assert page(replayed.json["connectionToken"]).status == 200
    assert len(space_connections(seeded)) == 1


def test_a_create_whose_key_another_invocation_took_over_writes_nothing(
    seeded: dict[str, Any], calls: Any
) -> None:
    # Given this invocation's in-progress record replaced, before its transaction, by another
    # invocation's (as once this one's in-progress expiry passed)
    seen, before = calls

    def take_over() -> None:
        record = the_record(seeded)
        later = int(record["in_progress_expiration"]["N"]) + 60_000
        seeded["ddb"].put_item(
            TableName=seeded["table"], Item={**record, "in_progress_expiration": {"N": str(later)}}
        )
        taken.update(the_record(seeded))

    taken: dict[str, Any] = {}
    before["TransactWriteItems"] = take_over
    reply = create(key="taken")
    # Then its transaction is refused: no connection, the other invocation's record untouched
    assert (reply.status, reply.json["title"]) == (409, "Request in progress")
    assert space_connections(seeded) == []
    assert the_record(seeded) == taken
    # The delete (of this invocation's record only) refused; the refusal reads the caller's role
    # as every refusal of a key does
    assert seen == [PUT, TRANSACTION, DELETE, "dynamodb.GetItem"]


def test_a_replay_reads_the_record_the_transaction_wrote(seeded: dict[str, Any]) -> None:
    first = create(key="read-back")
    again = create(key="read-back")
    assert again.status == 201
    assert {**again.json, "connectionToken": ""} == {**first.json, "connectionToken": ""}
    assert get(first.json["connectionId"]).json["status"] == "PENDING_APPROVAL"
    # Another body under the key is still refused
    assert create(key="read-back", body={**BODY, "displayName": "Else"}).status == 409


def test_powertools_writes_the_response_itself_when_the_transaction_completed_another(
    seeded: dict[str, Any], calls: Any
) -> None:
    """The skipped update is only ever the one the committed transaction made: a response other
    than the one completed is written by powertools' own UpdateItem, as without the transaction."""
    from account_connections.api.idempotency import _config

    store = wiring.idempotency_persistence()
    store.configure(_config(3600), function_name="direct")
    seen, _ = calls
    data = _payload("direct")
    store.save_inprogress(data, remaining_time_in_millis=10_000)
    seeded["ddb"].transact_write_items(TransactItems=[store.completion({"answer": "first"})])
    seen.clear()
    store.save_success(data, {"answer": "second"})
    assert seen == ["dynamodb.UpdateItem"]
    assert json.loads(the_record(seeded)["data"]["S"]) == {"answer": "second"}
    # And a completion with the very response: nothing more to write
    store.save_inprogress(_payload("direct-2"), remaining_time_in_millis=10_000)
    seeded["ddb"].transact_write_items(TransactItems=[store.completion({"answer": "same"})])
    seen.clear()
    store.save_success(_payload("direct-2"), {"answer": "same"})
    assert seen == []
