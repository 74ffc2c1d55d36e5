"""The local stack's fix for moto's DynamoDB expression parsing (``local.dynamodb_expressions``):
a condition is parsed once per (expression, names, values) and an update expression once per text,
the validator copies a kept update expression without ``copy.deepcopy``, and the answers are moto's
own: conditions that hold and fail, transactions cancelled with their reasons, updates of each
kind applied to each item with its own values, invalid expressions refused every time."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import comparisons
from moto.dynamodb.parsing import ast_nodes as _ast_nodes
from moto.dynamodb.parsing import expressions as _expressions

from local import dynamodb_expressions
from tests.local_stack.tables import table_on_pk

TABLE = "expressions"
# moto's parsing modules are not typed.
ast_nodes: Any = _ast_nodes
expressions: Any = _expressions


class Counts:
    lexes = 0  # condition expressions lexed
    tokenized = 0  # update expressions tokenized
    node_copies = 0  # parsed expression nodes rebuilt by copy.deepcopy


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dynamodb_expressions.install()
    dynamodb_expressions.clear()
    lex = comparisons.ConditionExpressionParser._lex_condition_expression
    make_list = expressions.ExpressionTokenizer.make_list
    reconstruct = copy._reconstruct  # type: ignore[attr-defined]

    def counted_lex(self: Any) -> Any:
        Counts.lexes += 1
        return lex(self)

    def counted_make_list(expression: str) -> Any:
        Counts.tokenized += 1
        return make_list(expression)

    def counted_reconstruct(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, ast_nodes.Node):
            Counts.node_copies += 1
        return reconstruct(value, *args, **kwargs)

    monkeypatch.setattr(comparisons.ConditionExpressionParser, "_lex_condition_expression", counted_lex)
    monkeypatch.setattr(expressions.ExpressionTokenizer, "make_list", staticmethod(counted_make_list))
    monkeypatch.setattr(copy, "_reconstruct", counted_reconstruct)
    with mock_aws():
        ddb = table_on_pk(TABLE)
        Counts.lexes = Counts.tokenized = Counts.node_copies = 0
        yield ddb
    dynamodb_expressions.clear()


def _put(pk: str, version: int) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {"pk": {"S": pk}, "version": {"N": str(version)}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def _check(pk: str, version: int) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": {"pk": {"S": pk}},
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": str(version)}},
        }
    }


def test_a_transactions_conditions_are_parsed_once_each(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": "base"}, "version": {"N": "1"}})
    Counts.lexes = 0
    client.transact_write_items(TransactItems=[_check("base", 1), _put("a", 1)])
    # Two conditions; moto lexes them five times (its response handler both, its transaction both,
    # its put the second).
    assert Counts.lexes == 2
    client.transact_write_items(TransactItems=[_check("base", 1), _put("b", 1)])
    assert Counts.lexes == 2  # the same expressions, names and values: nothing parsed again


def test_conditions_hold_and_fail_with_their_own_values(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": "base"}, "version": {"N": "1"}})
    client.transact_write_items(TransactItems=[_check("base", 1), _put("a", 1)])
    for _ in range(2):  # a failed condition fails every time, kept or not
        with pytest.raises(ClientError) as failed:
            client.transact_write_items(TransactItems=[_check("base", 2), _put("c", 1)])
        reasons = [reason["Code"] for reason in failed.value.response["CancellationReasons"]]
        assert reasons == ["ConditionalCheckFailed", "None"]
        with pytest.raises(ClientError) as exists:
            client.transact_write_items(TransactItems=[_check("base", 1), _put("a", 1)])
        reasons = [reason["Code"] for reason in exists.value.response["CancellationReasons"]]
        assert reasons == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName=TABLE, Key={"pk": {"S": "c"}})
    with pytest.raises(ClientError) as plain:
        client.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "base"}},
            ConditionExpression="#v = :v",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":v": {"N": "7"}},
        )
    assert plain.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


UPDATE = (
    "SET #f0 = :v0, #c0 = if_not_exists(#c0, :c0s) + :c0, "
    "#a0 = list_append(if_not_exists(#a0, :a0e), :a0) REMOVE #r0"
)


def _update(client: Any, pk: str, value: str, added: str) -> dict[str, Any]:
    return client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": pk}},
        UpdateExpression=UPDATE,
        ExpressionAttributeNames={"#f0": "name", "#c0": "count", "#a0": "log", "#r0": "gone"},
        ExpressionAttributeValues={
            ":v0": {"S": value},
            ":c0": {"N": "1"},
            ":c0s": {"N": "0"},
            ":a0": {"L": [{"S": added}]},
            ":a0e": {"L": []},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]


def test_an_update_expression_is_parsed_once_and_copied_without_deepcopy(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": "x"}, "gone": {"S": "soon"}})
    Counts.tokenized = Counts.node_copies = 0
    first = _update(client, "x", "one", "a")
    assert Counts.tokenized == 1  # moto tokenizes it in its response handler and in update_item
    second = _update(client, "x", "two", "b")
    assert Counts.tokenized == 1
    # moto's validator deep-copies the parsed expression, node by node, for every update.
    assert Counts.node_copies == 0
    assert first == {
        "pk": {"S": "x"}, "name": {"S": "one"}, "count": {"N": "1"}, "log": {"L": [{"S": "a"}]},
    }  # fmt: skip
    assert second == {
        "pk": {"S": "x"}, "name": {"S": "two"}, "count": {"N": "2"},
        "log": {"L": [{"S": "a"}, {"S": "b"}]},
    }  # fmt: skip


def test_updates_of_each_item_keep_their_own_values_and_the_kept_tree_is_unchanged(client: Any) -> None:
    for n in range(3):
        assert _update(client, f"item-{n}", f"name-{n}", f"entry-{n}") == {
            "pk": {"S": f"item-{n}"}, "name": {"S": f"name-{n}"}, "count": {"N": "1"},
            "log": {"L": [{"S": f"entry-{n}"}]},
        }  # fmt: skip
    kept = dynamodb_expressions.UPDATES.get(UPDATE)
    assert kept is not None
    fresh = pickle.dumps(dynamodb_expressions._ORIGINAL["make"](UPDATE))
    assert pickle.dumps(kept) == fresh  # the validator rewrote copies, never the kept tree
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "item-0"}},
        UpdateExpression="ADD #n :one",
        ExpressionAttributeNames={"#n": "count"},
        ExpressionAttributeValues={":one": {"N": "5"}},
    )
    stored = client.get_item(TableName=TABLE, Key={"pk": {"S": "item-0"}})["Item"]
    assert stored["count"] == {"N": "6"}


INVALID = [
    ("update_item", {"UpdateExpression": "SET = :v", "ExpressionAttributeValues": {":v": {"S": "v"}}}),
    (
        "update_item",
        {
            "UpdateExpression": "SET #a = :v",
            "ExpressionAttributeNames": {"#a": "a", "#unused": "b"},
            "ExpressionAttributeValues": {":v": {"S": "v"}},
        },
    ),
    ("put_item", {"ConditionExpression": "name = :v", "ExpressionAttributeValues": {":v": {"S": "v"}}}),
]


@pytest.mark.parametrize(("operation", "arguments"), INVALID)
def test_invalid_expressions_are_refused_every_time(client: Any, operation: str, arguments: Any) -> None:
    key = {"Key": {"pk": {"S": "x"}}} if operation == "update_item" else {"Item": {"pk": {"S": "x"}}}
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            getattr(client, operation)(TableName=TABLE, **key, **arguments)
        assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_a_kept_condition_keeps_its_own_values_when_an_item_took_the_requests(client: Any) -> None:
    """moto stores a string set's list from the request's values as it is, and ``ADD`` appends to
    that list: a kept condition must not hold the same list."""
    client.put_item(TableName=TABLE, Item={"pk": {"S": "other"}, "tags": {"SS": ["a"]}})

    def set_tags(pk: str) -> None:
        client.update_item(
            TableName=TABLE,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET #t = :tags",
            ConditionExpression="attribute_not_exists(#t) OR #t = :tags",
            ExpressionAttributeNames={"#t": "tags"},
            ExpressionAttributeValues={":tags": {"SS": ["a"]}},
        )

    set_tags("first")
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "first"}},
        UpdateExpression="ADD #t :more",
        ExpressionAttributeNames={"#t": "tags"},
        ExpressionAttributeValues={":more": {"SS": ["b"]}},
    )
    set_tags("other")  # its tags are {"a"}, as the condition's values say
    stored = client.get_item(TableName=TABLE, Key={"pk": {"S": "first"}})["Item"]
    assert sorted(stored["tags"]["SS"]) == ["a", "b"]
