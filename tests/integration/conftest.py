"""Integration fixtures: moto with the state table built from template.yaml, the approval
topic, a state machine from the real ASL file, and the handlers' environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support import ROOT, table_definition

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
        machine = sfn.create_state_machine(name="approval", definition=definition, roleArn=role)["stateMachineArn"]
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
        yield {"table": TABLE, "topic": topic, "events_topic": events_topic, "state_machine": machine,
               "ddb": ddb, "sns": sns, "sfn": sfn, "json": json}
