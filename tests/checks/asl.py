"""A static check of an Amazon States Language definition as this project writes it: the graph
is closed, each Task calls a known integration through a DefinitionSubstitution, Lambda steps
retry the transient Lambda errors and catch everything, and a task token goes only to the step
that waits for it. `problems()` lists what is wrong; an empty list means the definition passes.

cfn-lint does not check the graph (an undefined Next passes), hence this."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

INTEGRATION = "arn:aws:states:::"
LAMBDA = {"lambda:invoke", "lambda:invoke.waitForTaskToken"}
# integration -> the parameter that names the resource it acts on.
KNOWN = {
    "lambda:invoke": "FunctionName",
    "lambda:invoke.waitForTaskToken": "FunctionName",
    "sns:publish": "TopicArn",
    "dynamodb:getItem": "TableName",
    "dynamodb:putItem": "TableName",
    "dynamodb:updateItem": "TableName",
    "dynamodb:deleteItem": "TableName",
}
# What a Lambda step must retry: the invoke API's own transient failures (AWS's recommendation).
TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# A callback step must not retry these: it would email a new link and restart the wait after the
# administrator rejected, the requester cancelled, or the approval window closed.
NOT_FOR_CALLBACKS = {"States.ALL", "States.Timeout", "States.TaskFailed", "States.HeartbeatTimeout"}
SUBSTITUTION = re.compile(r"\$\{(\w+)\}")
TASK_TOKEN = "$$.Task.Token"


def substitutions(text: str) -> set[str]:
    """The ``${Name}`` DefinitionSubstitutions a definition file uses."""
    return set(SUBSTITUTION.findall(text))


def _scopes(definition: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The top-level state list and those of every Parallel branch and Map iterator."""
    yield where or "top level", definition
    for name, state in definition.get("States", {}).items():
        for i, branch in enumerate(state.get("Branches", [])):
            yield from _scopes(branch, f"{where}{name}.Branches[{i}]/")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _scopes(state[key], f"{where}{name}.{key}/")


def _choice_targets(rules: list[dict[str, Any]]) -> Iterator[str]:
    for rule in rules:
        if "Next" in rule:
            yield rule["Next"]


def _targets(state: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "Next" in state:
        yield "Next", state["Next"]
    if "Default" in state:
        yield "Default", state["Default"]
    for target in _choice_targets(state.get("Choices", [])):
        yield "Choices[].Next", target
    for catcher in state.get("Catch", []):
        yield "Catch[].Next", catcher.get("Next")


def _graph_problems(where: str, scope: dict[str, Any]) -> list[str]:
    states: dict[str, Any] = scope.get("States", {})
    found = []
    if scope.get("StartAt") not in states:
        found.append(f"{where}: StartAt {scope.get('StartAt')!r} names no state")
    for name, state in states.items():
        for field, target in _targets(state):
            if target not in states:
                found.append(f"{where}: {name}.{field} {target!r} names no state")
        kind = state.get("Type")
        chained = kind in {"Task", "Pass", "Wait", "Parallel", "Map"}
        if chained and ("Next" in state) == bool(state.get("End")):
            found.append(f"{where}: {name} needs exactly one of Next and End")
        if kind == "Choice" and not state.get("Choices"):
            found.append(f"{where}: {name} is a Choice without Choices")
        if kind in {"Succeed", "Fail"} and ("Next" in state or "End" in state):
            found.append(f"{where}: {name} is terminal and cannot have Next or End")
    seen: set[str] = set()
    todo: list[str] = [str(scope.get("StartAt"))]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo.extend(target for _, target in _targets(states[name]))
    found += [f"{where}: {name} cannot be reached from StartAt" for name in states if name not in seen]
    return found


def _covered(retriers: list[dict[str, Any]]) -> set[str]:
    return {error for retrier in retriers for error in retrier.get("ErrorEquals", [])}


def _task_problems(where: str, name: str, state: dict[str, Any], defined: dict[str, str]) -> list[str]:
    """``defined``: substitution name -> the CloudFormation type of the resource it refers to."""
    resource = state.get("Resource", "")
    here = f"{where}: {name}"
    if not resource.startswith(INTEGRATION) or resource.removeprefix(INTEGRATION) not in KNOWN:
        return [f"{here}: Resource {resource!r} is not a known integration ({', '.join(sorted(KNOWN))})"]
    integration = resource.removeprefix(INTEGRATION)
    found = []
    parameter = KNOWN[integration]
    value = state.get("Parameters", {}).get(parameter)
    names = SUBSTITUTION.fullmatch(value) if isinstance(value, str) else None
    expected_type = {
        "FunctionName": "AWS::Serverless::Function",
        "TopicArn": "AWS::SNS::Topic",
        "TableName": "AWS::DynamoDB::Table",
    }[parameter]
    if not names:
        found.append(f"{here}: Parameters.{parameter} must be a DefinitionSubstitution, not {value!r}")
    elif defined.get(names.group(1)) != expected_type:
        found.append(
            f"{here}: ${{{names.group(1)}}} must refer to an {expected_type} in DefinitionSubstitutions"
        )
    if integration in LAMBDA:
        retriers, catchers = state.get("Retry", []), state.get("Catch", [])
        covered = _covered(retriers)
        callback = integration.endswith(".waitForTaskToken")
        if not retriers:
            found.append(f"{here}: a Lambda step needs Retry")
        elif not (TRANSIENT <= covered or (not callback and covered & {"States.ALL", "States.TaskFailed"})):
            missing = sorted(TRANSIENT - covered)
            found.append(f"{here}: Retry must cover the transient Lambda errors {missing}")
        if not any("States.ALL" in catcher.get("ErrorEquals", []) for catcher in catchers):
            found.append(f"{here}: a Lambda step needs a Catch for States.ALL")
        if callback:
            if bad := sorted(covered & NOT_FOR_CALLBACKS):
                found.append(f"{here}: a callback step must not retry {bad}")
            if TASK_TOKEN not in str(state.get("Parameters", {}).get("Payload")):
                found.append(f"{here}: a callback step must pass {TASK_TOKEN} in its Payload")
            if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
                found.append(f"{here}: a callback step needs TimeoutSeconds(Path), or it waits a year")
    if not integration.endswith(".waitForTaskToken") and TASK_TOKEN in str(state):
        found.append(f"{here}: the task token may go only to the step that waits for it")
    return found


def problems(definition: dict[str, Any], defined: dict[str, str]) -> list[str]:
    """Everything wrong with ``definition``. ``defined`` maps each DefinitionSubstitution to the
    type of the resource it refers to."""
    found = []
    for where, scope in _scopes(definition):
        found += _graph_problems(where, scope)
        for name, state in scope.get("States", {}).items():
            if state.get("Type") == "Task":
                found += _task_problems(where, name, state, defined)
            elif state.get("Type") not in {"Parallel", "Map"} and TASK_TOKEN in str(state):
                found.append(f"{where}: {name}: the task token may go only to the step that waits for it")
    return found
