"""The local stack's fix for moto's DynamoDB items (``local.dynamodb_items``): an item is sized
once when it is built, not once per attribute, and is stored as before; an item over the limit
is refused as before, and one just within it accepted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType

from local import dynamodb_items
from tests.local_stack.tables import table_on_pk

TABLE = "items"
ATTRIBUTES = 40


class Counts:
    sized = 0  # DynamoType.size() calls


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dynamodb_items.install()
    size = DynamoType.size

    def counted(self: DynamoType) -> int:
        Counts.sized += 1
        return size(self)

    monkeypatch.setattr(DynamoType, "size", counted)
    with mock_aws():
        ddb = table_on_pk(TABLE)
        Counts.sized = 0
        yield ddb


def test_an_item_is_sized_once(client: Any) -> None:
    item = {"pk": {"S": "wide"}} | {f"a{i}": {"S": f"value {i}"} for i in range(ATTRIBUTES)}
    client.put_item(TableName=TABLE, Item=item)
    # moto sizes every attribute already set at each set: 41 * 42 / 2 = 861 sizes.
    assert Counts.sized < 4 * (ATTRIBUTES + 1)
    assert client.get_item(TableName=TABLE, Key={"pk": {"S": "wide"}})["Item"] == item


def test_the_size_limit_is_moto_s(client: Any) -> None:
    def item(pk: str, size: int) -> dict[str, Any]:
        # key "pk" (2) + its value + key "body" (4) + the body: moto's count of the item's bytes
        return {"pk": {"S": pk}, "body": {"S": "x" * (size - 2 - len(pk) - 4)}}

    client.put_item(TableName=TABLE, Item=item("within", 405000))
    stored = client.get_item(TableName=TABLE, Key={"pk": {"S": "within"}})["Item"]
    assert len(stored["body"]["S"]) == 405000 - 2 - 6 - 4
    with pytest.raises(ClientError) as refused:
        client.put_item(TableName=TABLE, Item=item("over", 405001))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Item size has exceeded" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": item("over", 405001)}}]
        )
    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "over"}})
