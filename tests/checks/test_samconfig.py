"""samconfig.toml: each environment deploys with `sam deploy --config-env <name>`, read through the
SAM CLI's own config reader and parameter parser, with values the template accepts."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig
from samcli.yamlhelper import yaml_parse

from tests.checks.cfn import translated
from tests.support import ROOT, template

ENVIRONMENTS = ["default", "dev", "prod"]
PARAMETERS: dict[str, Any] = template()["Parameters"]
VERIFIER_TEMPLATE = yaml_parse((ROOT / "templates" / "verifier-role.yaml").read_text())
ADMIN_EXTERNAL_ID = VERIFIER_TEMPLATE["Parameters"]["ExternalId"]


def _deploy(env: str) -> dict[str, Any]:
    """What `sam deploy --config-env env` reads: the env's global and deploy parameters."""
    return SamConfig(str(ROOT)).get_all(["deploy"], "parameters", env)


def _overrides(env: str) -> dict[str, str]:
    return CfnParameterOverridesType().convert(_deploy(env).get("parameter_overrides", []), None, None)


def _refusal(spec: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse ``value`` for a parameter, or None."""
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return f"not one of {spec['AllowedValues']}"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return f"does not match {spec['AllowedPattern']}"
    if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", 4096):
        return "wrong length"
    if spec["Type"] == "Number" and not (
        float(spec.get("MinValue", "-inf")) <= float(value) <= float(spec.get("MaxValue", "inf"))
    ):
        return f"outside {spec.get('MinValue')}..{spec.get('MaxValue')}"
    return None


def test_the_file_is_toml_with_the_environments() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    assert set(ENVIRONMENTS) <= config.keys()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_has_what_sam_deploy_needs(env: str) -> None:
    deploy = _deploy(env)
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", deploy.get("stack_name", "")), "stack_name"
    assert re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", deploy.get("region", "")), "region"
    assert deploy.get("resolve_s3") is True or deploy.get("s3_bucket"), "an artifact bucket (resolve_s3)"
    assert isinstance(deploy.get("confirm_changeset"), bool)
    capabilities = deploy.get("capabilities", "").split()
    assert "CAPABILITY_IAM" in capabilities
    named_roles = [
        k
        for k, v in translated()["Resources"].items()
        if v["Type"] == "AWS::IAM::Role" and "RoleName" in v["Properties"]
    ]
    assert not named_roles or "CAPABILITY_NAMED_IAM" in capabilities, named_roles


def test_environments_deploy_to_different_stacks_and_prefixes() -> None:
    assert len({_deploy(env)["stack_name"] for env in ENVIRONMENTS}) == len(ENVIRONMENTS)
    assert len({_deploy(env)["s3_prefix"] for env in ENVIRONMENTS}) == len(ENVIRONMENTS)


def test_production_shows_the_change_set_before_it_runs() -> None:
    assert _deploy("prod")["confirm_changeset"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_overrides_are_values_the_template_accepts(env: str) -> None:
    overrides = _overrides(env)
    assert overrides, "no parameter_overrides"
    unknown = sorted(overrides.keys() - PARAMETERS.keys())
    assert not unknown, f"not parameters of template.yaml: {unknown}"
    refused = {name: why for name, value in overrides.items() if (why := _refusal(PARAMETERS[name], value))}
    assert not refused, refused
    required = {name for name, spec in PARAMETERS.items() if "Default" not in spec}
    missing = sorted(required - overrides.keys())
    assert not missing, f"parameters without a default need a value: {missing}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_external_id_is_one_administrators_can_enter(env: str) -> None:
    """The verifier role requires the external id the service sends: an empty one would make
    every role check fail."""
    external_id = _overrides(env).get("VerifierExternalId", "")
    assert _refusal(ADMIN_EXTERNAL_ID | {"Type": "String"}, external_id) is None, external_id


def test_the_refusal_rules_refuse() -> None:
    assert _refusal(PARAMETERS["LogRetentionDays"], "8")
    assert _refusal(PARAMETERS["ApprovalTimeoutSeconds"], "59")
    assert _refusal(PARAMETERS["VerifierRoleName"], "bad name!")
    assert _refusal(PARAMETERS["LogLevel"], "TRACE")
