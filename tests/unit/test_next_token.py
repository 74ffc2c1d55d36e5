"""nextToken is the LastEvaluatedKey, checked on the way back in: only a token of this query."""

from __future__ import annotations

import base64
import json

import pytest

from account_connections.adapters.dynamodb.table import decode_next_token, encode_next_token
from account_connections.domain.errors import InvalidRequest

KEY = {
    "pk": {"S": "CONNECTION#1"},
    "sk": {"S": "CONNECTION"},
    "gsi1pk": {"S": "SPACE#demo"},
    "gsi1sk": {"S": "2026-11-26T07:00:00.000Z#1"},
}


def forge(plain: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def test_round_trip() -> None:
    token = encode_next_token(KEY)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_next_token(token, "gsi1pk", "SPACE#demo") == KEY


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forge("a string"),
        forge(["a", "list"]),
        forge({name: value["S"] for name, value in KEY.items()} | {"gsi1pk": "SPACE#other"}),  # another space
        forge({name: value["S"] for name, value in KEY.items()} | {"extra": "x"}),
        forge({"gsi1pk": "SPACE#demo", "gsi1sk": "x"}),  # keys missing: DynamoDB would fail on it
        forge({name: value["S"] for name, value in KEY.items()} | {"sk": 5}),
        forge({name: value["S"] for name, value in KEY.items()} | {"sk": "x" * 1025}),
        forge(
            {"pk": "CONNECTION#1", "sk": "CONNECTION", "gsi4pk": "SPACE#demo", "gsi4sk": "x"}
        ),  # another index
    ],
)
def test_tampered_or_foreign_tokens_are_a_400_naming_next_token(token: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_next_token(token, "gsi1pk", "SPACE#demo")
    assert caught.value.errors == [{"field": "nextToken", "message": "not a token of this query"}]
