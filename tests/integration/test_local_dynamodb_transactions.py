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


def test_a_read_never_sees_a_transaction_half_written(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a transaction that puts an item, then fails on its second (a condition), and pauses
    # right after the put, as moto applies items one by one
    from moto.dynamodb.models.table import Table

    ddb = boto3.client("dynamodb")
    applied, seen = threading.Event(), []
    original_put = Table.put_item

    def slow_put(self: Table, *args: Any, **kwargs: Any) -> Any:
        result = original_put(self, *args, **kwargs)
        if threading.current_thread().name == "transaction":
            applied.set()
            threading.Event().wait(0.3)
        return result

    monkeypatch.setattr(Table, "put_item", slow_put)

    def transaction() -> None:
        with pytest.raises(ClientError):
            missing = {"TableName": table, "Key": {"pk": {"S": "NONE"}, "sk": {"S": "X"}},
                       "ConditionExpression": "attribute_exists(pk)"}  # fmt: skip
            ddb.transact_write_items(TransactItems=[_put("HALF", table=table), {"ConditionCheck": missing}])

    writer = threading.Thread(target=transaction, name="transaction")
    writer.start()
    assert applied.wait(5)
    # When another client reads the item meanwhile
    seen.append(ddb.get_item(TableName=table, Key={"pk": {"S": "HALF"}, "sk": {"S": "X"}}).get("Item"))
    writer.join(5)
    # Then it waited for the transaction, which wrote nothing: DynamoDB never shows half of one
    assert seen == [None]
