"""The local stack's fix for moto's state machine executions (``local.stepfunctions_programs``):
a definition is parsed once, not once per execution, and executions that share the parsed
program still run as their own (their retries counted apart, a new revision's definition used)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from local import stepfunctions_programs
from tests.local_stack.executions import finished

# A task that fails (no such table), retried once, then caught: each execution's history must
# show its own two attempts, whatever the others do meanwhile.
DEFINITION = {
    "StartAt": "Read",
    "States": {
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": "missing", "Key": {"pk": {"S.$": "$.id"}}},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "Parameters": {"caught.$": "$.id", "version": 1}, "End": True},
    },
}


@pytest.fixture
def sfn() -> Iterator[Any]:
    stepfunctions_programs.install()
    stepfunctions_programs.clear()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")
    stepfunctions_programs.clear()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls to moto's ASL parser (from the moment the test asks for it)."""
    calls: list[int] = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        calls.append(len(definition))
        return original(definition)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    return calls


def _machine(sfn: Any, definition: dict[str, Any]) -> str:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]


def _run(sfn: Any, machine: str, ids: list[str]) -> list[dict[str, Any]]:
    executions = [
        sfn.start_execution(stateMachineArn=machine, name=f"run-{i}", input=json.dumps({"id": i}))[
            "executionArn"
        ]
        for i in ids
    ]
    return finished(sfn, executions)


def _attempts(sfn: Any, execution: dict[str, Any]) -> int:
    events = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    return sum(event["type"] == "TaskScheduled" for event in events)


def test_two_executions_of_one_machine_parse_it_once(sfn: Any, parses: list[int]) -> None:
    machine = _machine(sfn, DEFINITION)
    parses.clear()  # creating the machine validates the definition: a parse of its own
    first = _run(sfn, machine, ["a"])
    second = _run(sfn, machine, ["b"])
    assert len(parses) == 1
    assert [json.loads(e["output"]) for e in first + second] == [
        {"caught": "a", "version": 1},
        {"caught": "b", "version": 1},
    ]


def test_concurrent_executions_share_the_program_and_keep_their_own_retries(
    sfn: Any, parses: list[int]
) -> None:
    machine = _machine(sfn, DEFINITION)
    parses.clear()
    ids = [f"x{n}" for n in range(6)]
    # All started at once, so their first executions race for the program
    results: list[list[dict[str, Any]]] = []
    threads = [threading.Thread(target=lambda i=i: results.append(_run(sfn, machine, [i]))) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    executions = [execution for result in results for execution in result]
    assert len(parses) == 1
    assert sorted(json.loads(e["output"])["caught"] for e in executions) == ids
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * len(ids)
    assert [_attempts(sfn, e) for e in executions] == [2] * len(ids)  # the first try and its retry


def test_a_new_revision_runs_its_own_definition(sfn: Any, parses: list[int]) -> None:
    machine = _machine(sfn, DEFINITION)
    _run(sfn, machine, ["before"])
    changed = json.loads(json.dumps(DEFINITION))
    changed["States"]["Caught"]["Parameters"]["version"] = 2
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(changed))
    parses.clear()
    (after,) = _run(sfn, machine, ["after"])
    assert json.loads(after["output"]) == {"caught": "after", "version": 2}
    assert len(parses) == 1


def _components(root: Any) -> list[Any]:
    """Every evaluation component reachable from ``root`` (through attributes, lists, dicts)."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    found, seen, pending = [], set(), [root]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif type(item).__module__.startswith("moto.") and hasattr(item, "__dict__"):
            found.extend([item] if isinstance(item, EvalComponent) else [])
            pending.extend(vars(item).values())
    return found


def test_the_shared_program_has_every_heap_key_drawn_before_any_execution() -> None:
    # A retrier's attempt count lives in the execution's heap under its component's heap_key:
    # drawn lazily by two executions at once, one would lose its count.
    stepfunctions_programs.clear()
    program = stepfunctions_programs.program_for(json.dumps(DEFINITION))
    components = _components(program)
    assert any(type(component).__name__ == "MaxAttemptsDecl" for component in components)
    assert all(vars(component).get("_EvalComponent__heap_key") for component in components)
    assert stepfunctions_programs.program_for(json.dumps(DEFINITION)) is program
    stepfunctions_programs.clear()
