"""Role checks inside the workflow and after it, and the workflow's failure paths."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.iam.models import iam_backends

from account_connections.domain.errors import InvalidRequest
from account_connections.domain.statuses import ConnectionStatus
from account_connections.steps import attach_roles
from tests.workflow.conftest import (
    ADMIN_ACCOUNT,
    OTHER_ACCOUNT,
    RUNNER,
    SPACE,
    VERIFIER_ROLE,
    Stack,
    role_arn,
)

FAILED_AT_VERIFY = ["NotifyApprover", "VerifyConnection", "RecordFailure", "NotifyRequesterFailed", "Failed"]


def _verified(stack: Stack, roles: list[str]) -> tuple[str, dict[str, Any]]:
    connection_id, _ = stack.request(roles)
    assert stack.approve(stack.wait_for_email().token)["statusCode"] == 200
    execution = stack.wait_for_end(connection_id)
    return connection_id, execution


def test_a_role_that_does_not_trust_the_runner_is_recorded_not_attached(stack: Stack) -> None:
    connection_id, execution = _verified(stack, [role_arn("BuildRole"), role_arn("UntrustedRole")])
    assert execution["status"] == "SUCCEEDED"
    connection, roles, history = stack.connections.detail(connection_id)
    assert connection.status == ConnectionStatus.VERIFIED
    by_name = {role.roleName: role for role in roles}
    assert by_name["BuildRole"].attached is True
    assert by_name["UntrustedRole"].attached is False
    assert f"does not allow sts:AssumeRole to {RUNNER}" in (by_name["UntrustedRole"].reason or "")
    assert [event.type for event in history].count("ROLE_REJECTED") == 1


def _role_with_condition(name: str, condition: dict[str, Any]) -> str:
    """A role in the administrator's account that trusts the runner under ``condition``."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": RUNNER},
             "Action": "sts:AssumeRole", "Condition": condition}]}  # fmt: skip
    iam_backends[ADMIN_ACCOUNT]["aws"].create_role(name, json.dumps(trust), "/", None, "", [], None)
    return role_arn(name)


def test_a_condition_counts_only_when_the_runner_meets_it(stack: Stack) -> None:
    # Given a role scoped to the space by its external id, and one that asks for a source address
    scoped = _role_with_condition("ScopedRole", {"StringEquals": {"sts:ExternalId": SPACE}})
    fenced = _role_with_condition("OfficeRole", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})
    # When a request with both is approved
    connection_id, execution = _verified(stack, [scoped, fenced])
    # Then the connection is verified, the scoped role attached and the other refused with why
    assert execution["status"] == "SUCCEEDED"
    connection, roles, _ = stack.connections.detail(connection_id)
    assert connection.status == ConnectionStatus.VERIFIED
    by_name = {role.roleName: role for role in roles}
    assert by_name["ScopedRole"].attached is True
    assert by_name["OfficeRole"].attached is False
    reason = by_name["OfficeRole"].reason or ""
    assert f"sts:AssumeRole to {RUNNER} for space {SPACE}" in reason
    assert "cannot be proven (IpAddress aws:SourceIp)" in reason and "203.0.113" not in reason


def test_a_role_that_does_not_exist_is_recorded_with_why(stack: Stack) -> None:
    connection_id, _ = _verified(stack, [role_arn("GhostRole")])
    _, roles, _ = stack.connections.detail(connection_id)
    assert roles[0].attached is False
    assert roles[0].reason == f"role GhostRole does not exist in account {ADMIN_ACCOUNT}"


def test_when_the_verifier_role_cannot_be_assumed_no_role_is_attached_and_the_reason_says_so(
    stack: Stack,
) -> None:
    iam_backends[ADMIN_ACCOUNT]["aws"].delete_role(VERIFIER_ROLE)
    connection_id, execution = _verified(stack, [role_arn("BuildRole")])
    assert execution["status"] == "SUCCEEDED"
    connection, roles, _ = stack.connections.detail(connection_id)
    assert connection.status == ConnectionStatus.VERIFIED
    assert roles[0].attached is False
    assert f"the verifier role arn:aws:iam::{ADMIN_ACCOUNT}:role/{VERIFIER_ROLE} cannot be assumed" in (
        roles[0].reason or ""
    )


def test_a_role_in_another_account_is_refused_at_request_and_at_attach(stack: Stack) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stack.request([role_arn("BuildRole", OTHER_ACCOUNT)])
    assert refused.value.errors == [
        {"field": "roleArns[0]", "message": f"must be a role in account {ADMIN_ACCOUNT}"}
    ]
    connection_id, _ = _verified(stack, [])
    answer = stack.requester_http(
        "http_attach_role", connection_id, body={"roleArn": role_arn("BuildRole", OTHER_ACCOUNT)}
    )
    assert answer["statusCode"] == 400
    assert answer["headers"]["Content-Type"] == "application/problem+json"
    assert f"must be a role in account {ADMIN_ACCOUNT}" in answer["body"]
    _, roles, _ = stack.connections.detail(connection_id)
    assert roles == []


def test_roles_attach_and_detach_after_verification(stack: Stack) -> None:
    connection_id, _ = _verified(stack, [])
    untrusted = stack.requester_http(
        "http_attach_role", connection_id, body={"roleArn": role_arn("UntrustedRole")}
    )
    assert untrusted["statusCode"] == 422
    assert "does not allow sts:AssumeRole" in untrusted["body"]
    attached = stack.requester_http(
        "http_attach_role", connection_id, body={"roleArn": role_arn("BuildRole")}
    )
    assert attached["statusCode"] == 201, attached["body"]
    _, roles, history = stack.connections.detail(connection_id)
    assert [(role.roleName, role.attached) for role in roles] == [("BuildRole", True)]
    assert history[-1].type == "ROLE_ATTACHED" and history[-1].actor == "alice"
    detached = stack.requester_http("http_detach_role", connection_id)
    assert detached["statusCode"] == 200, detached["body"]
    _, roles, history = stack.connections.detail(connection_id)
    assert roles == [] and history[-1].type == "ROLE_DETACHED"
    assert stack.requester_http("http_detach_role", connection_id)["statusCode"] == 404


def test_an_eleventh_role_is_a_conflict_and_a_recorded_one_is_checked_again(stack: Stack) -> None:
    # Given a connection verified with ten roles recorded: BuildRole attached, nine that do not exist
    ghosts = [role_arn(f"GhostRole{i}") for i in range(9)]
    connection_id, _ = _verified(stack, [role_arn("BuildRole"), *ghosts])
    assert len(stack.connections.detail(connection_id)[1]) == 10
    before = stack.dump()
    # When alice attaches an eleventh Then it is refused, saying why, and nothing changes
    refused = stack.requester_http(
        "http_attach_role", connection_id, body={"roleArn": role_arn("DeployRole", path="/deploy/")}
    )
    assert refused["statusCode"] == 409, refused["body"]
    assert refused["headers"]["Content-Type"] == "application/problem+json"
    assert "at most 10 roles" in refused["body"]
    assert stack.dump() == before
    # Attaching a recorded role again checks it again, and counts it once
    assert (
        stack.requester_http("http_attach_role", connection_id, body={"roleArn": role_arn("BuildRole")})[
            "statusCode"
        ]
        == 201
    )
    # Once one is detached, there is room for one
    assert stack.requester_http("http_detach_role", connection_id)["statusCode"] == 200
    deploy = stack.requester_http(
        "http_attach_role", connection_id, body={"roleArn": role_arn("DeployRole", path="/deploy/")}
    )
    assert deploy["statusCode"] == 201, deploy["body"]
    assert (
        stack.requester_http("http_attach_role", connection_id, body={"roleArn": role_arn("BuildRole")})[
            "statusCode"
        ]
        == 409
    )


def test_roles_are_attached_only_to_verified_connections(stack: Stack) -> None:
    connection_id, _ = stack.request([])
    stack.wait_for_email()
    answer = stack.requester_http("http_attach_role", connection_id, body={"roleArn": role_arn("BuildRole")})
    assert answer["statusCode"] == 409


def test_a_request_changed_after_it_was_shown_fails_verification_with_the_reason(stack: Stack) -> None:
    def tamper(_: dict[str, Any]) -> None:
        stack.ddb.update_item(
            TableName="connections-workflow-test",
            Key={"pk": {"S": f"CONNECTION#{connection_id}"}, "sk": {"S": "CONNECTION"}},
            UpdateExpression="SET displayName = :name",
            ExpressionAttributeValues={":name": {"S": "Someone else's account"}},
        )

    stack.before_step["VerifyConnectionFunction"] = tamper
    connection_id, _ = stack.request()
    stack.approve(stack.wait_for_email().token)
    execution = stack.wait_for_end(connection_id)
    assert execution["status"] == "FAILED"
    assert stack.entered_states(connection_id) == FAILED_AT_VERIFY
    connection = stack.connections.get(connection_id)
    assert connection.status == ConnectionStatus.FAILED
    assert connection.reason == "VerificationFailed: the request changed after the administrator saw it"
    notice = stack.drain_notices()[-1]
    assert (notice["status"], notice["reason"]) == ("FAILED", connection.reason)


def test_a_step_that_crashes_fails_the_execution_and_the_status_says_why(
    stack: Stack, monkeypatch: Any
) -> None:
    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("the role check crashed")

    monkeypatch.setattr(attach_roles, "check_roles", crash)
    connection_id, execution = _verified(stack, [role_arn("BuildRole")])
    assert execution["status"] == "FAILED"
    assert stack.entered_states(connection_id)[-3:] == ["RecordFailure", "NotifyRequesterFailed", "Failed"]
    connection = stack.connections.get(connection_id)
    assert connection.status == ConnectionStatus.FAILED
    assert connection.reason == "RuntimeError: the role check crashed"
    # The account is free again.
    assert stack.connections.live_holder("demo", ADMIN_ACCOUNT) is None


def test_a_transient_error_is_retried(stack: Stack, monkeypatch: Any) -> None:
    from account_connections.domain.errors import DependencyUnavailable

    real = attach_roles.check_roles
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise DependencyUnavailable("IAM did not answer")
        return real(*args, **kwargs)

    monkeypatch.setattr(attach_roles, "check_roles", flaky)
    connection_id, execution = _verified(stack, [role_arn("BuildRole")])
    assert execution["status"] == "SUCCEEDED"
    assert len(calls) == 2
    assert stack.connections.get(connection_id).status == ConnectionStatus.VERIFIED


def test_another_live_connection_of_the_account_fails_verification(stack: Stack) -> None:
    def another_connection_holds_the_account(_: dict[str, Any]) -> None:
        stack.ddb.put_item(
            TableName="connections-workflow-test",
            Item={
                "pk": {"S": f"LIVE#demo#{ADMIN_ACCOUNT}"},
                "sk": {"S": "LIVE"},
                "connectionId": {"S": "other"},
            },
        )

    stack.before_step["VerifyConnectionFunction"] = another_connection_holds_the_account
    connection_id, _ = stack.request()
    stack.approve(stack.wait_for_email().token)
    assert stack.wait_for_end(connection_id)["status"] == "FAILED"
    assert stack.entered_states(connection_id) == FAILED_AT_VERIFY
    reason = stack.connections.get(connection_id).reason
    assert reason == f"VerificationFailed: account {ADMIN_ACCOUNT} has another live connection in space demo"


def test_a_request_whose_administrator_was_removed_fails_with_why(stack: Stack) -> None:
    stack.before_step["NotifyApproverFunction"] = lambda _: stack.registry.delete_approver(ADMIN_ACCOUNT)
    connection_id, _ = stack.request()
    assert stack.wait_for_end(connection_id)["status"] == "FAILED"
    assert stack.entered_states(connection_id) == [
        "NotifyApprover",
        "RecordFailure",
        "NotifyRequesterFailed",
        "Failed",
    ]
    connection = stack.connections.get(connection_id)
    assert connection.status == ConnectionStatus.FAILED
    assert (
        connection.reason == f"ApproverNotRegistered: no approver is registered for account {ADMIN_ACCOUNT}"
    )
    assert stack.emails == [] and stack.connections.live_holder("demo", ADMIN_ACCOUNT) is None
