"""The local stack's fix for moto's update expression validator (``local.dynamodb_update_checks``):
the checks that depend on an expression's text, names and the table's keys alone run once per
(text, names, keys), each processor's type map is built once, and the answers are moto's own:
updates applied, and the refusals of those checks (too many clauses, overlapping paths, a key
updated) given every time, also for a text that passed before with other names."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.parsing import validators as _validators

from local import dynamodb_expressions, dynamodb_update_checks
from tests.local_stack.tables import table_on_pk

TABLE = "update-checks"
validators: Any = _validators  # moto's parsing modules are not typed


class Counts:
    action_counts = 0  # ActionCountValidator's checks, one per UpdateExpression node it visits
    maps = 0  # processors' _processing_map() built


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dynamodb_update_checks.install()
    dynamodb_expressions.clear()
    dynamodb_update_checks.clear()
    verify = validators.ActionCountValidator.verify_action_counts
    processing_map = validators.ExpressionAttributeValueProcessor._processing_map

    def counted_verify(self: Any, node: Any) -> Any:
        Counts.action_counts += 1
        return verify(self, node)

    def counted_map(self: Any) -> Any:
        Counts.maps += 1
        return processing_map(self)

    monkeypatch.setattr(validators.ActionCountValidator, "verify_action_counts", counted_verify)
    monkeypatch.setattr(validators.ExpressionAttributeValueProcessor, "_processing_map", counted_map)
    with mock_aws():
        ddb = table_on_pk(TABLE)
        Counts.action_counts = Counts.maps = 0
        yield ddb
    dynamodb_expressions.clear()
    dynamodb_update_checks.clear()


FIELDS = 12
UPDATE = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(FIELDS)) + " REMOVE #r"


def _update(client: Any, pk: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    return client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": pk}},
        UpdateExpression=UPDATE,
        ExpressionAttributeNames=names or ({f"#f{i}": f"field{i}" for i in range(FIELDS)} | {"#r": "gone"}),
        ExpressionAttributeValues={f":v{i}": {"S": f"{pk}-{i}"} for i in range(FIELDS)},
        ReturnValues="ALL_NEW",
    )["Attributes"]


def test_the_text_only_checks_run_once_per_text_and_names(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "gone": {"S": "soon"}})
    first = _update(client, "a")
    checked = Counts.action_counts
    assert checked > FIELDS  # moto checks the counts at nearly every node of the tree
    second = _update(client, "b")
    assert Counts.action_counts == checked  # the same text and names: not checked again
    assert first == {"pk": {"S": "a"}} | {f"field{i}": {"S": f"a-{i}"} for i in range(FIELDS)}
    assert second == {"pk": {"S": "b"}} | {f"field{i}": {"S": f"b-{i}"} for i in range(FIELDS)}


def test_a_processors_map_is_built_once(client: Any) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})  # one validation (a new item has two)
    Counts.maps = 0
    _update(client, "a")
    # One ExpressionAttributeValueProcessor per validation; moto builds its map twice per node.
    assert Counts.maps <= 2


def _refused(client: Any, expression: str, names: dict[str, str]) -> str:
    with pytest.raises(ClientError) as refused:
        client.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "x"}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":v": {"S": "v"}, ":w": {"S": "w"}},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    return str(refused.value.response["Error"]["Message"])


def test_a_text_that_passed_is_refused_with_other_names(client: Any) -> None:
    expression = "SET #a = :v, #b = :w"
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "x"}},
        UpdateExpression=expression,
        ExpressionAttributeNames={"#a": "one", "#b": "two"},
        ExpressionAttributeValues={":v": {"S": "v"}, ":w": {"S": "w"}},
    )
    for _ in range(2):
        assert "Two document paths overlap" in _refused(client, expression, {"#a": "one", "#b": "one"})
        assert "key" in _refused(client, expression, {"#a": "pk", "#b": "two"}).lower()


def test_too_many_clauses_are_refused_every_time(client: Any) -> None:
    messages = {_refused(client, "SET #a = :v SET #b = :w", {"#a": "one", "#b": "two"}) for _ in range(2)}
    assert len(messages) == 1
    assert "SET" in messages.pop()


def test_the_walks_class_checks_are_kept(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = 0
    instancecheck = abc.ABCMeta.__instancecheck__

    def counted(cls: Any, instance: Any) -> bool:
        nonlocal checks
        if cls.__module__.startswith("moto.dynamodb.parsing"):
            checks += 1
        return instancecheck(cls, instance)

    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
    _update(client, "a")  # the classes seen once
    monkeypatch.setattr(abc.ABCMeta, "__instancecheck__", counted)
    _update(client, "a")
    # moto checks each node's class against its node classes three to four times per processor:
    # 5,647 checks for this update. Left (571): find_clauses and the processors' own checks.
    assert checks < 1000
