"""The local stack's fix for moto's DynamoDB transactions: serialized, item-level rollback."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local import dynamodb_transactions


@pytest.fixture
def table(aws: dict[str, Any]) -> str:
    dynamodb_transactions.install()
    return aws["table"]


def _put(pk: str, condition: str | None = None, table: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "X"}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def _count(ddb: Any, table: str) -> int:
    return ddb.scan(TableName=table, Select="COUNT")["Count"]


def test_concurrent_transactions_all_land(table: str) -> None:
    ddb = boto3.client("dynamodb")
    errors: list[Exception] = []

    def writer(worker: int) -> None:
        for n in range(25):
            try:
                ddb.transact_write_items(
                    TransactItems=[_put(f"A#{worker}#{n}", table=table), _put(f"B#{worker}#{n}", table=table)]
                )
            except Exception as exc:  # any failure is a lost write
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(ddb, table) == 8 * 25 * 2


def test_a_cancelled_transaction_undoes_only_its_own_items(table: str) -> None:
    ddb = boto3.client("dynamodb")
    ddb.put_item(TableName=table, Item={"pk": {"S": "kept"}, "sk": {"S": "X"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "taken"}, "sk": {"S": "X"}})
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                _put("new", table=table),
                _put("taken", condition="attribute_not_exists(pk)", table=table),
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    keys = {item["pk"]["S"] for item in ddb.scan(TableName=table)["Items"]}
    assert keys == {"kept", "taken"}
