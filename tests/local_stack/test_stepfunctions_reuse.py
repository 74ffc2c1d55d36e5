"""The local stack's fix for moto's state machine steps (``local.stepfunctions_reuse``): each
JSONPath parsed once and one AWS client per service, not one per step, and executions sharing
them still get their own answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import jsonpath_ng
import jsonpath_ng.ext
import pytest
from moto import mock_aws

from local import stepfunctions_reuse
from tests.local_stack.executions import finished
from tests.local_stack.tables import table_on_pk

TABLE = "reuse-items"
# Every kind of path moto evaluates: InputPath, a `.$` parameter, ResultPath, OutputPath, a
# Choice variable; one DynamoDB Task state (a client) per execution.
DEFINITION = {
    "StartAt": "Read",
    "States": {
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "InputPath": "$.request",
            "Parameters": {"TableName": TABLE, "Key": {"pk": {"S.$": "$.id"}}},
            "ResultPath": "$.read",
            "OutputPath": "$",
            "Next": "Found?",
        },
        "Found?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.read.Item", "IsPresent": True, "Next": "Found"}],
            "Default": "Missing",
        },
        "Found": {
            "Type": "Pass",
            "Parameters": {"id.$": "$.request.id", "value.$": "$.read.Item.value.S"},
            "End": True,
        },
        "Missing": {"Type": "Pass", "Parameters": {"id.$": "$.request.id", "value": None}, "End": True},
    },
}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts jsonpath_ng's parses (both entry points moto uses), from install on."""
    calls: list[str] = []
    extended, plain = jsonpath_ng.ext.parse, jsonpath_ng.parse

    def counting(original: Any) -> Any:
        def parse(path: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(path)
            return original(path, *args, **kwargs)

        return parse

    monkeypatch.setattr(
        stepfunctions_reuse, "parse_extended", stepfunctions_reuse.functools.lru_cache()(counting(extended))
    )
    monkeypatch.setattr(
        stepfunctions_reuse, "parse_plain", stepfunctions_reuse.functools.lru_cache()(counting(plain))
    )
    return calls


@pytest.fixture
def clients_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The services boto3 made a client for, from the fixture on."""
    made: list[str] = []
    original = boto3.client

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("service_name") or args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    return made


@pytest.fixture
def sfn(parses: list[str]) -> Iterator[Any]:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path

    saved = (json_path.parse, result_path.parse, boto_client.boto3)  # type: ignore[attr-defined]
    stepfunctions_reuse.clear()
    stepfunctions_reuse.install()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            dynamodb = table_on_pk(TABLE)
            dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "value": {"S": "first"}})
            dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "b"}, "value": {"S": "second"}})
            yield boto3.client("stepfunctions", region_name="us-east-1")
    finally:
        json_path.parse, result_path.parse, boto_client.boto3 = saved  # type: ignore[attr-defined]
        stepfunctions_reuse.clear()


def _machine(sfn: Any) -> str:
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="sfn", AssumeRolePolicyDocument="{}"
    )
    return sfn.create_state_machine(name="m", definition=json.dumps(DEFINITION), roleArn=role["Role"]["Arn"])[
        "stateMachineArn"
    ]


def _run(sfn: Any, machine: str, ids: list[str]) -> list[dict[str, Any]]:
    arns = [
        sfn.start_execution(
            stateMachineArn=machine,
            name=f"run-{i}-{time.monotonic_ns()}",
            input=json.dumps({"request": {"id": i}}),
        )["executionArn"]
        for i in ids
    ]
    outputs = []
    for described in finished(sfn, arns):
        assert described["status"] == "SUCCEEDED", described
        outputs.append(json.loads(described["output"]))
    return outputs


def test_a_second_execution_parses_no_path(sfn: Any, parses: list[str]) -> None:
    machine = _machine(sfn)
    assert _run(sfn, machine, ["a"]) == [{"id": "a", "value": "first"}]
    first = len(parses)
    assert first >= 5  # InputPath, the parameter, ResultPath, OutputPath, the choice, the passes
    assert _run(sfn, machine, ["b", "zzz"]) == [{"id": "b", "value": "second"}, {"id": "zzz", "value": None}]
    assert len(parses) == first


def test_executions_share_one_client_per_service(sfn: Any, clients_made: list[str]) -> None:
    machine = _machine(sfn)
    clients_made.clear()
    assert _run(sfn, machine, ["a", "b"]) == [{"id": "a", "value": "first"}, {"id": "b", "value": "second"}]
    assert clients_made.count("dynamodb") == 1


def test_concurrent_executions_get_their_own_answers(sfn: Any) -> None:
    machine = _machine(sfn)
    ids = ["a", "b", "c", "d", "a", "b"]
    results: dict[int, list[dict[str, Any]]] = {}
    threads = [
        threading.Thread(target=lambda n=n, i=i: results.__setitem__(n, _run(sfn, machine, [i])))
        for n, i in enumerate(ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {"a": "first", "b": "second", "c": None, "d": None}
    assert [results[n] for n in range(len(ids))] == [[{"id": i, "value": expected[i]}] for i in ids]


def test_shared_clients_answer_one_client_per_arguments_with_a_larger_pool() -> None:
    clients = stepfunctions_reuse.SharedClients()
    from botocore.config import Config

    one = clients.client(service_name="sqs", region_name="us-east-1", config=Config(connect_timeout=7))
    assert clients.client(service_name="sqs", region_name="us-east-1", config=Config()) is one
    assert clients.client(service_name="sqs", region_name="eu-west-1") is not one
    assert clients.client(service_name="sns", region_name="us-east-1") is not one
    config: Any = one.meta.config
    assert config.max_pool_connections == stepfunctions_reuse.POOL_CONNECTIONS
    assert config.connect_timeout == 7  # the rest of the given config kept
