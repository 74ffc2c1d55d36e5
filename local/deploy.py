"""Deploy the translated template into moto, then create what moto's CloudFormation drops.

moto's CloudFormation creates the table, topics, roles, functions (with their environment
resolved) and permissions, and reports ``CREATE_COMPLETE`` for the rest. What it drops or gets
wrong (see ../shared/LOCAL_STACK_NOTES.md) is created here through moto's own APIs, still read
from the translated template:

- Types it has no model for (the HTTP API and its stage, alarms, subscriptions), and KMS keys
  (which it creates symmetric whatever their ``KeySpec`` and ``KeyUsage``): placed before the
  deploy and created after it by ``local.emulated``.
- State machines: created again in the backend that executes, with ``DefinitionSubstitutions``
  applied (moto ignores them), under the name and ARN CloudFormation gave them, so the
  functions' ``STATE_MACHINE_ARN`` points at the one that runs.
- Layers: published, and set on the functions that declare them.
- DynamoDB time to live and point-in-time recovery.

Every intrinsic function that this module needs the value of (in the API body, in definition
substitutions, in the properties of what ``local.emulated`` creates) is resolved by moto itself:
it is added to the stack as an output and read back, so there is no second intrinsic resolver.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Any

from local.deployed import STACK_NAME, DeployedStack, FunctionSpec, JwtAuthorizerConfig, Route
from local.emulated import EMULATIONS, EmulationError, emulated_here, evaluate_conditions, replace_references
from local.template import ARTIFACT_BUCKET, TranslatedTemplate

_PLACEHOLDER = "__local_stack_value_{}__"

log = logging.getLogger(__name__)


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


class OutputResolver:
    """Lets moto's CloudFormation resolve intrinsic functions for us, through stack outputs."""

    def __init__(self) -> None:
        self.expressions: dict[str, Any] = {}
        self.values: dict[str, str] = {}

    def defer(self, tree: Any) -> Any:
        """``tree`` with each intrinsic function replaced by a placeholder, filled in by ``fill``."""
        if _is_intrinsic(tree):
            key = f"LocalStackValue{len(self.expressions)}"
            self.expressions[key] = tree
            return _PLACEHOLDER.format(key)
        if isinstance(tree, dict):
            return {name: self.defer(value) for name, value in tree.items()}
        if isinstance(tree, list):
            return [self.defer(value) for value in tree]
        return tree

    def add_outputs(self, cfn: dict[str, Any]) -> None:
        outputs = cfn.setdefault("Outputs", {})
        for key, expression in self.expressions.items():
            outputs[key] = {"Value": expression}

    def read_outputs(self, outputs: dict[str, str]) -> None:
        missing = sorted(set(self.expressions) - set(outputs))
        if missing:
            raise DeployError(f"moto did not resolve the outputs {missing}")
        self.values = {key: outputs[key] for key in self.expressions}

    def fill(self, tree: Any) -> Any:
        if isinstance(tree, str):
            for key, value in self.values.items():
                placeholder = _PLACEHOLDER.format(key)
                if tree == placeholder:
                    return value
                tree = tree.replace(placeholder, value)
            return tree
        if isinstance(tree, dict):
            return {name: self.fill(value) for name, value in tree.items()}
        if isinstance(tree, list):
            return [self.fill(value) for value in tree]
        return tree


class DeployError(RuntimeError):
    """The template could not be deployed as declared."""


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


class _SkippedTypes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No Moto CloudFormation support for")


def _quiet_moto() -> None:
    """moto warns for every resource type its CloudFormation skips; this module creates those."""
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
    logging.getLogger("moto").addFilter(_SkippedTypes())


def deploy(template: TranslatedTemplate, parameters: dict[str, str], endpoint: str) -> DeployedStack:
    """Deploy ``template`` with ``parameters`` into the moto at ``endpoint``; raises DeployError."""
    _quiet_moto()
    stack = DeployedStack(template=template, endpoint=endpoint, parameters=dict(parameters))
    cfn = json.loads(json.dumps(template.cfn))  # a copy to adapt for moto
    aliases = _aliases_as_functions(cfn)
    try:
        stack.conditions = evaluate_conditions(cfn, parameters)
        emulated = _place_emulated(stack, cfn)
    except EmulationError as exc:
        raise DeployError(str(exc)) from exc
    resolver = OutputResolver()
    deferred = {logical_id: resolver.defer(props) for logical_id, props in emulated.items()}
    deferred.update(
        (logical_id, resolver.defer(resource.get("Properties", {})))
        for logical_id, resource in cfn["Resources"].items()
        if resource["Type"] in _COMPLETED_HERE and stack.declared(logical_id)
    )
    resolver.add_outputs(cfn)

    _upload_artifacts(stack)
    cloudformation = stack.client("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(cfn),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as exc:
        raise DeployError(f"moto's CloudFormation refused the template: {exc}") from exc
    described = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(f"stack {described['StackStatus']}: {described.get('StackStatusReason')}")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    resolver.read_outputs(outputs)
    stack.outputs = {key: value for key, value in outputs.items() if key not in resolver.expressions}
    for resource in cloudformation.describe_stack_resources(StackName=STACK_NAME)["StackResources"]:
        if resource.get("LogicalResourceId") and resource.get("PhysicalResourceId"):
            stack.physical_ids[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    for alias, (function, name) in aliases.items():
        arn = stack.client("lambda").get_function_configuration(FunctionName=stack.physical_ids[function])
        stack.physical_ids[alias] = f"{arn['FunctionArn']}:{name}"

    resolved = {logical_id: resolver.fill(props) for logical_id, props in deferred.items()}
    _complete_tables(stack, resolved)
    _publish_layers(stack, resolved)
    _create_state_machines(stack, resolved)
    resource_types = stack.template.cfn["Resources"]
    for logical_id in sorted(emulated, key=lambda name: EMULATIONS[resource_types[name]["Type"]].order):
        try:
            EMULATIONS[resource_types[logical_id]["Type"]].create(stack, logical_id, resolved[logical_id])
        except Exception as exc:
            raise DeployError(f"{logical_id}: could not be created: {exc}") from exc
    stack.functions = _function_specs(stack)
    stack.routes = _read_routes(stack)
    return stack


def _aliases_as_functions(cfn: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Take the functions' aliases (SAM's ``AutoPublishAlias``: ``AWS::Lambda::Alias``, which
    moto's CloudFormation has no model for) out of ``cfn``, every reference to one made a
    reference to its function: locally every invocation runs the function's code as deployed,
    which is what the alias names in AWS. Returns alias -> (function, alias name)."""
    aliases = {
        logical_id: (resource["Properties"]["FunctionName"]["Ref"], str(resource["Properties"]["Name"]))
        for logical_id, resource in cfn["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Alias"
    }
    # The versions they name go too: locally there is one version of each function, its code.
    versions = {
        logical_id: (resource["Properties"]["FunctionName"]["Ref"], "$LATEST")
        for logical_id, resource in cfn["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Version"
    }
    aliases.update(versions)
    if not aliases:
        return aliases
    for logical_id in aliases:
        del cfn["Resources"][logical_id]

    def rewrite(tree: Any) -> Any:
        if isinstance(tree, list):
            return [rewrite(item) for item in tree]
        if not isinstance(tree, dict):
            return tree
        if len(tree) == 1 and tree.get("Ref") in aliases:
            return {"Fn::GetAtt": [aliases[tree["Ref"]][0], "Arn"]}
        if len(tree) == 1 and "Fn::Sub" in tree:
            args = tree["Fn::Sub"]
            text, variables = (args, None) if isinstance(args, str) else (args[0], args[1])
            for alias, (function, _) in aliases.items():
                text = text.replace("${" + alias + "}", "${" + function + ".Arn}")
            return {"Fn::Sub": text if variables is None else [text, rewrite(variables)]}
        return {key: rewrite(value) for key, value in tree.items()}

    for section in ("Resources", "Outputs"):
        if section in cfn:
            cfn[section] = rewrite(cfn[section])
    return aliases


def _place_emulated(stack: DeployedStack, cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Take out of ``cfn`` the declared resources moto's CloudFormation cannot create (or gets
    wrong), place them (physical ids, attributes), and put their values where the template
    refers to them. Returns their properties, references replaced, to create after the deploy."""
    emulated = {
        logical_id: resource
        for logical_id, resource in cfn["Resources"].items()
        if stack.declared(logical_id) and emulated_here(resource["Type"])
    }
    unknown = sorted({resource["Type"] for resource in emulated.values()} - set(EMULATIONS))
    if unknown:
        raise EmulationError(
            f"template.yaml declares {', '.join(unknown)}, which moto's CloudFormation cannot create "
            "and the local stack does not emulate yet: add it to local/emulated.py"
        )
    placed = {}
    for logical_id, resource in emulated.items():
        placed[logical_id] = EMULATIONS[resource["Type"]].place(
            stack, logical_id, resource.get("Properties", {})
        )
        stack.physical_ids[logical_id] = placed[logical_id].physical_id
    for logical_id in emulated:
        del cfn["Resources"][logical_id]
    for logical_id, resource in cfn["Resources"].items():
        cfn["Resources"][logical_id] = replace_references(resource, placed)
        depends = resource.get("DependsOn")
        if depends:
            depends = [depends] if isinstance(depends, str) else depends
            kept = [name for name in depends if name not in emulated]
            if kept:
                cfn["Resources"][logical_id]["DependsOn"] = kept
            else:
                cfn["Resources"][logical_id].pop("DependsOn")
    cfn["Outputs"] = {
        name: replace_references(output, placed) for name, output in cfn.get("Outputs", {}).items()
    }
    return {
        logical_id: replace_references(resource.get("Properties", {}), placed)
        for logical_id, resource in emulated.items()
    }


# Resource types whose properties this module reads after the deploy (resolved by moto).
_COMPLETED_HERE = {
    "AWS::DynamoDB::Table",
    "AWS::Lambda::LayerVersion",
    "AWS::StepFunctions::StateMachine",
}


def _upload_artifacts(stack: DeployedStack) -> None:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    for artifact in stack.template.artifacts.values():
        if not artifact.path.is_dir():
            raise DeployError(f"{artifact.logical_id}: the folder {artifact.path} does not exist")
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=artifact.key, Body=_zip_folder(artifact.path))


def _resources_of(stack: DeployedStack, resolved: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        logical_id: props
        for logical_id, props in resolved.items()
        if stack.template.cfn["Resources"][logical_id]["Type"] == resource_type and stack.declared(logical_id)
    }


def _complete_tables(stack: DeployedStack, resolved: dict[str, Any]) -> None:
    dynamodb = stack.client("dynamodb")
    for logical_id, props in _resources_of(stack, resolved, "AWS::DynamoDB::Table").items():
        table = stack.physical_ids[logical_id]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )


def _publish_layers(stack: DeployedStack, resolved: dict[str, Any]) -> None:
    lambda_ = stack.client("lambda")
    for logical_id, props in _resources_of(stack, resolved, "AWS::Lambda::LayerVersion").items():
        content = props["Content"]
        published = lambda_.publish_layer_version(
            LayerName=props.get("LayerName", logical_id),
            Description=props.get("Description", ""),
            Content={"S3Bucket": content["S3Bucket"], "S3Key": content["S3Key"]},
            CompatibleRuntimes=props.get("CompatibleRuntimes", []),
        )
        stack.layer_arns[logical_id] = published["LayerVersionArn"]
    for logical_id in stack.template.resources("AWS::Lambda::Function"):
        if not stack.declared(logical_id):
            continue
        layers = stack.template.cfn["Resources"][logical_id]["Properties"].get("Layers", [])
        arns = [
            stack.layer_arns[layer["Ref"]] for layer in layers if isinstance(layer, dict) and "Ref" in layer
        ]
        if arns:
            lambda_.update_function_configuration(FunctionName=stack.physical_ids[logical_id], Layers=arns)


def substitute(definition: str, substitutions: dict[str, str]) -> str:
    """``DefinitionSubstitutions`` as Step Functions applies them: each ``${Name}`` of the map."""
    for name, value in substitutions.items():
        definition = definition.replace("${" + name + "}", str(value))
    return definition


def _create_state_machines(stack: DeployedStack, resolved: dict[str, Any]) -> None:
    sfn = stack.client("stepfunctions")
    for logical_id, props in _resources_of(stack, resolved, "AWS::StepFunctions::StateMachine").items():
        arn = stack.physical_ids[logical_id]
        definition = props.get("DefinitionString")
        if definition is None:
            definition = json.dumps(props["Definition"])
        definition = substitute(definition, props.get("DefinitionSubstitutions", {}))
        kwargs: dict[str, Any] = {
            "name": arn.split(":")[-1],
            "definition": definition,
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType", "STANDARD"),
        }
        try:
            created = sfn.create_state_machine(**kwargs)
        except Exception as exc:
            raise DeployError(
                f"{logical_id}: the state machine engine refused the definition: {exc}"
            ) from exc
        if created["stateMachineArn"] != arn:
            raise DeployError(f"{logical_id}: created as {created['stateMachineArn']}, expected {arn}")


def _function_specs(stack: DeployedStack) -> dict[str, FunctionSpec]:
    lambda_ = stack.client("lambda")
    specs = {}
    for logical_id in stack.template.resources("AWS::Lambda::Function"):
        if not stack.declared(logical_id):
            continue
        config = lambda_.get_function_configuration(FunctionName=stack.physical_ids[logical_id])
        variables = (config.get("Environment") or {}).get("Variables") or {}
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            code_dir=stack.template.code_dir(logical_id),
            layer_dirs=tuple(
                stack.template.code_dir(layer) for layer in stack.template.function_layers(logical_id)
            ),
            # CloudFormation passes every variable as a string; moto keeps numbers as numbers.
            environment={key: str(value) for key, value in variables.items()},
            timeout=int(config.get("Timeout", 3)),
            memory_size=int(config.get("MemorySize", 128)),
        )
    return specs


def _read_routes(stack: DeployedStack) -> list[Route]:
    """The routes as moto's API Gateway now holds them (what the front serves)."""
    apigw = stack.client("apigatewayv2")
    routes = []
    for api_id in stack.api_ids.values():
        integrations = {item["IntegrationId"]: item for item in apigw.get_integrations(ApiId=api_id)["Items"]}
        for item in apigw.get_routes(ApiId=api_id)["Items"]:
            method, path = item["RouteKey"].split(" ", 1)
            integration = integrations[item["Target"].removeprefix("integrations/")]
            uri = integration["IntegrationUri"]
            function_arn = (
                uri.split("/functions/", 1)[1].removesuffix("/invocations") if "/functions/" in uri else uri
            )
            authorizer = None
            if item.get("AuthorizationType") == "JWT":
                # moto has no GetAuthorizers: read each route's own.
                found = apigw.get_authorizer(ApiId=api_id, AuthorizerId=item["AuthorizerId"])
                jwt = found["JwtConfiguration"]
                authorizer = JwtAuthorizerConfig(
                    issuer=jwt["Issuer"],
                    audience=tuple(jwt["Audience"]),
                    identity_source=found["IdentitySource"][0],
                )
            routes.append(
                Route(
                    method=method,
                    path=path,
                    function_arn=function_arn,
                    payload_format_version=integration.get("PayloadFormatVersion", "2.0"),
                    authorizer=authorizer,
                )
            )
    return routes
