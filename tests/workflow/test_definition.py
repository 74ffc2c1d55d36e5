"""The state machine definition's graph and its contract with template.yaml."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from account_connections import settings as settings_module
from account_connections.steps import contract
from tests.support import ROOT, load_event, resource, template

DEFINITION: dict[str, Any] = json.loads((ROOT / "statemachine" / "connection_approval.asl.json").read_text())
STATES: dict[str, Any] = DEFINITION["States"]
TRANSIENT = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
             "Lambda.TooManyRequestsException", "DependencyUnavailable"}  # fmt: skip


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catch["Next"] for catch in state.get("Catch", [])]
    return targets


def test_every_transition_names_a_real_state() -> None:
    assert DEFINITION["StartAt"] in STATES
    for name, state in STATES.items():
        for target in _targets(state):
            assert target in STATES, f"{name} goes to {target}, which is not a state"


def test_every_state_is_reachable_and_every_path_ends() -> None:
    seen, todo = set(), [DEFINITION["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_targets(STATES[name]))
    assert seen == set(STATES)
    for name, state in STATES.items():
        assert _targets(state) or state.get("End") or state["Type"] in ("Succeed", "Fail"), name


LAMBDA_TASKS = {name: state for name, state in STATES.items() if ":lambda:" in state.get("Resource", "")}


@pytest.mark.parametrize("name", sorted(LAMBDA_TASKS))
def test_every_lambda_step_retries_transient_errors_and_catches_the_rest(name: str) -> None:
    state = LAMBDA_TASKS[name]
    retried = {error for retry in state["Retry"] for error in retry["ErrorEquals"]}
    assert TRANSIENT <= retried
    assert all(retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2 for retry in state["Retry"])
    assert "States.ALL" not in retried, "a blanket retry would retry a rejection or a refused verification"
    assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    assert state["Parameters"]["Payload"]["correlationId.$"] == "$.correlationId"


def test_the_approval_wait_takes_its_timeout_from_the_execution_input() -> None:
    notify = STATES[DEFINITION["StartAt"]]
    assert notify["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert notify["TimeoutSecondsPath"] == "$.timers.current.seconds"
    assert notify["Parameters"]["Payload"]["round.$"] == "$.timers.fired"
    assert notify["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    caught = {error: catch["Next"] for catch in notify["Catch"] for error in catch["ErrorEquals"]}
    assert {"Rejected", "States.Timeout", "Cancelled", "ConnectionNotPending", "States.ALL"} <= set(caught)


def test_substitutions_match_the_template() -> None:
    text = (ROOT / "statemachine" / "connection_approval.asl.json").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", text))
    declared = set(resource("ApprovalStateMachine")["Properties"]["DefinitionSubstitutions"])
    assert used == declared


@pytest.mark.parametrize(
    ("logical_id", "model"),
    [
        ("NotifyApproverFunction", settings_module.NotifyApproverSettings),
        ("VerifyConnectionFunction", settings_module.VerifyConnectionSettings),
        ("AttachRolesFunction", settings_module.AttachRolesSettings),
        ("RecordOutcomeFunction", settings_module.RecordOutcomeSettings),
        ("DecideConnectionFunction", settings_module.DecisionSettings),
        ("RequesterApiFunction", settings_module.RequesterApiSettings),
        ("AuditApiFunction", settings_module.AuditApiSettings),
        ("DigestFunction", settings_module.DigestSettings),
    ],
)
def test_each_function_gets_the_environment_its_settings_need(logical_id: str, model: type[Any]) -> None:
    """Every required setting of the function's model is in its template environment."""
    environment = {
        **template()["Globals"]["Function"]["Environment"]["Variables"],
        **resource(logical_id)["Properties"].get("Environment", {}).get("Variables", {}),
    }
    required = {info.alias for info in model.model_fields.values() if info.is_required()}
    assert required <= set(environment), required - set(environment)


STEP_MODELS: dict[str, type[BaseModel]] = {
    "${NotifyApproverFunctionArn}": contract.NotifyApproverInput,
    "${VerifyConnectionFunctionArn}": contract.VerifyConnectionInput,
    "${AttachRolesFunctionArn}": contract.AttachRolesInput,
    "${RecordOutcomeFunctionArn}": contract.RecordOutcomeInput,
}


@pytest.mark.parametrize("name", sorted(LAMBDA_TASKS))
def test_each_step_payload_is_what_its_model_takes(name: str) -> None:
    parameters = LAMBDA_TASKS[name]["Parameters"]
    model = STEP_MODELS[parameters["FunctionName"]]
    sent = {key.removesuffix(".$") for key in parameters["Payload"]}
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    assert required <= sent <= set(model.model_fields)


@pytest.mark.parametrize(
    ("event", "model"),
    [
        ("sfn_notify_approver", contract.NotifyApproverInput),
        ("sfn_notify_approver_reminder", contract.NotifyApproverInput),
        ("sfn_verify_connection", contract.VerifyConnectionInput),
        ("sfn_attach_roles", contract.AttachRolesInput),
        ("sfn_record_outcome_verified", contract.RecordOutcomeInput),
        ("sfn_record_outcome_failed", contract.RecordOutcomeInput),
    ],
)
def test_the_sample_step_events_are_valid_payloads(event: str, model: type[Any]) -> None:
    model.model_validate(load_event(event))
