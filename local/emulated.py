"""Resource types that moto's CloudFormation cannot create, created here through moto's APIs.

moto's CloudFormation skips types it has no model for, and a reference to a skipped resource
(``Ref``, ``Fn::GetAtt``, ``${Name}`` in ``Fn::Sub``) then fails the whole stack or resolves to
nonsense. So before the deploy each such resource gets its physical id and attributes here, the
references to it are replaced by those values, and the resource is left out of what moto's
CloudFormation sees; after the deploy it is created with its properties resolved by moto.

Which types need this is asked of moto itself (its model registry), so a type that a template
change introduces and that nobody emulates stops the local stack with a clear message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.cloudformation.parsing import get_model_map

from local.deployed import STACK_NAME, DeployedStack
from local.moto_server import ACCOUNT_ID
from local.template import REGION


class EmulationError(RuntimeError):
    """A resource the local stack cannot create."""


def moto_creates(resource_type: str) -> bool:
    return resource_type in get_model_map()


# ---- conditions -----------------------------------------------------------------------------


def evaluate_conditions(cfn: dict[str, Any], parameters: dict[str, str]) -> dict[str, bool]:
    """The template's conditions for these parameter values (the condition functions are a
    closed set: Equals, Not, And, Or, Condition, over Ref to parameters)."""
    declared = cfn.get("Parameters", {})
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
    values.update(parameters)
    values.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws"})
    conditions = cfn.get("Conditions", {})
    cache: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return values[node["Ref"]]
        if isinstance(node, dict):
            return truth(node)
        return node

    def truth(node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((function, args),) = node.items()
            if function == "Fn::Equals":
                return str(value(args[0])) == str(value(args[1]))
            if function == "Fn::Not":
                return not truth(args[0])
            if function == "Fn::And":
                return all(truth(arg) for arg in args)
            if function == "Fn::Or":
                return any(truth(arg) for arg in args)
            if function == "Condition":
                return named(args)
        raise EmulationError(f"cannot evaluate the condition {json.dumps(node)}")

    def named(name: str) -> bool:
        if name not in cache:
            cache[name] = truth(conditions[name])
        return cache[name]

    return {name: named(name) for name in conditions}


# ---- references -----------------------------------------------------------------------------


@dataclass
class Placed:
    """An emulated resource's physical id and attributes, known before the deploy."""

    physical_id: str
    attributes: dict[str, str]


def replace_references(tree: Any, placed: dict[str, Placed]) -> Any:
    """``tree`` with every reference to a placed resource replaced by its value."""
    if isinstance(tree, list):
        return [replace_references(item, placed) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        ((key, args),) = tree.items()
        if key == "Ref" and args in placed:
            return placed[args].physical_id
        if key == "Fn::GetAtt":
            name, attribute = args if isinstance(args, list) else args.split(".", 1)
            if name in placed:
                if attribute not in placed[name].attributes:
                    raise EmulationError(f"Fn::GetAtt {name}.{attribute}: the local stack does not know it")
                return placed[name].attributes[attribute]
        if key == "Fn::Sub":
            text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
            text = _substitute_placed(text, placed)
            variables = replace_references(variables, placed)
            return {"Fn::Sub": text if not variables else [text, variables]}
    return {key: replace_references(value, placed) for key, value in tree.items()}


def _substitute_placed(text: str, placed: dict[str, Placed]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, _, attribute = match.group(1).partition(".")
        if name not in placed:
            return match.group(0)
        if not attribute:
            return placed[name].physical_id
        if attribute not in placed[name].attributes:
            raise EmulationError(f"${{{name}.{attribute}}}: the local stack does not know it")
        return placed[name].attributes[attribute]

    return re.sub(r"\$\{([A-Za-z0-9]+(?:\.[A-Za-z0-9.]+)?)\}", replace, text)


# ---- the emulated types ---------------------------------------------------------------------


@dataclass(frozen=True)
class Emulation:
    """How the local stack places and creates one resource type. ``create`` runs after the
    deploy, in ``order``, with the properties resolved by moto."""

    place: Callable[[DeployedStack, str, dict[str, Any]], Placed]
    create: Callable[[DeployedStack, str, dict[str, Any]], None]
    order: int


def _place_api(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> Placed:
    # The API exists before the stack, so its id can stand in every reference to it.
    api_id = stack.client("apigatewayv2").create_api(Name=logical_id, ProtocolType="HTTP")["ApiId"]
    stack.api_ids[logical_id] = api_id
    endpoint = f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    return Placed(api_id, {"ApiId": api_id, "ApiEndpoint": endpoint})


def _create_api(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> None:
    """Import the translated OpenAPI body; set its JWT authorizers on the routes that use
    them (moto's import ignores ``security``)."""
    body = props.get("Body")
    if body is None:
        raise EmulationError(f"{logical_id}: only HTTP APIs defined by an OpenAPI Body are supported")
    apigw = stack.client("apigatewayv2")
    api_id = stack.api_ids[logical_id]
    apigw.reimport_api(ApiId=api_id, Body=json.dumps(body))
    authorizer_ids = {}
    for name, scheme in body.get("components", {}).get("securitySchemes", {}).items():
        config = scheme.get("x-amazon-apigateway-authorizer", {})
        if config.get("type") != "jwt":
            raise EmulationError(f"{logical_id}: authorizer {name} is not a JWT authorizer")
        jwt = config["jwtConfiguration"]
        authorizer_ids[name] = apigw.create_authorizer(
            ApiId=api_id,
            Name=name,
            AuthorizerType="JWT",
            IdentitySource=[config["identitySource"]],
            JwtConfiguration={"Issuer": jwt["issuer"], "Audience": list(jwt["audience"])},
        )["AuthorizerId"]
    routes = {route["RouteKey"]: route["RouteId"] for route in apigw.get_routes(ApiId=api_id)["Items"]}
    for path, methods in body.get("paths", {}).items():
        for method, operation in methods.items():
            names = [name for requirement in operation.get("security", []) for name in requirement]
            guarded = [name for name in names if name in authorizer_ids]
            if guarded:
                apigw.update_route(
                    ApiId=api_id,
                    RouteId=routes[f"{method.upper()} {path}"],
                    AuthorizationType="JWT",
                    AuthorizerId=authorizer_ids[guarded[0]],
                )


def _place_stage(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> Placed:
    return Placed(str(props["StageName"]), {})


def _create_stage(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> None:
    stack.client("apigatewayv2").create_stage(
        ApiId=props["ApiId"], StageName=props["StageName"], AutoDeploy=bool(props.get("AutoDeploy"))
    )


def _alarm_name(logical_id: str, props: dict[str, Any]) -> str:
    name = props.get("AlarmName")
    return name if isinstance(name, str) else f"{STACK_NAME}-{logical_id}"


def _place_alarm(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> Placed:
    name = _alarm_name(logical_id, props)
    return Placed(name, {"Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{name}"})


_ALARM_KEYS = (
    "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic",
    "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
    "TreatMissingData", "AlarmActions", "OKActions", "InsufficientDataActions", "Unit", "Metrics",
    "ActionsEnabled", "ThresholdMetricId", "EvaluateLowSampleCountPercentile",
)  # fmt: skip


def _create_alarm(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> None:
    kwargs = {key: props[key] for key in _ALARM_KEYS if key in props}
    for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if number in kwargs:
            kwargs[number] = int(kwargs[number])
    if "Threshold" in kwargs:
        kwargs["Threshold"] = float(kwargs["Threshold"])
    if "ActionsEnabled" in kwargs:
        kwargs["ActionsEnabled"] = str(kwargs["ActionsEnabled"]).lower() == "true"
    stack.client("cloudwatch").put_metric_alarm(AlarmName=_alarm_name(logical_id, props), **kwargs)


def _place_subscription(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> Placed:
    # Its ARN is only known once it exists; nothing in the template refers to one.
    return Placed(f"pending:{logical_id}", {})


def _create_subscription(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> None:
    attributes = {
        key: json.dumps(props[key]) if isinstance(props[key], dict) else str(props[key])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery")
        if key in props
    }
    arn = stack.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    stack.physical_ids[logical_id] = arn


EMULATIONS: dict[str, Emulation] = {
    "AWS::ApiGatewayV2::Api": Emulation(_place_api, _create_api, order=0),
    "AWS::ApiGatewayV2::Stage": Emulation(_place_stage, _create_stage, order=1),
    "AWS::CloudWatch::Alarm": Emulation(_place_alarm, _create_alarm, order=1),
    "AWS::SNS::Subscription": Emulation(_place_subscription, _create_subscription, order=1),
}
