"""The templates an account administrator deploys (templates/): the verifier role trusts only the
service, with the external id, and can only read roles; the example build role trusts the runner
principal. Their parameters agree with the service's (template.yaml)."""

from __future__ import annotations

from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

from tests.checks.cfn import Resolver
from tests.support import ROOT, template

SERVICE = template()["Parameters"]
SERVICE_ACCOUNT = "210987654321"


def _load(name: str) -> dict[str, Any]:
    return yaml_parse((ROOT / "templates" / name).read_text())


def _resolved(doc: dict[str, Any], logical_id: str, **parameters: Any) -> dict[str, Any]:
    """A resource's properties as CloudFormation would create them with these parameters."""
    resolver = Resolver(doc)
    resolver.parameters.update(parameters)
    return resolver.resolve(doc["Resources"][logical_id]["Properties"])


VERIFIER = _load("verifier-role.yaml")
BUILD = _load("example-build-role.yaml")
VERIFIER_ARGS = {"ServiceAccountId": SERVICE_ACCOUNT, "ExternalId": "ext-1234", "ServiceRoleArns": [""]}


def test_verifier_role_is_named_as_the_service_expects() -> None:
    ours, theirs = VERIFIER["Parameters"]["VerifierRoleName"], SERVICE["VerifierRoleName"]
    assert (ours["Default"], ours["AllowedPattern"]) == (theirs["Default"], theirs["AllowedPattern"])
    assert _resolved(VERIFIER, "VerifierRole", **VERIFIER_ARGS)["RoleName"] == "AccountConnectionsVerifier"


def test_there_is_only_the_verifier_role() -> None:
    assert {k: v["Type"] for k, v in VERIFIER["Resources"].items()} == {"VerifierRole": "AWS::IAM::Role"}


@pytest.mark.parametrize(
    ("roles", "principal"),
    [
        ([""], f"arn:aws:iam::{SERVICE_ACCOUNT}:root"),
        (
            [f"arn:aws:iam::{SERVICE_ACCOUNT}:role/a", f"arn:aws:iam::{SERVICE_ACCOUNT}:role/b"],
            [f"arn:aws:iam::{SERVICE_ACCOUNT}:role/a", f"arn:aws:iam::{SERVICE_ACCOUNT}:role/b"],
        ),
    ],
)
def test_verifier_role_trusts_only_the_service_with_the_external_id(roles: list[str], principal: Any) -> None:
    props = _resolved(VERIFIER, "VerifierRole", **(VERIFIER_ARGS | {"ServiceRoleArns": roles}))
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "ext-1234"}},
        }
    ]


def test_verifier_role_can_only_read_roles() -> None:
    props = _resolved(VERIFIER, "VerifierRole", **VERIFIER_ARGS)
    assert "ManagedPolicyArns" not in props
    statements = [s for policy in props["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "arn:aws:iam::123456789012:role/*"}
    ]


def test_external_id_is_required_and_hidden() -> None:
    external_id = VERIFIER["Parameters"]["ExternalId"]
    assert "Default" not in external_id and external_id["NoEcho"] is True and external_id["MinLength"] >= 2


def test_example_build_role_trusts_the_runner_principal() -> None:
    runner = "arn:aws:iam::999999999999:role/WorkflowRunner"
    pattern = BUILD["Parameters"]["RunnerPrincipalArn"]["AllowedPattern"]
    assert pattern == SERVICE["RunnerPrincipalArn"]["AllowedPattern"]
    props = _resolved(BUILD, "BuildRole", RunnerPrincipalArn=runner, ManagedPolicyArns=[""])
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"AWS": runner}, "Action": "sts:AssumeRole"}
    ]
    assert props["ManagedPolicyArns"] is None  # AWS::NoValue: no permissions unless given
