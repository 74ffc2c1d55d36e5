"""Resource types that moto's CloudFormation cannot create, or creates wrongly, created here
through moto's APIs.

moto's CloudFormation skips types it has no model for, and a reference to a skipped resource
(``Ref``, ``Fn::GetAtt``, ``${Name}`` in ``Fn::Sub``) then fails the whole stack or resolves to
nonsense. So before the deploy each such resource gets its physical id and attributes here, the
references to it are replaced by those values, and the resource is left out of what moto's
CloudFormation sees; after the deploy it is created (or completed) with its properties resolved
by moto.

Which types need this is asked of moto itself (its model registry), so a type that a template
change introduces and that nobody emulates stops the local stack with a clear message. Types
moto has a model for but gets wrong are marked ``replaces_moto``: KMS keys, which moto's
CloudFormation always creates symmetric (it ignores ``KeySpec`` and ``KeyUsage``) and with a
policy its own KMS API then fails to read.
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


def emulated_here(resource_type: str) -> bool:
    """Whether the local stack creates this type itself: moto's CloudFormation cannot, or gets it
    wrong (``Emulation.replaces_moto``)."""
    emulation = EMULATIONS.get(resource_type)
    return (emulation is not None and emulation.replaces_moto) or not moto_creates(resource_type)


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
    replaces_moto: bool = False  # moto's CloudFormation has a model for the type, a wrong one


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


def _is_true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _place_key(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> Placed:
    """The key itself, with what cannot change once it exists (its spec, usage, origin, region
    scope); its policy, description, rotation, state and tags are set after the deploy."""
    # KMS's defaults, given explicitly: moto's CreateKey leaves out what it is not given.
    kwargs: dict[str, Any] = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
    for name in ("KeySpec", "KeyUsage", "Origin", "MultiRegion"):
        if name in props:
            try:
                kwargs[name] = stack.literal(props[name])
            except ValueError as exc:
                raise EmulationError(
                    f"{logical_id}: the local stack creates KMS keys before the deploy, so {name} must be "
                    f"a value or a parameter's Ref: {exc}"
                ) from None
    if "MultiRegion" in kwargs:
        kwargs["MultiRegion"] = _is_true(kwargs["MultiRegion"])
    try:
        created = stack.client("kms").create_key(**kwargs)["KeyMetadata"]
    except Exception as exc:
        raise EmulationError(f"{logical_id}: KMS refused the key: {exc}") from exc
    return Placed(created["KeyId"], {"Arn": created["Arn"], "KeyId": created["KeyId"]})


def _create_key(stack: DeployedStack, logical_id: str, props: dict[str, Any]) -> None:
    kms = stack.client("kms")
    key_id = stack.physical_ids[logical_id]
    if "KeyPolicy" in props:
        policy = props["KeyPolicy"]
        kms.put_key_policy(
            KeyId=key_id,
            PolicyName="default",
            Policy=policy if isinstance(policy, str) else json.dumps(policy),
            BypassPolicyLockoutSafetyCheck=_is_true(props.get("BypassPolicyLockoutSafetyCheck", False)),
        )
    if "Description" in props:
        kms.update_key_description(KeyId=key_id, Description=str(props["Description"]))
    if props.get("Tags"):
        kms.tag_resource(
            KeyId=key_id, Tags=[{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in props["Tags"]]
        )
    if _is_true(props.get("EnableKeyRotation", False)):
        # KMS refuses it (UnsupportedOperationException), so CloudFormation fails; moto accepts it.
        spec = props.get("KeySpec", "SYMMETRIC_DEFAULT")
        if spec != "SYMMETRIC_DEFAULT" or props.get("Origin", "AWS_KMS") != "AWS_KMS":
            raise EmulationError(
                f"{logical_id}: EnableKeyRotation on a {spec} key: KMS rotates only symmetric "
                "encryption keys with key material it made"
            )
        rotation: dict[str, Any] = {}
        if "RotationPeriodInDays" in props:
            rotation["RotationPeriodInDays"] = int(props["RotationPeriodInDays"])
        kms.enable_key_rotation(KeyId=key_id, **rotation)
    if not _is_true(props.get("Enabled", True)):
        kms.disable_key(KeyId=key_id)


EMULATIONS: dict[str, Emulation] = {
    "AWS::KMS::Key": Emulation(_place_key, _create_key, order=0, replaces_moto=True),
    "AWS::ApiGatewayV2::Api": Emulation(_place_api, _create_api, order=0),
    "AWS::ApiGatewayV2::Stage": Emulation(_place_stage, _create_stage, order=1),
    "AWS::CloudWatch::Alarm": Emulation(_place_alarm, _create_alarm, order=1),
    "AWS::SNS::Subscription": Emulation(_place_subscription, _create_subscription, order=1),
}
