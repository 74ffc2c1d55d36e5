"""The approval workflow's definition, statically (tests/checks/asl.py) and as Step Functions
(moto's engine) accepts it, and its wiring to template.yaml's DefinitionSubstitutions."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.checks.asl import problems, substitutions
from tests.support import ROOT, template

MACHINE = template()["Resources"]["ApprovalStateMachine"]["Properties"]
TEXT = (ROOT / MACHINE["DefinitionUri"]).read_text()
SUBSTITUTIONS: dict[str, Any] = MACHINE.get("DefinitionSubstitutions", {})


def _referenced_types() -> dict[str, str]:
    """substitution -> the template type of the resource its value refers to."""
    resources = template()["Resources"]
    types = {}
    for name, value in SUBSTITUTIONS.items():
        if isinstance(value, dict):
            referenced = value.get("Ref") or value.get("Fn::GetAtt", [""])[0]
            # `!Ref Function.Alias`: the function's alias (SnapStart), invoked as the function.
            referenced = referenced.removesuffix(".Alias")
            if referenced in resources:
                types[name] = resources[referenced]["Type"]
    return types


DEFINED = _referenced_types()


def definition() -> dict[str, Any]:
    return json.loads(TEXT)


def test_definition_is_json_with_states() -> None:
    parsed = definition()
    assert parsed["States"], "the definition has no states"
    assert parsed["StartAt"] in parsed["States"]


def test_definition_has_no_problems() -> None:
    assert problems(definition(), DEFINED) == []


def test_every_substitution_used_is_defined_and_every_defined_one_used() -> None:
    used = substitutions(TEXT)
    assert used - SUBSTITUTIONS.keys() == set(), "used in the ASL file, missing from DefinitionSubstitutions"
    assert SUBSTITUTIONS.keys() - used == set(), "defined in DefinitionSubstitutions, never used"


def test_the_workflow_uses_lambda_steps_with_a_callback() -> None:
    resources = [s.get("Resource") for s in definition()["States"].values()]
    assert "arn:aws:states:::lambda:invoke.waitForTaskToken" in resources
    assert "arn:aws:states:::lambda:invoke" in resources


def test_step_functions_accepts_the_definition() -> None:
    """moto's engine (the one the local stack runs) refuses unknown state types and resources."""
    text = TEXT
    for name in substitutions(TEXT):
        kind = DEFINED.get(name, "")
        fake = {
            "AWS::Serverless::Function": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:us-east-1:123456789012:{name}",
            "AWS::DynamoDB::Table": name,
        }.get(kind, name)
        text = text.replace("${" + name + "}", fake)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        created = boto3.client("stepfunctions").create_state_machine(
            name="approval", definition=text, roleArn=role, type="STANDARD"
        )
    assert created["stateMachineArn"].endswith(":approval")


# The checker itself: each mistake it exists for is reported.


def _first_lambda_step(parsed: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in parsed["States"].values() if s.get("Resource") == "arn:aws:states:::lambda:invoke")


def _callback_step(parsed: dict[str, Any]) -> dict[str, Any]:
    return next(
        s
        for s in parsed["States"].values()
        if s.get("Resource") == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    )


def _broken(change: str) -> dict[str, Any]:
    parsed = copy.deepcopy(definition())
    start = parsed["States"][parsed["StartAt"]]
    step, callback = _first_lambda_step(parsed), _callback_step(parsed)
    if change == "dangling next":
        start["Next"] = "Nowhere"
    elif change == "dangling catch":
        step["Catch"][-1]["Next"] = "Nowhere"
    elif change == "unreachable":
        parsed["States"]["Orphan"] = {"Type": "Succeed"}
    elif change == "no retry":
        step.pop("Retry")
    elif change == "narrow retry":
        step["Retry"] = [{"ErrorEquals": ["Lambda.ServiceException"]}]
    elif change == "no catch":
        step.pop("Catch")
    elif change == "unknown integration":
        step["Resource"] = "arn:aws:states:::ecs:runTask.sync"
    elif change == "literal function":
        step["Parameters"]["FunctionName"] = "arn:aws:lambda:us-east-1:123456789012:function:x"
    elif change == "callback retries all":
        callback["Retry"].append({"ErrorEquals": ["States.ALL"]})
    elif change == "callback without timeout":
        callback.pop("TimeoutSeconds", None)
        callback.pop("TimeoutSecondsPath", None)
    elif change == "token leaks":
        step["Parameters"]["Payload"]["token.$"] = "$$.Task.Token"
    return parsed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("dangling next", "Next 'Nowhere' names no state"),
        ("dangling catch", "Catch[].Next 'Nowhere' names no state"),
        ("unreachable", "Orphan cannot be reached"),
        ("no retry", "needs Retry"),
        ("narrow retry", "Retry must cover the transient Lambda errors"),
        ("no catch", "needs a Catch for States.ALL"),
        ("unknown integration", "is not a known integration"),
        ("literal function", "must be a DefinitionSubstitution"),
        ("callback retries all", "must not retry ['States.ALL']"),
        ("callback without timeout", "needs TimeoutSeconds"),
        ("token leaks", "the task token may go only to the step that waits for it"),
    ],
)
def test_the_checker_reports_each_mistake(change: str, message: str) -> None:
    found = problems(_broken(change), DEFINED)
    assert any(message in problem for problem in found), found
