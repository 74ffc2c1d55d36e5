"""The role check's rules, without AWS: trust policies as AWS, botocore and moto return them,
ARN format and account, and how each failure reads."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from account_connections.domain.errors import DependencyUnavailable, RoleCheckFailed
from account_connections.domain.trust import evaluate_trust
from account_connections.logic.roles import check_roles, parse_role_arn

RUNNER = "arn:aws:iam::999999999999:role/WorkflowRunner"


def _policy(principal: Any, effect: str = "Allow", action: Any = "sts:AssumeRole") -> dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Principal": {"AWS": principal}, "Action": action}]}  # fmt: skip


@pytest.mark.parametrize(
    "document",
    [
        _policy(RUNNER),  # botocore decodes it into a dict
        json.dumps(_policy(RUNNER)),  # moto returns JSON text
        quote(json.dumps(_policy(RUNNER))),  # IAM's own URL-encoded JSON
        _policy([RUNNER, "arn:aws:iam::111111111111:root"], action=["sts:AssumeRole", "sts:TagSession"]),
        _policy("arn:aws:iam::999999999999:root"),  # the runner's account root delegates to it
        _policy("999999999999"),
        _policy(RUNNER, action="sts:*"),
    ],
)
def test_trust_policies_that_allow_the_runner(document: Any) -> None:
    assert evaluate_trust(document, RUNNER, "demo").allowed


@pytest.mark.parametrize(
    "document",
    [
        _policy("arn:aws:iam::222233334444:root"),
        _policy(RUNNER, action="sts:AssumeRoleWithWebIdentity"),
        _policy(RUNNER, effect="Deny"),
        {"Statement": [_policy(RUNNER)["Statement"][0], _policy(RUNNER, effect="Deny")["Statement"][0]]},
        {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        },
        "not json at all",
        None,
    ],
)
def test_trust_policies_that_do_not(document: Any) -> None:
    assert not evaluate_trust(document, RUNNER, "demo").allowed


def test_an_arn_must_name_a_role_of_the_connections_account() -> None:
    assert parse_role_arn("111122223333", "arn:aws:iam::111122223333:role/ci/BuildRole").name == "BuildRole"
    with pytest.raises(RoleCheckFailed, match="is in account 444455556666, not the connection's account"):
        parse_role_arn("111122223333", "arn:aws:iam::444455556666:role/BuildRole")
    with pytest.raises(RoleCheckFailed, match="is not a role ARN"):
        parse_role_arn("111122223333", "arn:aws:iam::111122223333:user/alice")


class _Verifier:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def open(self, partition: str, account_id: str) -> Any:
        raise self.error


def test_a_verifier_that_cannot_be_assumed_refuses_every_role_with_the_reason() -> None:
    results = check_roles(
        _Verifier(RoleCheckFailed("the verifier role cannot be assumed")),
        "111122223333",
        ["arn:aws:iam::111122223333:role/A", "arn:aws:iam::111122223333:role/B", "not-an-arn"],
        RUNNER,
        space_id="demo",
    )
    assert [(r.roleName, r.attached) for r in results] == [("A", False), ("B", False), ("not-an-arn", False)]
    assert results[0].reason == "the verifier role cannot be assumed"
    assert "is not a role ARN" in (results[2].reason or "")


def test_a_transient_failure_is_raised_for_the_workflow_to_retry() -> None:
    with pytest.raises(DependencyUnavailable):
        check_roles(_Verifier(DependencyUnavailable("STS did not answer")), "111122223333",
                    ["arn:aws:iam::111122223333:role/A"], RUNNER, space_id="demo")  # fmt: skip
