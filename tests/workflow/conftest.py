"""The approval workflow in moto: the real ASL file with its substitutions applied as
CloudFormation would, Lambda functions whose invocations run our real handlers, the state
table, the topics (with SQS subscriptions that keep what SNS sent), and an administrator's
account (111122223333) with its verifier role and roles to attach.

moto runs executions on a background thread; ``Stack`` has the polling helpers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from account_connections.domain.registry import Approver, Member, Space, SpaceRole
from account_connections.logic.connections import create_connection
from local import dynamodb_transactions
from tests.support import (
    ROOT,
    FakeContext,
    Stores,
    load_event,
    load_handler,
    resource,
    stores,
    table_definition,
)

TABLE = "connections-workflow-test"
SERVICE_ACCOUNT = "123456789012"
ADMIN_ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ADMIN_EMAIL = "admin@example.com"
VERIFIER_ROLE = "AccountConnectionsVerifier"
RUNNER = "arn:aws:iam::999999999999:role/WorkflowRunner"
SPACE = "demo"
BASE_URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
# The workflow's Lambda functions: template logical id -> functions/<folder>.
STEP_FUNCTIONS = {
    "NotifyApproverFunction": "notify_approver",
    "VerifyConnectionFunction": "verify_connection",
    "AttachRolesFunction": "attach_roles",
    "RecordOutcomeFunction": "record_outcome",
}


def trust_policy(principal: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
    })  # fmt: skip


def role_arn(name: str, account: str = ADMIN_ACCOUNT, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


@dataclass
class Email:
    subject: str
    body: str
    account_id: str

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
    state_machine: str
    queues: dict[str, str]
    logs: list[str]
    before_step: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    emails: list[Email] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def connections(self) -> Any:
        return self.stores.connections

    @property
    def registry(self) -> Any:
        return self.stores.registry

    # ---- requests ---------------------------------------------------------------------------

    def request(
        self,
        role_arns: list[str] | None = None,
        *,
        display_name: str = "Production",
        timeout: int = 3600,
        requester: str = "alice",
    ) -> tuple[str, str]:
        """Create a request (as the create route does) and start its workflow; returns its id
        and the connection token."""
        created = create_connection(
            self.connections,
            self.registry,
            StepFunctionsWorkflow(self.sfn, self.state_machine),
            Principal(sub=requester, groups=frozenset()),
            SPACE,
            CreateConnectionRequest(
                accountId=ADMIN_ACCOUNT,
                displayName=display_name,
                description="Deploy target for the web app",
                roleArns=role_arns if role_arns is not None else [role_arn("BuildRole")],
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

    def drain_notices(self) -> list[dict[str, Any]]:
        self._drain("events", self.notices)
        return self.notices

    def _drain(self, queue: str, into: list[Any]) -> None:
        for message in self.sqs.receive_message(QueueUrl=self.queues[queue], MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            envelope = json.loads(message["Body"])
            attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            if queue == "approvals":
                into.append(
                    Email(envelope.get("Subject", ""), envelope["Message"], attributes.get("accountId", ""))
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
        self, name: str, connection_id: str, body: Any = None, sub: str = "alice"
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


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        ddb = boto3.client("dynamodb")
        ddb.create_table(**table_definition(TABLE))
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
        for key, value in {
            "TABLE_NAME": TABLE,
            "STATE_MACHINE_ARN": machine["stateMachineArn"],
            "APPROVAL_TOPIC_ARN": topics["ApprovalTopic"],
            "APPROVAL_TIMEOUT_SECONDS": "3600",
            "PUBLIC_BASE_URL": BASE_URL,
            "VERIFIER_ROLE_NAME": VERIFIER_ROLE,
            "VERIFIER_EXTERNAL_ID": "",
            "RUNNER_PRINCIPAL_ARN": RUNNER,
        }.items():
            monkeypatch.setenv(key, value)

        state = stores(TABLE, ddb)
        stamp = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
        state.registry.put_space(Space(spaceId=SPACE, name="Demo space", **stamp))
        state.registry.put_member(Member(spaceId=SPACE, userId="alice", role=SpaceRole.SPACE_ADMIN, **stamp))
        state.registry.put_approver(Approver(accountId=ADMIN_ACCOUNT, email=ADMIN_EMAIL, **stamp))
        _seed_admin_account()

        from account_connections.observability import logger

        lines: list[str] = []
        collector = _Collect(logger.registered_handler.formatter, lines)  # type: ignore[arg-type]
        logging.getLogger(logger.name).addHandler(collector)
        stack = Stack(stores=state, ddb=ddb, sfn=sfn, sqs=sqs, state_machine=machine["stateMachineArn"],
                      queues=queues, logs=lines)  # fmt: skip
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", _route_invocations(stack, {
            logical_id: folder for logical_id, folder in STEP_FUNCTIONS.items()}))  # fmt: skip
        monkeypatch.setattr(STSBackend, "assume_role", _strict_assume_role(STSBackend.assume_role))
        # DynamoDB runs a transaction atomically; moto does not: the local stack's fix, here too.
        dynamodb_transactions.install()
        try:
            yield stack
        finally:
            logging.getLogger(logger.name).removeHandler(collector)
            _stop_executions(sfn, machine["stateMachineArn"])


def _seed_admin_account() -> None:
    """Account 111122223333 as SPEC.md's seed has it: the verifier role (trusting the service's
    account), BuildRole trusting the runner principal, UntrustedRole trusting someone else."""
    credentials = boto3.client("sts").assume_role(RoleArn=role_arn("Setup"), RoleSessionName="setup")[
        "Credentials"
    ]
    iam = boto3.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    iam.create_role(
        RoleName=VERIFIER_ROLE, AssumeRolePolicyDocument=trust_policy(f"arn:aws:iam::{SERVICE_ACCOUNT}:root")
    )
    iam.create_role(RoleName="BuildRole", AssumeRolePolicyDocument=trust_policy(RUNNER))
    iam.create_role(RoleName="DeployRole", Path="/deploy/", AssumeRolePolicyDocument=trust_policy(RUNNER))
    iam.create_role(
        RoleName="UntrustedRole", AssumeRolePolicyDocument=trust_policy("arn:aws:iam::222233334444:root")
    )


def _stop_executions(sfn: Any, machine: str) -> None:
    """Leave no execution waiting on its background thread past the test."""
    for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
        try:
            sfn.stop_execution(executionArn=execution["executionArn"])
        except AttributeError:
            # moto cannot stop an execution whose worker has not started yet; it ends with the mock.
            continue
