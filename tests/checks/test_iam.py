"""Least privilege, read from the CloudFormation that SAM makes of template.yaml: no statement
on Resource "*" that could name its resource, no function that can answer a task token of
anything but this state machine, and each role holds exactly what its routes or steps call: no
Scan or batch write anywhere, and the public functions can list nothing."""

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
INDEX_NAMES = [gsi["IndexName"] for gsi in RESOURCES["StateTable"]["Properties"]["GlobalSecondaryIndexes"]]

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


def index(name: str) -> str:
    return f"index {name} of StateTable"


# What a transaction needs: TransactWriteItems is authorized item by item, as the action of each
# item (Put: PutItem, Update: UpdateItem, Delete: DeleteItem, ConditionCheck: ConditionCheckItem).
GET, QUERY = "dynamodb:getitem", "dynamodb:query"
PUT, UPDATE, DELETE, CHECK = (
    "dynamodb:putitem",
    "dynamodb:updateitem",
    "dynamodb:deleteitem",
    "dynamodb:conditioncheckitem",
)
# The service's key, usable by a role only through the service that encrypts with it: DynamoDB
# decrypts the table key as the caller; SNS makes and reads the data key of an encrypted topic's
# messages as the publisher.
SIGNING_KEY = "key DigestSigningKey"
TABLE_KEY = {"key EncryptionKey via dynamodb": {"kms:decrypt", "kms:describekey"}}
TOPIC_KEY = {"key EncryptionKey via sns": {"kms:generatedatakey", "kms:decrypt"}}
# Never for any function: the spec serves every list by Query, and nothing writes in batches.
NEVER = {"dynamodb:scan", "dynamodb:batchwriteitem", "dynamodb:batchgetitem", "dynamodb:partiqlselect"}

# Exactly what each function may do, per resource: what its routes or steps call (read from the
# shared package's Repository calls), nothing more and nothing less.
EXPECTED: dict[str, dict[str, set[str]]] = {
    # Membership, approver, connection and role reads; a connection's partition (detail, detach);
    # create (puts), cancel and a workflow that cannot start (update, put, delete of the live lock),
    # resend (update, puts) and roles (condition check or update of the role count, put or delete);
    # the Idempotency-Key records (powertools: put, get, update, delete); a space's list on GSI1.
    # Starts the workflow, ends it on cancel, emails a resent link, reads roles through the verifier
    # role.
    "RequesterApiFunction": {
        TABLE: {GET, QUERY, PUT, UPDATE, DELETE, CHECK},
        index("GSI1"): {QUERY},
        MACHINE: {"states:startexecution", "states:sendtaskfailure"},
        APPROVALS: {"sns:publish"},
        VERIFIERS: {"sts:assumerole"},
        **TABLE_KEY,
        **TOPIC_KEY,
    },
    # Spaces, members (a check that the space exists), approvers and their addresses' records:
    # reads, puts, deletes, each with its registry event; approvers by address and the list on
    # GSI4; the approvers' email subscriptions with their filter policy (the same statement names
    # the topic and its subscriptions; Subscribe on a subscription ARN is meaningless but
    # harmless). A changed or removed administrator: the account's pending requests on GSI2, each
    # read by key, its link renewed or withdrawn (updates of the connection and the tokens, puts
    # of the new token and the event), the new link emailed.
    "OperatorApiFunction": {
        TABLE: {GET, PUT, UPDATE, DELETE, CHECK},
        index("GSI4"): {QUERY},
        index("GSI2"): {QUERY},
        **TABLE_KEY,
        **TOPIC_KEY,
        APPROVALS: {
            "sns:subscribe",
            "sns:unsubscribe",
            "sns:setsubscriptionattributes",
            "sns:getsubscriptionattributes",
            "sns:publish",
        },
        SUBSCRIPTIONS: {
            "sns:subscribe",
            "sns:unsubscribe",
            "sns:setsubscriptionattributes",
            "sns:getsubscriptionattributes",
        },
    },
    # Auditors: one Query per page, on a connection's partition or an index (GSI1 to GSI4); the
    # digests' public key (never a signature).
    "AuditApiFunction": {TABLE: {QUERY}, INDEXES: {QUERY}, **TABLE_KEY, SIGNING_KEY: {"kms:getpublickey"}},
    # Public and unauthenticated. The page: the token and the connection by key. The decision: the
    # token by key, one transaction (consume the token, spend the account proof, update the
    # connection, put the event, delete the live lock on a rejection or a late approval), then the
    # task token answered; the administrator emailed after a decision by account proof.
    "DecideConnectionFunction": {
        TABLE: {GET, PUT, UPDATE, DELETE},
        MACHINE: {"states:sendtasksuccess", "states:sendtaskfailure"},
        APPROVALS: {"sns:publish"},
        **TABLE_KEY,
        **TOPIC_KEY,
    },
    # The OpenAPI document and the health check touch nothing.
    "ApiDocsFunction": {},
    # The connection and the approver by key; one transaction stores the link (updates of the
    # connection and the tokens, puts of the new token and the event); the email.
    # A request decided while a timer re-entered the wait is answered with the new task token.
    "NotifyApproverFunction": {
        TABLE: {GET, PUT, UPDATE},
        MACHINE: {"states:sendtasksuccess", "states:sendtaskfailure"},
        APPROVALS: {"sns:publish"},
        **TABLE_KEY,
        **TOPIC_KEY,
    },
    # The connection and the account's live lock, by key.
    "VerifyConnectionFunction": {TABLE: {GET}, **TABLE_KEY},
    # The connection's partition (Query); each role recorded with a condition check on the status,
    # or, for a role not recorded yet, the update of the connection's role count (at most 10).
    "AttachRolesFunction": {TABLE: {QUERY, CHECK, UPDATE, PUT}, VERIFIERS: {"sts:assumerole"}, **TABLE_KEY},
    # The connection and its live lock by key; a transition (update, put, delete of the lock); the
    # approvers' email of how it ended.
    "RecordOutcomeFunction": {
        TABLE: {GET, PUT, UPDATE, DELETE},
        APPROVALS: {"sns:publish"},
        **TABLE_KEY,
        **TOPIC_KEY,
    },
    # The digest job: the period's events (GSI4) and the last digest (the DIGEST partition: the
    # head by key, the digest by key); the new digest and the head in one transaction, only in the
    # DIGEST partition; the only signer.
    "DigestFunction": {
        TABLE: {QUERY},
        index("GSI4"): {QUERY},
        f"{TABLE} for DIGEST": {GET, PUT, UPDATE},
        SIGNING_KEY: {"kms:sign"},
        **TABLE_KEY,
    },  # fmt: skip
}
# The functions behind routes without a JWT (Authorizer: NONE).
PUBLIC = {"DecideConnectionFunction", "ApiDocsFunction"}


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
        **{
            f"{prefix}dynamodb:{REGION}:{ACCOUNT}:table/StateTable/index/{name}": index(name)
            for name in INDEX_NAMES
        },
        f"{prefix}iam::*:role/{VERIFIER_ROLE_NAME}": VERIFIERS,
        STATE_MACHINE_ARN: MACHINE,
    }
    if resource in known:
        return known[resource]
    if match := re.fullmatch(rf"{prefix}sns:{REGION}:{ACCOUNT}:(\w+)(:\*)?", resource):
        return f"{'subscriptions of' if match.group(2) else 'topic'} {match.group(1)}"
    if match := re.fullmatch(rf"{prefix}kms:{REGION}:{ACCOUNT}:key/(\w+)", resource):
        return f"key {match.group(1)}"
    if match := re.fullmatch(rf"{prefix}lambda:{REGION}:{ACCOUNT}:function:(\w+)(\*|:\*)?", resource):
        return f"function {match.group(1)}"
    return resource


def _via(statement: dict[str, Any]) -> str:
    """The suffix " via <service>" when the statement holds only for requests made through it, and
    " for <partitions>" when only for items of those partitions (``dynamodb:LeadingKeys``)."""
    condition = statement.get("Condition", {})
    via = condition.get("StringEquals", {}).get("kms:ViaService")
    suffix = f" via {via.split('.')[0]}" if isinstance(via, str) else ""
    leading = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:LeadingKeys")
    if leading:
        suffix += " for " + ",".join(_listed(leading))
    return suffix


def _grants(role_id: str) -> dict[str, set[str]]:
    """target -> lower-cased actions the role is allowed on it ("key X via dynamodb" for a key
    usable only through that service)."""
    grants: dict[str, set[str]] = defaultdict(set)
    for statement in _statements(role_id):
        assert statement["Effect"] == "Allow", f"{role_id}: only Allow statements are expected: {statement}"
        assert "NotAction" not in statement and "NotResource" not in statement, (
            f"{role_id}: NotAction/NotResource grant everything else: {statement}"
        )
        for resource in _listed(statement["Resource"]):
            for action in _listed(statement["Action"]):
                grants[_target(resource) + _via(statement)].add(action.lower())
    return dict(grants)


def test_every_function_and_the_state_machine_have_their_own_role() -> None:
    assert sorted(OWNERS.values()) == sorted(
        [(f, "function") for f in EXPECTED] + [(STATE_MACHINE, "state machine")]
    ), "a function or role was added or removed: describe its permissions in EXPECTED"


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
    expected = EXPECTED[function]
    excess = {
        target: sorted(actions - expected.get(target, set()))
        for target, actions in grants.items()
        if actions - expected.get(target, set())
    }
    assert not excess, f"{function} can do more than it needs: {excess}"
    missing = {
        target: sorted(actions - grants.get(target, set()))
        for target, actions in expected.items()
        if actions - grants.get(target, set())
    }
    assert not missing, f"{function} lacks permissions it needs: {missing}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_scans_or_writes_in_batches(function: str) -> None:
    role_id = next(role for role, (owner, _) in OWNERS.items() if owner == function)
    forbidden = {
        target: sorted(actions & NEVER) for target, actions in _grants(role_id).items() if actions & NEVER
    }
    assert not forbidden, f"{function} may {forbidden}: every read is by key or Query, every write one item"


def test_the_public_functions_can_list_nothing() -> None:
    """The functions behind routes without a JWT read only the items whose keys a request names:
    no Query, no Scan, on the table or an index, and the docs function touches no data at all."""
    public = {
        owner
        for owner, event in (
            (logical_id, e)
            for logical_id, res in template()["Resources"].items()
            if res["Type"] == "AWS::Serverless::Function"
            for e in res["Properties"].get("Events", {}).values()
        )
        if event["Type"] == "HttpApi" and event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    }
    assert public == PUBLIC
    for function in PUBLIC:
        role_id = next(role for role, (owner, _) in OWNERS.items() if owner == function)
        listing = {
            t: a for t, a in _grants(role_id).items() if t.endswith("StateTable") and a & ({QUERY} | NEVER)
        }
        assert not listing, f"{function} is public and may list: {listing}"
    api_docs = next(role for role, (owner, _) in OWNERS.items() if owner == "ApiDocsFunction")
    assert not [t for t in _grants(api_docs) if "StateTable" in t]


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
        # `!Ref Function.Alias`: SnapStart's steps are invoked through their alias.
        referenced = referenced.removesuffix(".Alias") if isinstance(referenced, str) else referenced
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
    expected |= TOPIC_KEY  # the topics are encrypted with the service's key
    if "*" in grants:
        expected["*"] = grants["*"] & NO_RESOURCE_LEVEL
    assert grants == expected, "the state machine's role holds more than its definition calls"


@pytest.mark.parametrize("role_id", sorted(OWNERS))
def test_the_key_is_used_only_through_the_services_it_encrypts_for(role_id: str) -> None:
    key = "key EncryptionKey"
    direct = {t: a for t, a in _grants(role_id).items() if t.startswith(key) and " via " not in t}
    assert not direct, f"{role_id} may use the key directly, not only through DynamoDB or SNS: {direct}"
    services = {t.rsplit(" ", 1)[1] for t in _grants(role_id) if t.startswith(key)}
    assert services <= {"dynamodb", "sns"}, services


def test_only_the_digest_job_signs_and_only_the_auditors_read_the_public_key() -> None:
    """A digest is evidence because nothing but the digest job can make one (docs/audit.md)."""
    uses = {
        OWNERS[role_id][0]: actions
        for role_id in OWNERS
        for target, actions in _grants(role_id).items()
        if target.startswith(SIGNING_KEY) or target == "*"
        if any(action.startswith("kms:") for action in actions)
    }
    assert uses == {"DigestFunction": {"kms:sign"}, "AuditApiFunction": {"kms:getpublickey"}}
    key = RESOURCES["DigestSigningKey"]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("RSA_3072", "SIGN_VERIFY")
    principals = [RESOLVER.resolve(s["Principal"]) for s in key["KeyPolicy"]["Statement"]]
    assert principals == [{"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"}], (
        "the key policy grants no one directly"
    )


def test_the_digest_job_writes_only_the_digests_partition() -> None:
    role_id = next(role for role, (owner, _) in OWNERS.items() if owner == "DigestFunction")
    writes = {t for t, a in _grants(role_id).items() if "StateTable" in t and a & {PUT, UPDATE, DELETE}}
    assert writes == {f"{TABLE} for DIGEST"}


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
