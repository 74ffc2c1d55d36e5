"""Integration fixtures: moto with the state table built from template.yaml, the approval
topic, a state machine from the real ASL file, and the handlers' environment.

The moto account is built once for the folder (``moto_account``); ``aws`` puts it back before
each test (``tests.moto_reset``): an empty table, no subscriptions, no executions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import seed_data
from tests.moto_reset import drop_subscriptions, fresh_state_machine, fresh_table
from tests.support import ROOT, SEED_STAMP, put_seed, stores

TABLE = "connections-test"
ACCOUNT = "123456789012"
ENV = {
    "TABLE_NAME": TABLE,
    "APPROVAL_TIMEOUT_SECONDS": "604800",
    "PUBLIC_BASE_URL": "",
    "VERIFIER_ROLE_NAME": "AccountConnectionsVerifier",
    "VERIFIER_EXTERNAL_ID": "",
    "RUNNER_PRINCIPAL_ARN": "arn:aws:iam::999999999999:role/WorkflowRunner",
    "GROUPS_CLAIM": "cognito:groups",
}


@pytest.fixture(scope="package")
def moto_account() -> Iterator[dict[str, Any]]:
    """A moto account with the service's resources, built once for the folder."""
    with mock_aws(config={"lambda": {"use_docker": False}}):
        ddb = boto3.client("dynamodb")
        fresh_table(ddb, TABLE)
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="approvals")["TopicArn"]
        events_topic = sns.create_topic(Name="connection-events")["TopicArn"]
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        definition = (ROOT / "statemachine" / "connection_approval.asl.json").read_text()
        sfn = boto3.client("stepfunctions")
        created = sfn.create_state_machine(name="approval", definition=definition, roleArn=role)
        # The digests' signing key, as the template declares it (RSA, sign and verify).
        kms = boto3.client("kms")
        digest_key = kms.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        yield {
            "table": TABLE,
            "topic": topic,
            "events_topic": events_topic,
            "state_machine": created["stateMachineArn"],
            "ddb": ddb,
            "sns": sns,
            "sfn": sfn,
            "kms": kms,
            "digest_key": digest_key,
            "json": json,
        }


@pytest.fixture
def aws(moto_account: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The folder's moto account as built, and the handlers' environment: the resources'
    names and ARNs, and the test's clients."""
    account = moto_account
    fresh_table(account["ddb"], TABLE)
    # Executions here never run (moto only records them): a new machine forgets them.
    fresh_state_machine(account["sfn"], account["state_machine"])
    drop_subscriptions(account["sns"], (account["topic"], account["events_topic"]), keep=set())
    resources = {"STATE_MACHINE_ARN": account["state_machine"], "APPROVAL_TOPIC_ARN": account["topic"],
                 "DIGEST_KEY_ID": account["digest_key"]}  # fmt: skip
    for key, value in {**ENV, **resources}.items():
        monkeypatch.setenv(key, value)
    return dict(account)


# ---- seeded state and observation helpers ------------------------------------------------------

APPROVED_ACCOUNT = seed_data.ADMIN_ACCOUNT
UNREGISTERED_ACCOUNT = seed_data.UNREGISTERED_ACCOUNT
# Test-only, next to the seed: a second space whose SPACE_ADMIN is dave (who is in no seeded space).
OTHER_SPACE = "other"
OTHER_SPACE_ADMIN = "dave"


@pytest.fixture
def seeded(aws: dict[str, Any]) -> dict[str, Any]:
    """The seed of SPEC.md's local stack (``local.seed_data``): space demo with alice, bob and
    carol, an administrator for account 111122223333; and, for these tests only, a second space
    whose admin is dave."""
    from account_connections.domain.registry import Member, Space, SpaceRole

    state = stores(TABLE, aws["ddb"])
    put_seed(state.registry)
    state.registry.put_space(Space(spaceId=OTHER_SPACE, name="Other space", **SEED_STAMP))
    state.registry.put_member(
        Member(spaceId=OTHER_SPACE, userId=OTHER_SPACE_ADMIN, role=SpaceRole.SPACE_ADMIN, **SEED_STAMP)
    )
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
