"""The approval workflow in moto: the real ASL file with its substitutions applied as
CloudFormation would, Lambda functions whose invocations run our real handlers, the state
table, the topics (with SQS subscriptions that keep what SNS sent), and an administrator's
account (111122223333) with its verifier role and roles to attach.

It is built once for the folder (``moto_stack``, also what ``bench.inprocess`` runs);
``Stack.reset`` puts it back, with the seed, before each test and ``Stack.end_test`` stops
what the test left running. moto runs executions on a background thread; ``Stack`` has the
polling helpers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

from account_connections.adapters.stepfunctions import StepFunctionsWorkflow
from account_connections.domain.access import Principal
from account_connections.domain.connection import CreateConnectionRequest
from account_connections.domain.tokens import hash_token
from account_connections.logic.connections import create_connection
from local import dynamodb_transactions, seed_data
from local.seed_data import TRUSTED_ROLE, UNTRUSTED_ROLE, SeedRole, seed_roles
from tests import moto_reset
from tests.support import ROOT, FakeContext, Stores, load_event, load_handler, put_seed, resource, stores

TABLE = "connections-workflow-test"
SERVICE_ACCOUNT = "123456789012"
ADMIN_ACCOUNT = seed_data.ADMIN_ACCOUNT
OTHER_ACCOUNT = "444455556666"  # another account, whose administrator's emails must not carry ours
ADMIN_EMAIL = seed_data.ADMIN_EMAIL
SPACE = seed_data.SPACE_ID
# The template's parameters that the seed's roles depend on.
VERIFIER_ROLE = "AccountConnectionsVerifier"
RUNNER = "arn:aws:iam::999999999999:role/WorkflowRunner"
BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
# The workflow's Lambda functions: template logical id -> functions/<folder>.
STEP_FUNCTIONS = {
    "NotifyApproverFunction": "notify_approver",
    "VerifyConnectionFunction": "verify_connection",
    "AttachRolesFunction": "attach_roles",
    "RecordOutcomeFunction": "record_outcome",
}


def _admin_roles() -> tuple[tuple[SeedRole, str], ...]:
    """(role, path): the roles the seed's administrator creates in their account
    (``seed_roles``), with these tests' changes and additions, each said where it is made."""
    seeded = {role.name: role for role in seed_roles(RUNNER, VERIFIER_ROLE, service_account=SERVICE_ACCOUNT)}
    assert set(seeded) == {VERIFIER_ROLE, TRUSTED_ROLE, UNTRUSTED_ROLE}, set(seeded)
    return (
        # Test-only change: the verifier role without its ReadRoles inline policy. A test deletes
        # the role, which IAM (and moto) refuses while it has an inline policy; moto never
        # evaluates the policy, so leaving it out changes nothing else.
        (replace(seeded[VERIFIER_ROLE], inline_policies=()), "/"),
        (seeded[TRUSTED_ROLE], "/"),  # BuildRole: trusts the runner
        (seeded[UNTRUSTED_ROLE], "/"),  # UntrustedRole: trusts ec2.amazonaws.com, not the runner
        # Test-only addition: a role under a path, trusting the runner.
        (SeedRole(ADMIN_ACCOUNT, "DeployRole", seed_data.trust_policy({"AWS": RUNNER})), "/deploy/"),
    )


def role_arn(name: str, account: str = ADMIN_ACCOUNT, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


@dataclass
class Email:
    subject: str
    body: str
    account_id: str
    # The addresses the message names: each address's subscription lets through those naming it.
    recipients: tuple[str, ...] = ()

    @property
    def link(self) -> str:
        # The service's own line: a quoted line (what the requester wrote) is never the link.
        match = re.search(r"^https://\S+/verify\?token=\S+", self.body, re.MULTILINE)
        assert match, self.body
        return match.group(0)

    @property
    def token(self) -> str:
        return parse_qs(urlparse(self.link).query)["token"][0]


@dataclass
class Stack:
    """The resources and the helpers a workflow test drives."""

    stores: Stores
    ddb: Any
    sfn: Any
    sqs: Any
    sns: Any
    admin_iam: Any  # acting in the administrator's account
    state_machine: str
    topics: dict[str, str]
    queues: dict[str, str]
    logs: list[str]
    built_subscriptions: set[str]
    before_step: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    emails: list[Email] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def connections(self) -> Any:
        return self.stores.connections

    @property
    def registry(self) -> Any:
        return self.stores.registry

    # ---- between tests ----------------------------------------------------------------------

    def reset(self, env: pytest.MonkeyPatch) -> None:
        """Before a test: the account as built, with the seed, and the handlers' environment
        (set on ``env``, which undoes it). What a test may change goes: the table's items, the
        administrator's roles, executions, subscriptions, messages, hooks, what was collected."""
        moto_reset.end_executions(self.sfn, self.state_machine)
        self.before_step.clear()
        moto_reset.fresh_table(self.ddb, TABLE)
        put_seed(self.registry)
        _put_admin_roles(self.admin_iam)
        moto_reset.fresh_state_machine(self.sfn, self.state_machine)
        moto_reset.drop_subscriptions(self.sns, self.topics.values(), keep=self.built_subscriptions)
        for url in self.queues.values():
            self.sqs.purge_queue(QueueUrl=url)
        self.emails.clear()
        self.notices.clear()
        self.logs.clear()
        for key, value in {
            "TABLE_NAME": TABLE,
            "STATE_MACHINE_ARN": self.state_machine,
            "APPROVAL_TOPIC_ARN": self.topics["ApprovalTopic"],
            "APPROVAL_TIMEOUT_SECONDS": "3600",
            "PUBLIC_BASE_URL": BASE_URL,
            "VERIFIER_ROLE_NAME": VERIFIER_ROLE,
            "VERIFIER_EXTERNAL_ID": "",
            "RUNNER_PRINCIPAL_ARN": RUNNER,
        }.items():
            env.setenv(key, value)

    def end_test(self) -> None:
        """After a test: no execution of it runs on (into the next test), no hook of it stays."""
        moto_reset.end_executions(self.sfn, self.state_machine)
        self.before_step.clear()

    # ---- requests ---------------------------------------------------------------------------

    def request(
        self,
        role_arns: list[str] | None = None,
        *,
        display_name: str = "Production",
        timeout: int = 3600,
        requester: str = seed_data.REQUESTER,
    ) -> tuple[str, str]:
        """Create a request (as the create route does) and start its workflow; returns its id
        and the connection token."""
        created = create_connection(
            self.connections,
            StepFunctionsWorkflow(self.sfn, self.state_machine),
            Principal(sub=requester, groups=frozenset()),
            SPACE,
            CreateConnectionRequest(
                accountId=ADMIN_ACCOUNT,
                displayName=display_name,
                description="Deploy target for the web app",
                roleArns=role_arns if role_arns is not None else [role_arn(TRUSTED_ROLE)],
            ),
            approval_timeout_seconds=timeout,
            verify_base_url=BASE_URL,
            correlation_id="corr-" + display_name[:8].replace(" ", "-"),
        )
        return created.connectionId, created.connectionToken

    def execution_arn(self, connection_id: str) -> str:
        return self.state_machine.replace(":stateMachine:", ":execution:") + f":{connection_id}"

    def wait_for_email(self, count: int = 1, timeout: float = 10) -> Email:
        """The ``count``-th approval email sent in this test (waiting for it)."""
        deadline = time.monotonic() + timeout
        while len(self.emails) < count and time.monotonic() < deadline:
            self._drain("approvals", self.emails)
            time.sleep(0.05)
        assert len(self.emails) >= count, "no approval email arrived"
        return self.emails[count - 1]

    def tokens_connection(self, token: str) -> str | None:
        """The connection a link's token is for (its item's), None for an unknown token."""
        stored = self.stores.tokens.get(hash_token(token))
        return stored.connectionId if stored else None

    def drain_notices(self) -> list[dict[str, Any]]:
        self._drain("events", self.notices)
        return self.notices

    def _drain(self, queue: str, into: list[Any]) -> None:
        for message in self.sqs.receive_message(QueueUrl=self.queues[queue], MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            envelope = json.loads(message["Body"])
            attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            if queue in ("approvals", "other-admin"):
                to = tuple(json.loads(attributes.get("recipients", "[]")))
                into.append(
                    Email(
                        envelope.get("Subject", ""), envelope["Message"], attributes.get("accountId", ""), to
                    )
                )
            else:
                into.append({"subject": envelope.get("Subject"), "attributes": attributes,
                             **json.loads(envelope["Message"])})  # fmt: skip
            self.sqs.delete_message(QueueUrl=self.queues[queue], ReceiptHandle=message["ReceiptHandle"])

    def wait_for_end(self, connection_id: str, timeout: float = 20) -> dict[str, Any]:
        """The execution once it stopped running (``describe_execution``)."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.sfn.describe_execution(executionArn=self.execution_arn(connection_id))
            if execution["status"] != "RUNNING" or time.monotonic() > deadline:
                return dict(execution)
            time.sleep(0.05)

    def entered_states(self, connection_id: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=self.execution_arn(connection_id))["events"]
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in events
            if "stateEnteredEventDetails" in event
        ]

    def item(self, connection_id: str) -> dict[str, Any]:
        stored = self.stores.item(connection_id)
        assert stored is not None
        return stored

    def dump(self) -> list[dict[str, Any]]:
        """Every item of the table in key order (a Scan by the test, never by the code)."""
        items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))

    # ---- the administrator's HTTP calls -----------------------------------------------------

    def verify_http(self, event: dict[str, Any]) -> dict[str, Any]:
        return load_handler("decide_connection").handler(event, FakeContext())  # type: ignore[no-any-return]

    def requester_http(
        self, name: str, connection_id: str, body: Any = None, sub: str = seed_data.REQUESTER
    ) -> dict[str, Any]:
        """A requester's call (events/<name>.json) aimed at ``connection_id``, as ``sub``."""
        event = load_event(name)
        template_id = event["pathParameters"]["connectionId"]
        event["rawPath"] = event["rawPath"].replace(template_id, connection_id)
        event["requestContext"]["http"]["path"] = event["rawPath"]
        event["pathParameters"]["connectionId"] = connection_id
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = sub
        if body is not None:
            event["body"] = json.dumps(body)
        return load_handler("manage_connections").handler(event, FakeContext())  # type: ignore[no-any-return]

    def page(self, token: str | None, *, head: bool = False) -> dict[str, Any]:
        event = load_event("http_verify_page_head" if head else "http_verify_page")
        event["rawQueryString"] = urlencode({"token": token}) if token is not None else ""
        if token is None:
            event.pop("queryStringParameters", None)
        else:
            event["queryStringParameters"] = {"token": token}
        return self.verify_http(event)

    def decide_form(self, token: str, fields: dict[str, str], *, csrf: str | None = None) -> dict[str, Any]:
        """Post the page's form: the CSRF token is read from the page as served, unless given."""
        if csrf is None:
            match = re.search(r'name="csrf" value="([^"]+)"', self.page(token)["body"])
            assert match, "the page has no decision form"
            csrf = match.group(1)
        body = urlencode({"token": token, "csrf": csrf, **fields})
        return self.verify_http(load_event("http_verify_decide_form", body=body))

    def decide_json(self, token: str, decision: str, **fields: Any) -> dict[str, Any]:
        body = json.dumps({"token": token, "decision": decision, **fields})
        return self.verify_http(load_event("http_verify_decide_json", body=body))

    def approve(self, token: str, *, paid: bool = False) -> dict[str, Any]:
        fields = {"decision": "approve", **({"authorizePaidTiers": "true"} if paid else {})}
        return self.decide_form(token, fields)


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# moto never runs this: the test routes invocations to functions/\n")
    return buffer.getvalue()


def _substitutions(function_arns: dict[str, str], topics: dict[str, str]) -> dict[str, str]:
    """template.yaml's DefinitionSubstitutions, resolved the way CloudFormation would."""
    resolved: dict[str, str] = {}
    for name, value in resource("ApprovalStateMachine")["Properties"]["DefinitionSubstitutions"].items():
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"] if isinstance(value["Fn::GetAtt"], list) else (
                value["Fn::GetAtt"].split(".", 1))  # fmt: skip
            assert attribute == "Arn", value
            resolved[name] = function_arns[logical_id]
        elif str(value["Ref"]).endswith(".Alias"):
            # A step's alias (SnapStart): here, as in the local stack, the function itself.
            resolved[name] = function_arns[value["Ref"].removesuffix(".Alias")]
        else:
            resolved[name] = topics[value["Ref"]]
    return resolved


def _strict_assume_role(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto lets anyone assume any role, existing or not; AWS refuses a role that does not exist
    (AccessDenied). The tests need that refusal for "a verifier role that cannot be assumed"."""

    def assume_role(self: STSBackend, **kwargs: Any) -> Any:
        arn = kwargs["role_arn"]
        account = arn.split(":")[4]
        try:
            iam_backends[account]["aws"].get_role_by_arn(arn)
        except Exception as exc:
            raise STSClientError(
                "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on resource: {arn}"
            ) from exc
        return original(self, **kwargs)

    return assume_role


def _route_invocations(stack: Stack, function_names: dict[str, str]) -> Callable[..., Any]:
    """``LambdaSimpleBackend.invoke`` replaced: run our handler for the function's name; a raised
    exception becomes Lambda's function error payload, so the ASL's Catch sees its class name."""

    def invoke(
        self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        event = json.loads(body or "{}")
        if name in stack.before_step:
            stack.before_step[name](event)
        handler = load_handler(function_names[name]).handler
        try:
            return json.dumps(handler(event, FakeContext())).encode()
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()

    return invoke


class _Collect(logging.Handler):
    def __init__(self, formatter: logging.Formatter, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def moto_stack(patch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The moto account with every resource, once; ``patch`` carries the patches of moto it needs
    (its owner undoes them). ``Stack.reset`` then seeds it for a test."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        ddb = boto3.client("dynamodb")
        moto_reset.fresh_table(ddb, TABLE)
        sns, sqs, iam = boto3.client("sns"), boto3.client("sqs"), boto3.client("iam")
        topics = {
            "ApprovalTopic": sns.create_topic(Name="approvals")["TopicArn"],
            "ConnectionEventsTopic": sns.create_topic(Name="connection-events")["TopicArn"],
        }
        queues: dict[str, str] = {}
        # Each administrator's subscription is filtered on accountId, as the approver registry makes it.
        for queue, topic, policy in (
            ("approvals", "ApprovalTopic", {"accountId": [ADMIN_ACCOUNT]}),
            ("other-admin", "ApprovalTopic", {"accountId": [OTHER_ACCOUNT]}),
            ("events", "ConnectionEventsTopic", None),
        ):
            url = sqs.create_queue(QueueName=queue)["QueueUrl"]
            queues[queue] = url
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            attributes = {"FilterPolicy": json.dumps(policy)} if policy else {}
            sns.subscribe(TopicArn=topics[topic], Protocol="sqs", Endpoint=arn, Attributes=attributes)

        execution_role = iam.create_role(RoleName="service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda")
        code = _function_zip()
        function_arns = {
            logical_id: lam.create_function(
                FunctionName=logical_id, Runtime="python3.12", Role=execution_role, Handler="app.handler",
                Code={"ZipFile": code},
            )["FunctionArn"]
            for logical_id in STEP_FUNCTIONS
        }  # fmt: skip
        definition = (ROOT / "statemachine" / "connection_approval.asl.json").read_text()
        for name, value in _substitutions(function_arns, topics).items():
            definition = definition.replace("${" + name + "}", value)
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(name="approval", definition=definition, roleArn=execution_role)

        from account_connections.observability import logger

        lines: list[str] = []
        collector = _Collect(logger.registered_handler.formatter, lines)  # type: ignore[arg-type]
        logging.getLogger(logger.name).addHandler(collector)
        stack = Stack(
            stores=stores(TABLE, ddb), ddb=ddb, sfn=sfn, sqs=sqs, sns=sns, admin_iam=_admin_account_iam(),
            state_machine=machine["stateMachineArn"], topics=topics, queues=queues, logs=lines,
            built_subscriptions=moto_reset.subscriptions(sns, topics.values()),
        )  # fmt: skip
        patch.setattr(LambdaSimpleBackend, "invoke", _route_invocations(stack, {
            logical_id: folder for logical_id, folder in STEP_FUNCTIONS.items()}))  # fmt: skip
        # After _admin_account_iam, which assumes a role nobody created.
        patch.setattr(STSBackend, "assume_role", _strict_assume_role(STSBackend.assume_role))
        # Stack.reset purges the queues before each test: moto refuses a second purge within 60 s.
        patch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
        # DynamoDB runs a transaction atomically; moto does not: the local stack's fix, here too.
        dynamodb_transactions.install()
        try:
            yield stack
        finally:
            logging.getLogger(logger.name).removeHandler(collector)
            stack.end_test()


@pytest.fixture(scope="package")
def workflow_account() -> Iterator[Stack]:
    """The folder's moto account, built once."""
    with pytest.MonkeyPatch.context() as patch, moto_stack(patch) as built:
        yield built


@pytest.fixture
def stack(workflow_account: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The folder's account, put back as built and seeded for this test."""
    workflow_account.reset(monkeypatch)
    try:
        yield workflow_account
    finally:
        workflow_account.end_test()


def _admin_account_iam() -> Any:
    """An IAM client acting in the administrator's account (moto keeps one state per account)."""
    credentials = boto3.client("sts").assume_role(RoleArn=role_arn("Setup"), RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _put_admin_roles(iam: Any) -> None:
    """Account 111122223333's roles as SPEC.md's seed has them (``_admin_roles``), and no other:
    a role a test deleted comes back, one it added goes."""
    for role in iam.list_roles()["Roles"]:
        for policy in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            iam.delete_role_policy(RoleName=role["RoleName"], PolicyName=policy)
        iam.delete_role(RoleName=role["RoleName"])
    for role, path in _admin_roles():
        extra = {"Description": role.description} if role.description else {}
        iam.create_role(RoleName=role.name, Path=path, AssumeRolePolicyDocument=role.trust_policy, **extra)
        for policy_name, document in role.inline_policies:
            iam.put_role_policy(RoleName=role.name, PolicyName=policy_name, PolicyDocument=document)
