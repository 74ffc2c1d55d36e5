"""The templates an account administrator deploys (templates/): the verifier role trusts only the
service's roles that check roles (the whole service account only when asked to), with the
external id, and can only read roles; the example build role trusts the runner principal. Their
parameters agree with the service's (template.yaml)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

from tests.checks.cfn import Resolver, translated
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
SERVICE_ROLES = [f"arn:aws:iam::{SERVICE_ACCOUNT}:role/a", f"arn:aws:iam::{SERVICE_ACCOUNT}:role/b"]
VERIFIER_ARGS = {
    "ServiceAccountId": SERVICE_ACCOUNT,
    "ExternalId": "ext-1234",
    "ServiceRoleArns": SERVICE_ROLES,
}
ACCOUNT_ROOT = f"arn:aws:iam::{SERVICE_ACCOUNT}:root"


def _rule_holds(doc: dict[str, Any], **parameters: Any) -> bool:
    """Whether CloudFormation would accept these parameters under the template's Rules."""
    resolver = Resolver(doc)
    resolver.parameters.update(parameters)
    for rule in doc.get("Rules", {}).values():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        if not all(resolver.resolve(assertion["Assert"]) for assertion in rule["Assertions"]):
            return False
    return True


def test_verifier_role_is_named_as_the_service_expects() -> None:
    ours, theirs = VERIFIER["Parameters"]["VerifierRoleName"], SERVICE["VerifierRoleName"]
    assert (ours["Default"], ours["AllowedPattern"]) == (theirs["Default"], theirs["AllowedPattern"])
    assert _resolved(VERIFIER, "VerifierRole", **VERIFIER_ARGS)["RoleName"] == "AccountConnectionsVerifier"


def test_there_is_only_the_verifier_role() -> None:
    assert {k: v["Type"] for k, v in VERIFIER["Resources"].items()} == {"VerifierRole": "AWS::IAM::Role"}


@pytest.mark.parametrize(
    ("roles", "trust_account", "principal"),
    [
        (SERVICE_ROLES, "false", SERVICE_ROLES),
        ([""], "true", ACCOUNT_ROOT),  # only when asked to
    ],
)
def test_verifier_role_trusts_only_the_service_with_the_external_id(
    roles: list[str], trust_account: str, principal: Any
) -> None:
    args = VERIFIER_ARGS | {"ServiceRoleArns": roles, "TrustServiceAccount": trust_account}
    assert _rule_holds(VERIFIER, **args)
    props = _resolved(VERIFIER, "VerifierRole", **args)
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "ext-1234"}},
        }
    ]


def test_by_default_the_verifier_role_does_not_trust_the_service_account_root() -> None:
    """The defaults trust the named roles only: the whole account is an explicit choice, and no
    roles named is refused (it does not fall back to the account)."""
    assert VERIFIER["Parameters"]["TrustServiceAccount"]["Default"] == "false"
    defaults = {"ServiceAccountId": SERVICE_ACCOUNT, "ExternalId": "ext-1234"}
    principals = [
        s["Principal"]["AWS"]
        for s in _resolved(VERIFIER, "VerifierRole", **defaults, ServiceRoleArns=SERVICE_ROLES)[
            "AssumeRolePolicyDocument"
        ]["Statement"]
    ]
    assert principals == [SERVICE_ROLES]
    assert ACCOUNT_ROOT not in str(principals)
    assert not _rule_holds(VERIFIER, **defaults, ServiceRoleArns=[""])  # the default list is empty
    assert _rule_holds(VERIFIER, **defaults, ServiceRoleArns=SERVICE_ROLES)


def test_service_role_arns_accept_role_arns_only() -> None:
    pattern = VERIFIER["Parameters"]["ServiceRoleArns"]["AllowedPattern"]
    assert all(re.fullmatch(pattern, arn) for arn in SERVICE_ROLES)
    for refused in (ACCOUNT_ROOT, "*", f"arn:aws:iam::{SERVICE_ACCOUNT}:user/u", "arn:aws:iam::1:role/r"):
        assert not re.fullmatch(pattern, refused), refused


def test_the_service_names_exactly_its_roles_that_assume_verifier_roles() -> None:
    """The service's VerifierCallerRoleArns output (what ServiceRoleArns takes) lists the roles
    whose policies allow sts:AssumeRole on the verifier role, no more and no fewer."""
    cfn = translated()
    resolver = Resolver(cfn)
    verifier = f"arn:aws:iam::*:role/{SERVICE['VerifierRoleName']['Default']}"
    assuming = {
        logical_id
        for logical_id, res in cfn["Resources"].items()
        if res["Type"] == "AWS::IAM::Role"
        for policy in res["Properties"].get("Policies", [])
        for statement in resolver.resolve(policy["PolicyDocument"]["Statement"])
        if "sts:AssumeRole" in statement["Action"] and verifier in statement["Resource"]
    }
    output = cfn["Outputs"]["VerifierCallerRoleArns"]["Value"]["Fn::Join"][1]
    assert {item["Fn::GetAtt"][0] for item in output} == assuming
    assert assuming == {"RequesterApiFunctionRole", "AttachRolesFunctionRole"}


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
