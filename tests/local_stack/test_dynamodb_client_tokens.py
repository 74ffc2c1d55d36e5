"""The local stack's fix for moto's ``ClientRequestToken`` (``local.dynamodb_client_tokens``): a
transaction sent again with its token is answered as the first was and not applied again; the
token with other items is refused; a cancelled transaction is evaluated again; a token expires."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import dynamodb_client_tokens
from tests.local_stack.tables import table_on_pk

TABLE = "tokens"


@pytest.fixture
def client() -> Iterator[Any]:
    dynamodb_client_tokens.install()
    with mock_aws():
        yield table_on_pk(TABLE)


def add_one(pk: str = "counter") -> list[dict[str, Any]]:
    return [{"Update": {"TableName": TABLE, "Key": {"pk": {"S": pk}}, "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}}]  # fmt: skip


def count(client: Any, pk: str = "counter") -> int:
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
    return int(item["n"]["N"]) if item else 0


def test_a_transaction_sent_again_with_its_token_is_not_applied_again(client: Any) -> None:
    first = client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-1")
    again = client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-1")
    assert count(client) == 1
    assert again["ItemCollectionMetrics"] == first["ItemCollectionMetrics"]
    client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-2")
    client.transact_write_items(TransactItems=add_one())  # no token: applied each time
    assert count(client) == 3


def test_the_token_with_other_items_is_refused_and_changes_nothing(client: Any) -> None:
    client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-1")
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=add_one("other"), ClientRequestToken="t-1")
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert (count(client), count(client, "other")) == (1, 0)


def test_a_cancelled_transaction_is_evaluated_again(client: Any) -> None:
    create = [{"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}},
                       "ConditionExpression": "attribute_not_exists(pk)"}}]  # fmt: skip
    client.put_item(TableName=TABLE, Item={"pk": {"S": "new"}})
    with pytest.raises(ClientError):
        client.transact_write_items(TransactItems=create, ClientRequestToken="t-new")
    client.delete_item(TableName=TABLE, Key={"pk": {"S": "new"}})
    client.transact_write_items(TransactItems=create, ClientRequestToken="t-new")
    assert client.get_item(TableName=TABLE, Key={"pk": {"S": "new"}})["Item"] == {"pk": {"S": "new"}}


def test_a_token_expires_after_the_window(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-1")
    monkeypatch.setattr(dynamodb_client_tokens, "WINDOW_SECONDS", 0)
    client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-2")  # remembered for 0 s
    client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-2")
    assert count(client) == 3  # t-2's window had passed: applied again
    client.transact_write_items(TransactItems=add_one(), ClientRequestToken="t-1")
    assert count(client) == 3  # t-1's had not
