"""Least privilege, read from the CloudFormation that SAM makes of template.yaml: no statement
on Resource "*" that could name its resource, no function that can answer a task token of
anything but this state machine, and each role holds only what its routes or steps need."""

from __future__ import annotations

import fnmatch
import json
import re
from collections import defaultdict
from typing import Any

import pytest

from tests.checks.cfn import ACCOUNT, PARTITION, REGION, Resolver, translated
from tests.support import ROOT, template

CFN = translated()
RESOLVER = Resolver(CFN)
RESOURCES: dict[str, Any] = CFN["Resources"]
STATE_MACHINE = "ApprovalStateMachine"
STATE_MACHINE_ARN = RESOLVER.ref(STATE_MACHINE)
VERIFIER_ROLE_NAME = RESOLVER.ref("VerifierRoleName")

# Actions that IAM cannot scope to a resource: Resource "*" is the only form they accept.
NO_RESOURCE_LEVEL = {
    # X-Ray: trace segments and sampling have no resource type (Tracing: Active).
    "xray:puttracesegments",
    "xray:puttelemetryrecords",
    "xray:getsamplingrules",
    "xray:getsamplingtargets",
    # CloudWatch metrics have no resource type; EMF goes through logs anyway, this is for SDK use.
    "cloudwatch:putmetricdata",
    # Step Functions' log delivery to CloudWatch Logs ("vended logs"): these APIs act on the
    # account's delivery configuration, and AWS documents them with Resource "*" only.
    "logs:createlogdelivery",
    "logs:getlogdelivery",
    "logs:updatelogdelivery",
    "logs:deletelogdelivery",
    "logs:listlogdeliveries",
    "logs:putresourcepolicy",
    "logs:describeresourcepolicies",
    "logs:describeloggroups",
}

# AWS managed policies SAM attaches: basic logging for functions, X-Ray for Tracing: Active.
MANAGED = {
    "function": {
        f"arn:{PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        f"arn:{PARTITION}:iam::aws:policy/AWSXrayWriteOnlyAccess",
    },
    "state machine": {f"arn:{PARTITION}:iam::aws:policy/AWSXrayWriteOnlyAccess"},
}

TABLE, INDEXES = "table StateTable", "indexes of StateTable"
APPROVALS, SUBSCRIPTIONS = "topic ApprovalTopic", "subscriptions of ApprovalTopic"
MACHINE, VERIFIERS = f"state machine {STATE_MACHINE}", "verifier role in any account"
READ = {"dynamodb:getitem", "dynamodb:query", "dynamodb:batchgetitem", "dynamodb:describetable"}
# SAM's DynamoDBCrudPolicy. Scan is in it; only the audit function, which the spec says never
# scans, is held to fewer.
CRUD = READ | {
    "dynamodb:putitem",
    "dynamodb:updateitem",
    "dynamodb:deleteitem",
    "dynamodb:batchwriteitem",
    "dynamodb:conditioncheckitem",
    "dynamodb:scan",
}
TABLE_CRUD = {TABLE: CRUD, INDEXES: CRUD}

# The most each function may do, per resource, and why.
ALLOWED: dict[str, dict[str, set[str]]] = {
    # Create (transaction), list, read, cancel/disconnect (SendTaskFailure if the workflow waits),
    # resend (emails the new link), attach a role (reads it through the verifier role).
    "RequesterApiFunction": TABLE_CRUD
    | {
        MACHINE: {"states:startexecution", "states:sendtaskfailure"},
        APPROVALS: {"sns:publish"},
        VERIFIERS: {"sts:assumerole"},
    },
    # Spaces, members, and the approver registry as email subscriptions with a filter policy.
    "OperatorApiFunction": TABLE_CRUD
    | {
        APPROVALS: {
            "sns:subscribe",
            "sns:unsubscribe",
            "sns:setsubscriptionattributes",
            "sns:getsubscriptionattributes",
            "sns:listsubscriptionsbytopic",
        },
        # The same statement names the topic and its subscriptions; Subscribe on a subscription
        # ARN is meaningless but harmless.
        SUBSCRIPTIONS: {
            "sns:subscribe",
            "sns:unsubscribe",
            "sns:setsubscriptionattributes",
            "sns:getsubscriptionattributes",
        },
    },
    # Auditors only read, by Query on the table and its indexes.
    "AuditApiFunction": {TABLE: READ, INDEXES: READ},
    # The decision: one transaction, then the task token answered.
    "DecideConnectionFunction": TABLE_CRUD | {MACHINE: {"states:sendtasksuccess", "states:sendtaskfailure"}},
    # The OpenAPI document and the health check touch nothing.
    "ApiDocsFunction": {},
    "NotifyApproverFunction": TABLE_CRUD | {APPROVALS: {"sns:publish"}},
    # Reads the request and the account's live lock (SAM's DynamoDBReadPolicy, Scan included).
    "VerifyConnectionFunction": {TABLE: READ | {"dynamodb:scan"}, INDEXES: READ | {"dynamodb:scan"}},
    "AttachRolesFunction": TABLE_CRUD | {VERIFIERS: {"sts:assumerole"}},
    "RecordOutcomeFunction": TABLE_CRUD | {"topic ConnectionEventsTopic": {"sns:publish"}},
}

# What each function cannot work without: a check that the policies above are not just empty.
NEEDED: dict[str, dict[str, set[str]]] = {
    "RequesterApiFunction": {
        TABLE: {"dynamodb:putitem", "dynamodb:updateitem", "dynamodb:getitem"},
        INDEXES: {"dynamodb:query"},
        MACHINE: {"states:startexecution", "states:sendtaskfailure"},
        VERIFIERS: {"sts:assumerole"},
    },
    "OperatorApiFunction": {
        TABLE: {"dynamodb:putitem", "dynamodb:deleteitem"},
        APPROVALS: {"sns:subscribe", "sns:setsubscriptionattributes"},
    },
    "AuditApiFunction": {TABLE: {"dynamodb:query"}, INDEXES: {"dynamodb:query"}},
    "DecideConnectionFunction": {
        TABLE: {"dynamodb:updateitem", "dynamodb:getitem"},
        MACHINE: {"states:sendtasksuccess", "states:sendtaskfailure"},
    },
    "ApiDocsFunction": {},
    "NotifyApproverFunction": {TABLE: {"dynamodb:updateitem"}, APPROVALS: {"sns:publish"}},
    "VerifyConnectionFunction": {TABLE: {"dynamodb:getitem"}},
    "AttachRolesFunction": {TABLE: {"dynamodb:putitem"}, VERIFIERS: {"sts:assumerole"}},
    "RecordOutcomeFunction": {TABLE: {"dynamodb:updateitem"}},
}


def _owners() -> dict[str, tuple[str, str]]:
    """role logical id -> (owner logical id, "function" | "state machine")."""
    owners = {}
    for logical_id, res in RESOURCES.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::Function":
            owners[props["Role"]["Fn::GetAtt"][0]] = (logical_id, "function")
        elif res["Type"] == "AWS::StepFunctions::StateMachine":
            owners[props["RoleArn"]["Fn::GetAtt"][0]] = (logical_id, "state machine")
    return owners


OWNERS = _owners()
FUNCTIONS = sorted(owner for owner, kind in OWNERS.values() if kind == "function")


def _statements(role_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: its inline policies and any AWS::IAM::Policy."""
    docs = [p["PolicyDocument"] for p in RESOURCES[role_id]["Properties"].get("Policies", [])]
    for res in RESOURCES.values():
        if res["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in res["Properties"].get("Roles", []):
            docs.append(res["Properties"]["PolicyDocument"])
    statements = []
    for doc in docs:
        body = doc["Statement"]
        for statement in body if isinstance(body, list) else [body]:
            statements.append(RESOLVER.resolve(statement))
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target(resource: str) -> str:
    """Name what an ARN (as the resolver renders it) points at; anything unknown stays raw."""
    prefix = f"arn:{PARTITION}:"
    known = {
        f"{prefix}dynamodb:{REGION}:{ACCOUNT}:table/StateTable": TABLE,
        f"{prefix}dynamodb:{REGION}:{ACCOUNT}:table/StateTable/index/*": INDEXES,
        f"{prefix}iam::*:role/{VERIFIER_ROLE_NAME}": VERIFIERS,
        STATE_MACHINE_ARN: MACHINE,
    }
    if resource in known:
        return known[resource]
    if match := re.fullmatch(rf"{prefix}sns:{REGION}:{ACCOUNT}:(\w+)(:\*)?", resource):
        return f"{'subscriptions of' if match.group(2) else 'topic'} {match.group(1)}"
    if match := re.fullmatch(rf"{prefix}lambda:{REGION}:{ACCOUNT}:function:(\w+)(\*|:\*)?", resource):
        return f"function {match.group(1)}"
    return resource


def _grants(role_id: str) -> dict[str, set[str]]:
    """target -> lower-cased actions the role is allowed on it."""
    grants: dict[str, set[str]] = defaultdict(set)
    for statement in _statements(role_id):
        assert statement["Effect"] == "Allow", f"{role_id}: only Allow statements are expected: {statement}"
        assert "NotAction" not in statement and "NotResource" not in statement, (
            f"{role_id}: NotAction/NotResource grant everything else: {statement}"
        )
        for resource in _listed(statement["Resource"]):
            for action in _listed(statement["Action"]):
                grants[_target(resource)].add(action.lower())
    return dict(grants)


def test_every_function_and_the_state_machine_have_their_own_role() -> None:
    assert sorted(OWNERS.values()) == sorted(
        [(f, "function") for f in ALLOWED] + [(STATE_MACHINE, "state machine")]
    ), "a function or role was added or removed: describe its permissions in ALLOWED and NEEDED"


@pytest.mark.parametrize("role_id", sorted(OWNERS))
def test_no_wildcard_resource_where_a_resource_can_be_named(role_id: str) -> None:
    offending = sorted(_grants(role_id).get("*", set()) - NO_RESOURCE_LEVEL)
    assert not offending, f"{role_id} allows {offending} on Resource '*': name the resource"


@pytest.mark.parametrize("role_id", sorted(OWNERS))
def test_no_wildcard_actions(role_id: str) -> None:
    wildcards = sorted(a for actions in _grants(role_id).values() for a in actions if "*" in a or "?" in a)
    assert not wildcards, f"{role_id} allows wildcard actions {wildcards}: list the actions"


@pytest.mark.parametrize("role_id", sorted(OWNERS))
def test_only_the_expected_managed_policies(role_id: str) -> None:
    _, kind = OWNERS[role_id]
    attached = set(RESOLVER.resolve(RESOURCES[role_id]["Properties"].get("ManagedPolicyArns", [])))
    assert attached <= MANAGED[kind], f"{role_id} has managed policies {sorted(attached - MANAGED[kind])}"


@pytest.mark.parametrize("role_id", sorted(OWNERS))
def test_roles_trust_only_their_service(role_id: str) -> None:
    _, kind = OWNERS[role_id]
    service = {"function": "lambda.amazonaws.com", "state machine": "states.amazonaws.com"}[kind]
    trust = RESOLVER.resolve(RESOURCES[role_id]["Properties"]["AssumeRolePolicyDocument"])
    principals = [s["Principal"] for s in trust["Statement"]]
    assert principals == [{"Service": [service]}], f"{role_id} trusts {principals}"


@pytest.mark.parametrize("role_id", sorted(OWNERS))
def test_task_tokens_can_be_answered_only_for_this_state_machine(role_id: str) -> None:
    for statement in _statements(role_id):
        actions = [a.lower() for a in _listed(statement["Action"])]
        answering = [
            a
            for a in actions
            if any(
                fnmatch.fnmatchcase(f"states:sendtask{kind}", a)
                for kind in ("success", "failure", "heartbeat")
            )
        ]
        if answering:
            assert _listed(statement["Resource"]) == [STATE_MACHINE_ARN], (
                f"{role_id} may call {answering} on {statement['Resource']}, not only {STATE_MACHINE_ARN}"
            )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_holds_only_what_its_routes_or_steps_need(function: str) -> None:
    role_id = next(role for role, (owner, _) in OWNERS.items() if owner == function)
    grants = _grants(role_id)
    allowed = ALLOWED[function]
    excess = {
        target: sorted(actions - allowed.get(target, set()))
        for target, actions in grants.items()
        if actions - allowed.get(target, set())
    }
    assert not excess, f"{function} can do more than it needs: {excess}"
    missing = {
        target: sorted(actions - grants.get(target, set()))
        for target, actions in NEEDED[function].items()
        if actions - grants.get(target, set())
    }
    assert not missing, f"{function} lacks permissions it needs: {missing}"


def _definition_targets() -> tuple[set[str], set[str]]:
    """Functions and topics that the state machine definition calls, through its substitutions."""
    sam = template()["Resources"][STATE_MACHINE]["Properties"]
    text = (ROOT / sam["DefinitionUri"]).read_text()
    used = set(re.findall(r"\$\{(\w+)\}", text))
    functions, topics = set(), set()
    for name, value in sam.get("DefinitionSubstitutions", {}).items():
        if name not in used or not isinstance(value, dict):
            continue
        referenced = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        kind = RESOURCES.get(referenced, {}).get("Type")
        if kind == "AWS::Lambda::Function":
            functions.add(referenced)
        elif kind == "AWS::SNS::Topic":
            topics.add(referenced)
    json.loads(text)  # the definition check reports a broken file; here it must at least parse
    return functions, topics


def test_state_machine_invokes_exactly_the_functions_and_topics_of_its_definition() -> None:
    role_id = next(role for role, (owner, _) in OWNERS.items() if owner == STATE_MACHINE)
    grants = _grants(role_id)
    functions, topics = _definition_targets()
    invokable = {t.removeprefix("function ") for t, a in grants.items() if "lambda:invokefunction" in a}
    publishable = {t.removeprefix("topic ") for t, a in grants.items() if "sns:publish" in a}
    assert invokable == functions
    assert publishable == topics
    expected = {f"function {f}": {"lambda:invokefunction"} for f in functions}
    expected |= {f"topic {t}": {"sns:publish"} for t in topics}
    if "*" in grants:
        expected["*"] = grants["*"] & NO_RESOURCE_LEVEL
    assert grants == expected, "the state machine's role holds more than its definition calls"


def test_the_checks_see_a_broad_grant() -> None:
    """The analysis itself: a statement on '*' and a SendTaskSuccess on every state machine are
    caught (so the tests above cannot pass by reading nothing)."""
    role_id = next(role for role, (owner, _) in OWNERS.items() if owner == "AuditApiFunction")
    bad = {
        "PolicyName": "Broad",
        "PolicyDocument": {
            "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:Query", "states:SendTaskSuccess"], "Resource": "*"}
            ]
        },
    }
    RESOURCES[role_id]["Properties"].setdefault("Policies", []).append(bad)
    try:
        with pytest.raises(AssertionError, match="dynamodb:query"):
            test_no_wildcard_resource_where_a_resource_can_be_named(role_id)
        with pytest.raises(AssertionError, match="sendtasksuccess"):
            test_task_tokens_can_be_answered_only_for_this_state_machine(role_id)
        with pytest.raises(AssertionError, match="more than it needs"):
            test_each_function_holds_only_what_its_routes_or_steps_need("AuditApiFunction")
    finally:
        RESOURCES[role_id]["Properties"]["Policies"].remove(bad)
