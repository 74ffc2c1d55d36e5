"""The local stack's fix for moto's DynamoDB Query (``local.dynamodb_queries``): a Query on the
table's key reads its partition only, and answers as before (range conditions, order, pages,
filters), while index queries and scans still see every item."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from local import dynamodb_queries

TABLE = "queries"


class CountedItems(defaultdict):
    """moto's item store, counting the walks over every partition."""

    walks = 0

    def values(self) -> Any:
        type(self).walks += 1
        return super().values()


@pytest.fixture
def table() -> Iterator[Any]:
    dynamodb_queries.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "kind", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byKind",
                    "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for p in range(30):
            for s in range(5):
                item = {
                    "pk": {"S": f"P{p:02d}"},
                    "sk": {"S": f"S{s}"},
                    "n": {"N": str(s)},
                    "kind": {"S": f"k{s}"},
                }
                client.put_item(TableName=TABLE, Item=item)
        stored = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[TABLE]
        counted = CountedItems(dict)
        counted.update(stored.items)
        stored.items = counted
        CountedItems.walks = 0
        yield client


def _keys(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(item["pk"]["S"], item["sk"]["S"]) for item in answer["Items"]]


def test_a_query_reads_only_its_partition(table: Any) -> None:
    answer = table.query(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "P07"}}
    )
    assert _keys(answer) == [("P07", f"S{s}") for s in range(5)]
    assert CountedItems.walks == 0


def test_answers_are_unchanged_range_order_pages_filters(table: Any) -> None:
    values = {":p": {"S": "P03"}, ":from": {"S": "S1"}, ":n": {"N": "3"}}
    backwards = table.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p AND sk >= :from",
        FilterExpression="n <> :n",
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
    )
    assert _keys(backwards) == [("P03", "S4"), ("P03", "S2"), ("P03", "S1")]
    first = table.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": values[":p"]},
        Limit=2,
    )
    rest = table.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": values[":p"]},
        ExclusiveStartKey=first["LastEvaluatedKey"],
    )
    assert _keys(first) + _keys(rest) == [("P03", f"S{s}") for s in range(5)]
    missing = table.query(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "nope"}}
    )
    assert missing["Items"] == []
    assert CountedItems.walks == 0


def test_index_queries_and_scans_still_see_every_partition(table: Any) -> None:
    by_kind = table.query(
        TableName=TABLE,
        IndexName="byKind",
        KeyConditionExpression="kind = :k",
        ExpressionAttributeValues={":k": {"S": "k2"}},
    )
    assert sorted(_keys(by_kind)) == [(f"P{p:02d}", "S2") for p in range(30)]
    assert table.scan(TableName=TABLE)["Count"] == 150
