"""The start-up check: every resource the translated template declares exists in moto, with the
properties that matter.

moto's CloudFormation answers ``CREATE_COMPLETE`` while it skips or simplifies some resources.
A template change that the local stack does not handle must stop it loudly, not leave a
service that silently differs from the one AWS would run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from local.deployed import DeployedStack


class StackMismatch(RuntimeError):
    """The deployed stack differs from the translated template."""


def _table(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    dynamodb = stack.client("dynamodb")
    name = stack.physical_ids[logical_id]
    table = dynamodb.describe_table(TableName=name)["Table"]
    problems = []
    if table["KeySchema"] != props["KeySchema"]:
        problems.append(f"key schema {table['KeySchema']}")
    expected_attrs = {(a["AttributeName"], a["AttributeType"]) for a in props.get("AttributeDefinitions", [])}
    actual_attrs = {(a["AttributeName"], a["AttributeType"]) for a in table.get("AttributeDefinitions", [])}
    if expected_attrs != actual_attrs:
        problems.append(f"attribute definitions {sorted(actual_attrs)}")
    expected_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in props.get("GlobalSecondaryIndexes", [])
    }
    actual_indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    if expected_indexes != actual_indexes:
        problems.append(f"global secondary indexes {actual_indexes}")
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        described = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if (
            described.get("TimeToLiveStatus") != "ENABLED"
            or described.get("AttributeName") != ttl["AttributeName"]
        ):
            problems.append(f"time to live {described}")
    return problems


def _topic(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    stack.client("sns").get_topic_attributes(TopicArn=stack.physical_ids[logical_id])
    return []


def _role(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    iam = stack.client("iam")
    name = stack.physical_ids[logical_id]
    iam.get_role(RoleName=name)
    expected = sorted(policy["PolicyName"] for policy in props.get("Policies", []))
    actual = sorted(iam.list_role_policies(RoleName=name)["PolicyNames"])
    return [] if expected == actual else [f"inline policies {actual}, template {expected}"]


def _function(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    config = stack.client("lambda").get_function_configuration(FunctionName=stack.physical_ids[logical_id])
    problems = []
    expected_env = set((props.get("Environment") or {}).get("Variables", {}))
    actual_env = set(((config.get("Environment") or {}).get("Variables")) or {})
    if expected_env != actual_env:
        problems.append(f"environment {sorted(actual_env)}, template {sorted(expected_env)}")
    for key in ("Handler", "Runtime", "Timeout", "MemorySize"):
        if key in props and config.get(key) != props[key]:
            problems.append(f"{key} {config.get(key)!r}, template {props[key]!r}")
    if len(config.get("Layers") or []) != len(props.get("Layers", [])):
        problems.append(f"layers {config.get('Layers')}")
    if logical_id not in stack.functions:
        problems.append("not known to the Lambda runtime")
    return problems


def _permissions(stack: DeployedStack) -> list[str]:
    """Each function has one resource-policy statement per declared permission."""
    declared: Counter[str] = Counter()
    for logical_id, resource in stack.template.resources("AWS::Lambda::Permission").items():
        if stack.declared(logical_id):
            target = resource["Properties"]["FunctionName"]
            name = target["Ref"] if isinstance(target, dict) else target
            named = stack.template.cfn["Resources"].get(name, {})
            if named.get("Type") == "AWS::Lambda::Alias":  # locally the alias is its function
                name = named["Properties"]["FunctionName"]["Ref"]
            declared[name] += 1
    problems = []
    lambda_ = stack.client("lambda")
    for function, count in declared.items():
        policy = json.loads(lambda_.get_policy(FunctionName=stack.physical_ids[function])["Policy"])
        if len(policy.get("Statement", [])) != count:
            problems.append(f"{function}: {len(policy.get('Statement', []))} permissions, template {count}")
    return problems


def _layer(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    arn = stack.layer_arns.get(logical_id)
    if arn is None:
        return ["not published"]
    name, version = arn.split(":")[6:8]
    stack.client("lambda").get_layer_version(LayerName=name, VersionNumber=int(version))
    return []


def _state_machine(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.physical_ids[logical_id]
    )
    definition = described["definition"]
    json.loads(definition)
    left = [name for name in props.get("DefinitionSubstitutions", {}) if "${" + name + "}" in definition]
    return [f"definition substitutions not applied: {left}"] if left else []


def _http_api(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    apigw = stack.client("apigatewayv2")
    api_id = stack.api_ids[logical_id]
    routes = {route["RouteKey"]: route for route in apigw.get_routes(ApiId=api_id)["Items"]}
    problems = []
    for path, methods in props["Body"].get("paths", {}).items():
        for method, operation in methods.items():
            key = f"{method.upper()} {path}"
            route = routes.pop(key, None)
            if route is None:
                problems.append(f"route {key} missing")
                continue
            guarded = any(
                name != "NONE" for requirement in operation.get("security", []) for name in requirement
            )
            if guarded != (route.get("AuthorizationType") == "JWT"):
                problems.append(f"route {key}: authorization {route.get('AuthorizationType')}")
    problems.extend(f"route {key} not in the template" for key in routes)
    served = {route.route_key for route in stack.routes}
    if served != {route["RouteKey"] for route in apigw.get_routes(ApiId=api_id)["Items"]}:
        problems.append("the front does not serve exactly the API's routes")
    return problems


def _stage(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    api = props["ApiId"]["Ref"]
    stack.client("apigatewayv2").get_stage(ApiId=stack.api_ids[api], StageName=props["StageName"])
    return []


def _alarm(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    found = stack.client("cloudwatch").describe_alarms(AlarmNames=[stack.physical_ids[logical_id]])
    alarms = found["MetricAlarms"] + found.get("CompositeAlarms", [])
    if not alarms:
        return ["missing"]
    metric = props.get("MetricName")
    return (
        []
        if metric is None or alarms[0].get("MetricName") == metric
        else [f"metric {alarms[0].get('MetricName')}"]
    )


def _subscription(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    arn = stack.physical_ids[logical_id]
    attributes = stack.client("sns").get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    return (
        []
        if attributes.get("Protocol") == props.get("Protocol")
        else [f"protocol {attributes.get('Protocol')}"]
    )


def _log_group(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    name = stack.physical_ids[logical_id]
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    group = next((group for group in groups if group["logGroupName"] == name), None)
    if group is None:
        return ["missing"]
    return []


def _dashboard(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    body = stack.client("cloudwatch").get_dashboard(DashboardName=stack.physical_ids[logical_id])[
        "DashboardBody"
    ]
    json.loads(body)
    return []


def _key(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    """The key as declared: its spec and usage (moto's CloudFormation would make any key
    symmetric), state, rotation, description and the statements of its policy."""
    kms = stack.client("kms")
    key_id = stack.physical_ids[logical_id]
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    problems = []
    declared = {
        "KeySpec": props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        "KeyUsage": props.get("KeyUsage", "ENCRYPT_DECRYPT"),
        "Enabled": str(stack.literal(props.get("Enabled", True))).lower() == "true",
    }
    for name, expected in declared.items():
        expected = stack.literal(expected)
        if metadata.get(name) != expected:
            problems.append(f"{name} {metadata.get(name)!r}, template {expected!r}")
    rotation = str(stack.literal(props.get("EnableKeyRotation", False))).lower() == "true"
    if kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] != rotation:
        problems.append(f"key rotation not {'on' if rotation else 'off'}")
    if "Description" in props and (not metadata.get("Description") or "${" in metadata["Description"]):
        problems.append(f"description {metadata.get('Description')!r}")
    if isinstance(props.get("KeyPolicy"), dict):
        expected_sids = [statement.get("Sid") for statement in props["KeyPolicy"].get("Statement", [])]
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        actual_sids = [statement.get("Sid") for statement in policy.get("Statement", [])]
        if actual_sids != expected_sids:
            problems.append(f"key policy statements {actual_sids}, template {expected_sids}")
    return problems


def _rule(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    """The rule with its schedule (or pattern) and its targets (``local.scheduler`` fires the
    scheduled ones)."""
    events = stack.client("events")
    name = stack.physical_ids[logical_id]
    bus = props.get("EventBusName")
    on_bus = {"EventBusName": bus} if isinstance(bus, str) else {}
    rule = events.describe_rule(Name=name, **on_bus)
    problems = []
    if ("ScheduleExpression" in props) != bool(rule.get("ScheduleExpression")):
        problems.append(f"schedule {rule.get('ScheduleExpression')!r}")
    expected = sorted(target["Id"] for target in props.get("Targets", []))
    actual = sorted(target["Id"] for target in events.list_targets_by_rule(Rule=name, **on_bus)["Targets"])
    if actual != expected:
        problems.append(f"targets {actual}, template {expected}")
    return problems


Check = Callable[[DeployedStack, str, dict[str, Any]], list[str]]


def _alias(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> list[str]:
    """Locally an alias or a version is its function (local.deploy._aliases_as_functions): it
    must exist."""
    stack.client("lambda").get_function_configuration(
        FunctionName=stack.physical_ids[logical_id].rsplit(":", 1)[0]
    )
    return []


CHECKS: dict[str, Check] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::SNS::Topic": _topic,
    "AWS::IAM::Role": _role,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::LayerVersion": _layer,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::ApiGatewayV2::Api": _http_api,
    "AWS::ApiGatewayV2::Stage": _stage,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::SNS::Subscription": _subscription,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::KMS::Key": _key,
    "AWS::Events::Rule": _rule,
    "AWS::Lambda::Alias": _alias,
    "AWS::Lambda::Version": _alias,
}
# Checked as a whole by _permissions (moto gives permissions no physical id).
_CHECKED_TOGETHER = {"AWS::Lambda::Permission"}


def check_stack(stack: DeployedStack) -> None:
    """Raises ``StackMismatch`` listing every declared resource that is missing or differs."""
    problems: list[str] = []
    for logical_id, resource in stack.template.resources().items():
        if not stack.declared(logical_id) or resource["Type"] in _CHECKED_TOGETHER:
            continue
        check = CHECKS.get(resource["Type"])
        if check is None:
            # A type moto's CloudFormation handles but nothing here checks: it must at least exist.
            if logical_id not in stack.physical_ids:
                problems.append(f"{logical_id} ({resource['Type']}): not created, and the local stack cannot")
            continue
        if logical_id not in stack.physical_ids and resource["Type"] != "AWS::Lambda::LayerVersion":
            problems.append(f"{logical_id} ({resource['Type']}): not created")
            continue
        try:
            found = check(stack, logical_id, resource.get("Properties", {}))
        except Exception as exc:
            found = [f"cannot be read: {exc}"]
        problems.extend(f"{logical_id} ({resource['Type']}): {problem}" for problem in found)
    problems.extend(_permissions(stack))
    if problems:
        raise StackMismatch("the local stack differs from template.yaml:\n  " + "\n  ".join(problems))
