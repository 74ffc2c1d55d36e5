"""What an operator relies on, read from the CloudFormation that SAM makes of template.yaml: log
groups with a retention, alarms that reach the operator topic, a dashboard that shows the API,
the functions, the workflow and the service's own metrics, and logs that hold no secret."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from tests.checks.cfn import Resolver, translated
from tests.support import ROOT, template

CFN = translated()
RESOLVER = Resolver(CFN)
RESOURCES: dict[str, Any] = CFN["Resources"]
GLOBALS = template()["Globals"]["Function"]["Environment"]["Variables"]
FUNCTIONS = sorted(k for k, v in template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function")
TOPIC = RESOLVER.ref("OperatorAlarmTopic")
STATE_MACHINE_ARN = RESOLVER.ref("ApprovalStateMachine")
# The business metrics (EMF) the issue asks the dashboard to show: requests, decisions, expiries,
# failures, and the time from request to decision.
EMF_METRICS = [
    "ConnectionsRequested",
    "ConnectionsApproved",
    "ConnectionsRejected",
    "ConnectionsExpired",
    "ConnectionsFailed",
    "TimeToDecision",
]
# Shown on the dashboard, not emitted yet by the shared package (approval.py, the decision, is
# where it belongs). The test below fails once it is emitted: then remove it from here.
NOT_EMITTED_YET: set[str] = set()


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: RESOLVER.resolve(v.get("Properties", {})) for k, v in RESOURCES.items() if v["Type"] == kind}


LOG_GROUP_IDS = {props["LogGroupName"]: k for k, props in _of_type("AWS::Logs::LogGroup").items()}
LOG_GROUPS = {name: RESOLVER.resolve(RESOURCES[k]["Properties"]) for name, k in LOG_GROUP_IDS.items()}
ALARMS = _of_type("AWS::CloudWatch::Alarm")


def _alarms_on(namespace: str, metric: str, dimension: str, value: str) -> list[dict[str, Any]]:
    return [
        a
        for a in ALARMS.values()
        if a["Namespace"] == namespace
        and a["MetricName"] == metric
        and a["Dimensions"] == [{"Name": dimension, "Value": value}]
    ]


def _log_group_arn(name: str) -> str:
    return RESOLVER.get_att(LOG_GROUP_IDS[name], "Arn")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_logs_to_a_group_with_retention(function: str) -> None:
    # The resolver names a function after its logical id, as Lambda names the group after the function.
    group = LOG_GROUPS.get(f"/aws/lambda/{RESOLVER.ref(function)}")
    assert group, f"{function} has no AWS::Logs::LogGroup /aws/lambda/<its name>: it would keep logs forever"
    assert group["RetentionInDays"] == RESOLVER.ref("LogRetentionDays")


def test_every_log_group_has_a_retention() -> None:
    assert LOG_GROUPS and all(isinstance(g.get("RetentionInDays"), int) for g in LOG_GROUPS.values())


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_function_alarms_on_errors_and_throttles(function: str, metric: str) -> None:
    assert _alarms_on("AWS/Lambda", metric, "FunctionName", RESOLVER.ref(function)), f"no {metric} alarm"


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"])
def test_the_workflow_alarms_on_executions_that_did_not_succeed(metric: str) -> None:
    assert _alarms_on("AWS/States", metric, "StateMachineArn", STATE_MACHINE_ARN), f"no {metric} alarm"


def test_the_api_alarms_on_5xx() -> None:
    assert _alarms_on("AWS/ApiGateway", "5xx", "ApiId", RESOLVER.ref("HttpApi"))


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_every_alarm_notifies_the_operator_topic_on_the_first_occurrence(alarm: str) -> None:
    props = ALARMS[alarm]
    assert props["AlarmActions"] == [TOPIC] and props["OKActions"] == [TOPIC]
    assert (props["ComparisonOperator"], props["Threshold"], props["Statistic"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
        "Sum",
    )
    # No traffic is not an incident: a quiet service must not sit in ALARM or INSUFFICIENT_DATA.
    assert props["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(("email", "subscribed"), [("", False), ("ops@example.com", True)])
def test_the_operator_email_is_subscribed_only_when_given(email: str, subscribed: bool) -> None:
    resolver = Resolver(CFN)
    resolver.parameters["OperatorEmail"] = email
    subscriptions = {
        k: v
        for k, v in RESOURCES.items()
        if v["Type"] == "AWS::SNS::Subscription" and RESOLVER.resolve(v["Properties"]["TopicArn"]) == TOPIC
    }
    assert len(subscriptions) == 1
    (subscription,) = subscriptions.values()
    assert resolver.condition(subscription["Condition"]) is subscribed
    assert resolver.resolve(subscription["Properties"]) == {
        "TopicArn": TOPIC,
        "Protocol": "email",
        "Endpoint": email,
    }


def _dashboard() -> dict[str, Any]:
    (props,) = _of_type("AWS::CloudWatch::Dashboard").values()
    return json.loads(props["DashboardBody"])


def _widgets(kind: str) -> list[dict[str, Any]]:
    return [w["properties"] for w in _dashboard()["widgets"] if w["type"] == kind]


def _dashboard_metrics() -> list[list[Any]]:
    return [row for widget in _widgets("metric") for row in widget["metrics"]]


def test_dashboard_shows_the_service_metrics() -> None:
    shown = {tuple(row[:4]) for row in _dashboard_metrics()}
    namespace, service = GLOBALS["POWERTOOLS_METRICS_NAMESPACE"], GLOBALS["POWERTOOLS_SERVICE_NAME"]
    # powertools Metrics adds the service dimension to every metric it emits.
    assert {(namespace, m, "service", service) for m in EMF_METRICS} <= shown


def test_dashboard_shows_the_api_the_workflow_and_each_function() -> None:
    dimensions = {(row[0], row[2], row[3]) for row in _dashboard_metrics()}
    assert ("AWS/ApiGateway", "ApiId", RESOLVER.ref("HttpApi")) in dimensions
    assert ("AWS/States", "StateMachineArn", STATE_MACHINE_ARN) in dimensions
    for function in FUNCTIONS:
        assert ("AWS/Lambda", "FunctionName", RESOLVER.ref(function)) in dimensions, function


def test_dashboard_lists_every_alarm() -> None:
    listed = {arn for widget in _widgets("alarm") for arn in widget["alarms"]}
    assert listed == {RESOLVER.get_att(alarm, "Arn") for alarm in ALARMS}


def test_api_access_log_is_json_with_the_request_id_and_no_query_string() -> None:
    (stage,) = _of_type("AWS::ApiGatewayV2::Stage").values()
    settings = stage["AccessLogSettings"]
    fields = json.loads(settings["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert not [v for v in fields.values() if "querystring" in v.lower() or "requestoverride" in v.lower()]
    group = next(name for name, g in LOG_GROUPS.items() if _log_group_arn(name) == settings["DestinationArn"])
    assert LOG_GROUPS[group]["RetentionInDays"]


def test_state_machine_logs_errors_without_execution_data() -> None:
    (machine,) = _of_type("AWS::StepFunctions::StateMachine").values()
    logging = machine["LoggingConfiguration"]
    # Execution data would put inputs, outputs and the task token into the log.
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ERROR", False)
    (destination,) = logging["Destinations"]
    arns = {_log_group_arn(name) for name in LOG_GROUPS}
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] in arns


def test_functions_and_the_workflow_are_traced() -> None:
    functions = _of_type("AWS::Lambda::Function")
    assert functions and all(f["TracingConfig"] == {"Mode": "Active"} for f in functions.values())
    (machine,) = _of_type("AWS::StepFunctions::StateMachine").values()
    assert machine["TracingConfiguration"] == {"Enabled": True}


def _name_pattern(node: ast.expr) -> re.Pattern[str] | None:
    if isinstance(node, ast.JoinedStr):
        parts = [re.escape(str(v.value)) if isinstance(v, ast.Constant) else r"\w+" for v in node.values]
        return re.compile("".join(parts))
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.compile(re.escape(node.value))
    return None


def _emitted_metric_names() -> list[re.Pattern[str]]:
    """Every metric name the shared package passes to ``add_metric``: literals (both sides of a
    conditional too), and f-strings as patterns (``f"Connections{s.title()}"``: ``Connections\\w+``)."""
    names = []
    for path in (ROOT / "layers" / "shared" / "account_connections").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_metric":
                for keyword in (k for k in node.keywords if k.arg == "name"):
                    names += [
                        p
                        for part in ast.walk(keyword.value)
                        if isinstance(part, ast.expr) and (p := _name_pattern(part))
                    ]
    return names


def test_dashboard_metrics_are_ones_the_code_emits() -> None:
    emitted = _emitted_metric_names()
    shown = {row[1] for row in _dashboard_metrics() if row[0] == GLOBALS["POWERTOOLS_METRICS_NAMESPACE"]}
    never = {name for name in shown if not any(p.fullmatch(name) for p in emitted)}
    assert never == NOT_EMITTED_YET, "dashboard metrics no code emits (or NOT_EMITTED_YET is out of date)"
