"""Integration fixtures: moto with the state table built from template.yaml, the approval
topic, a state machine from the real ASL file, and the handlers' environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support import ROOT, stores, table_definition

TABLE = "connections-test"
ACCOUNT = "123456789012"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A moto account with the service's resources; yields their names and ARNs."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        ddb = boto3.client("dynamodb")
        ddb.create_table(**table_definition(TABLE))
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="approvals")["TopicArn"]
        events_topic = sns.create_topic(Name="connection-events")["TopicArn"]
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        definition = (ROOT / "statemachine" / "connection_approval.asl.json").read_text()
        sfn = boto3.client("stepfunctions")
        created = sfn.create_state_machine(name="approval", definition=definition, roleArn=role)
        machine = created["stateMachineArn"]
        env = {
            "TABLE_NAME": TABLE,
            "STATE_MACHINE_ARN": machine,
            "APPROVAL_TOPIC_ARN": topic,
            "APPROVAL_TIMEOUT_SECONDS": "604800",
            "PUBLIC_BASE_URL": "",
            "VERIFIER_ROLE_NAME": "AccountConnectionsVerifier",
            "VERIFIER_EXTERNAL_ID": "",
            "RUNNER_PRINCIPAL_ARN": "arn:aws:iam::999999999999:role/WorkflowRunner",
            "GROUPS_CLAIM": "cognito:groups",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield {
            "table": TABLE,
            "topic": topic,
            "events_topic": events_topic,
            "state_machine": machine,
            "ddb": ddb,
            "sns": sns,
            "sfn": sfn,
            "json": json,
        }


# ---- seeded state and observation helpers ------------------------------------------------------

SPACE = "demo"
OTHER_SPACE = "other"
APPROVED_ACCOUNT = "111122223333"
UNREGISTERED_ACCOUNT = "444455556666"
# The users of SPEC.md's seed, and dave, the admin of another space.
MEMBERS = {"alice": "SPACE_ADMIN", "bob": "POWER_USER", "carol": "LIMITED_ACCESS"}


@pytest.fixture
def seeded(aws: dict[str, Any]) -> dict[str, Any]:
    """The seed of SPEC.md's local stack: space demo with alice, bob and carol, an administrator
    for account 111122223333, and a second space whose admin is dave."""
    from account_connections.domain.registry import Approver, Member, Space, SpaceRole

    state = stores(TABLE, aws["ddb"])
    repo = state.registry
    stamp = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "oscar"}
    for space_id, name in ((SPACE, "Demo space"), (OTHER_SPACE, "Other space")):
        repo.put_space(Space(spaceId=space_id, name=name, **stamp))
    for user_id, role in MEMBERS.items():
        repo.put_member(Member(spaceId=SPACE, userId=user_id, role=SpaceRole(role), **stamp))
    repo.put_member(Member(spaceId=OTHER_SPACE, userId="dave", role=SpaceRole.SPACE_ADMIN, **stamp))
    repo.put_approver(Approver(accountId=APPROVED_ACCOUNT, email="admin@example.com", **stamp))
    return {**aws, "stores": state}


@pytest.fixture
def ddb_operations(aws: dict[str, Any]) -> Iterator[list[str]]:
    """The names of the DynamoDB operations the handlers call during the test (a botocore hook on
    the client they share), so that a test can prove that nothing scans."""
    from account_connections.adapters.clients import client

    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    handlers_client = client("dynamodb")
    handlers_client.meta.events.register("before-call.dynamodb", record, unique_id="ddb-operations")
    yield calls
    handlers_client.meta.events.unregister("before-call.dynamodb", unique_id="ddb-operations")


def dump_table(ddb: Any) -> list[dict[str, Any]]:
    """Every item of the state table, in key order: compare two dumps to prove nothing changed.
    (A Scan by the test itself, never by the code under test.)"""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
