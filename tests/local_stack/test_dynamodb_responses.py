"""The local stack's fix for moto's response serializer on DynamoDB items
(``local.dynamodb_responses``): an attribute value in plain JSON is written as it is, without
asking the attribute picker for each of ``AttributeValue``'s ten members, and every response body
is the one moto's own serializer writes, byte for byte, binary values and all."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core import serialize
from moto.core.utils import get_service_model

from local import dynamodb_responses
from tests.local_stack.tables import table_on_pk

TABLE = "responses"

ITEMS: list[dict[str, Any]] = [
    {"pk": {"S": "strings"}, "empty": {"S": ""}, "unicode": {"S": "é ☃ 𝄞"}, "n": {"N": "-1.50"}},
    {"pk": {"S": "flags"}, "yes": {"BOOL": True}, "no": {"BOOL": False}, "nothing": {"NULL": True}},
    {"pk": {"S": "sets"}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}},
    {
        "pk": {"S": "nested"},
        "m": {"M": {"a": {"S": "x"}, "l": {"L": [{"N": "1"}, {"M": {}}, {"L": []}, {"BOOL": False}]}}},
        "empty_map": {"M": {}},
        "empty_list": {"L": []},
    },
    {"pk": {"S": "binary"}, "b": {"B": b"\x00\xffbytes"}, "bs": {"BS": [b"one", b"two"]}},
    {"pk": {"S": "binary-inside"}, "m": {"M": {"b": {"B": b"\x01"}, "s": {"S": "s"}}}},
]


class Counts:
    picks = 0  # the attribute picker's lookups


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dynamodb_responses.install()
    picker = serialize.XFormedAttributePicker.__call__

    def counted(self: Any, context: Any) -> Any:
        Counts.picks += 1
        return picker(self, context)

    monkeypatch.setattr(serialize.XFormedAttributePicker, "__call__", counted)
    with mock_aws():
        ddb = table_on_pk(TABLE)
        for item in ITEMS:
            ddb.put_item(TableName=TABLE, Item=item)
        Counts.picks = 0
        yield ddb


def test_a_plain_item_is_written_without_picking_each_member(client: Any) -> None:
    item = {"pk": {"S": "wide"}} | {f"a{i}": {"S": f"value {i}"} for i in range(20)}
    client.put_item(TableName=TABLE, Item=item)
    Counts.picks = 0
    got = client.get_item(TableName=TABLE, Key={"pk": {"S": "wide"}})["Item"]
    assert got == item
    # GetItem's output members are picked; moto also picks ten members for each of 21 values.
    assert Counts.picks < 10


@pytest.mark.parametrize("item", ITEMS, ids=[item["pk"]["S"] for item in ITEMS])
def test_every_item_answers_as_stored(client: Any, item: dict[str, Any]) -> None:
    got = client.get_item(TableName=TABLE, Key={"pk": item["pk"]})["Item"]
    assert got == item


def _body(result: dict[str, Any], operation: str) -> str:
    operation_model = get_service_model("dynamodb").operation_model(operation)
    serializer = serialize.JSONSerializer(
        operation_model=operation_model, value_picker=serialize.XFormedAttributePicker()
    )
    return str(serializer.serialize(result)["body"])


def _wire(value: Any) -> Any:
    """An item as moto keeps it for its responses: binary values base64 text, as it stores them."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


@pytest.mark.parametrize("operation", ["GetItem", "Query", "TransactGetItems"])
def test_bodies_are_moto_serializers_own(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    dynamodb_responses.install()
    items = [_wire(item) for item in ITEMS] + [
        {"pk": {"S": "odd"}, "number": {"N": 5}, "two": {"S": "a", "N": "1"}, "none": {"S": None}},
    ]
    results = {
        "GetItem": [{"Item": item} for item in items],
        "Query": [{"Items": items, "Count": len(items), "ScannedCount": len(items)}],
        "TransactGetItems": [{"Responses": [{"Item": item} for item in items]}],
    }[operation]
    for result in results:
        fixed = _body(result, operation)
        monkeypatch.setattr(
            serialize.BaseJSONSerializer, "_serialize_type_structure", dynamodb_responses.original_structure()
        )
        assert fixed == _body(result, operation)
        monkeypatch.undo()
