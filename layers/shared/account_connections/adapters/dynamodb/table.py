"""The state table's core: serialization, the operations of a transaction, one ``transact()``
that turns a cancelled transaction into a domain error, the update-expression builder, reads,
paging and the next tokens handed to callers. Knows no aggregate."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from account_connections.adapters.dynamodb.keys import Key
from account_connections.domain.errors import DomainError, InvalidRequest

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
Op = dict[str, Any]
Item = dict[str, Any]

# Keys and internal attributes that never leave the stores.
INTERNAL = frozenset({
    "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk",
    "ttl", "taskToken", "linkTokenHash", "connectionTokenHash", "executionArn", "correlationId",
    "csrfSecret", "verifyBaseUrl", "requestDigest", "requesterEmail",
    # The approval policy at work (domain.connection.ConnectionSecrets).
    "links", "notified", "policy", "escalated", "approvalRound", "approvalsNeeded", "revision",
    # The head of the connection's hash chain (domain.chain).
    "chainSeq", "chainHead", "chainAt",
    # The connection's counts that its conditional writes limit (SPEC.md: links, roles).
    "linkCount", "lastLinkAt", "roleCount",
})  # fmt: skip


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def public(item: Item) -> Item:
    """The item without its keys and internal attributes (``version`` as an int)."""
    return {
        key: (int(value) if key == "version" else value) for key, value in item.items() if key not in INTERNAL
    }


class Cancelled(NamedTuple):
    """Why DynamoDB cancelled a transaction, in the order of its items: each one's reason code,
    and the item as stored where its condition failed and it asked for it
    (``ReturnValuesOnConditionCheckFailure``; None otherwise, or where nothing was stored)."""

    codes: list[str]
    items: list[Item | None]


def cancellation(exc: ClientError) -> Cancelled:
    reasons = cast(list[dict[str, Any]], exc.response.get("CancellationReasons", []))
    return Cancelled(
        codes=[reason.get("Code", "None") for reason in reasons],
        items=[deserialize(reason["Item"]) if reason.get("Item") else None for reason in reasons],
    )


class Table:
    """The state table, given its name and a DynamoDB client."""

    def __init__(self, name: str, dynamodb: Any) -> None:
        self.name = name
        self.ddb = dynamodb

    # ---- operations of a transaction -------------------------------------------------------

    def put(self, item: Item, *, new: bool = False, existing: bool = False) -> Op:
        """Put ``item``; ``new`` requires that nothing is stored under its key yet, ``existing``
        that something is (the put replaces it)."""
        op: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if new:
            op["ConditionExpression"] = "attribute_not_exists(pk)"
        elif existing:
            op["ConditionExpression"] = "attribute_exists(pk)"
        return {"Put": op}

    def update(
        self,
        key: Key,
        *,
        set_fields: dict[str, Any] | None = None,
        remove: Iterable[str] = (),
        condition: str = "attribute_exists(pk)",
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        counters: dict[str, tuple[int, int]] | None = None,
        append: tuple[str, list[Any]] | None = None,
    ) -> Op:
        """``SET #f0 = :v0, ... REMOVE ...`` under ``condition`` (which may use ``names`` and
        ``values``); with nothing to set or remove, a ``ConditionCheck`` of the same condition.
        ``counters`` adds ``by`` to each named number, counting from ``start`` where the item has
        none yet: ``{name: (by, start)}``; ``append`` = ``(name, items)`` adds ``items`` to the end
        of a list (made where the item has none)."""
        names = dict(names or {})
        values = dict(values or {})
        clauses: list[str] = []
        assignments: list[str] = []
        for i, (name, value) in enumerate((set_fields or {}).items()):
            names[f"#f{i}"] = name
            values[f":v{i}"] = value
            assignments.append(f"#f{i} = :v{i}")
        for i, (name, (by, start)) in enumerate((counters or {}).items()):
            names[f"#c{i}"] = name
            values.update({f":c{i}": by, f":c{i}s": start})
            assignments.append(f"#c{i} = if_not_exists(#c{i}, :c{i}s) + :c{i}")
        if append is not None:
            names["#a0"] = append[0]
            values.update({":a0": append[1], ":a0e": []})
            assignments.append("#a0 = list_append(if_not_exists(#a0, :a0e), :a0)")
        if assignments:
            clauses.append("SET " + ", ".join(assignments))
        removed = list(remove)
        if removed:
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
            clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed))))
        op: dict[str, Any] = {"TableName": self.name, "Key": serialize(key), "ConditionExpression": condition}
        if names:
            op["ExpressionAttributeNames"] = names
        if values:
            op["ExpressionAttributeValues"] = serialize(values)
        if not clauses:
            return {"ConditionCheck": op}
        op["UpdateExpression"] = " ".join(clauses)
        return {"Update": op}

    def delete(
        self, key: Key, *, condition: str = "attribute_exists(pk)", values: dict[str, Any] | None = None
    ) -> Op:
        op: dict[str, Any] = {"TableName": self.name, "Key": serialize(key), "ConditionExpression": condition}
        if values:
            op["ExpressionAttributeValues"] = serialize(values)
        return {"Delete": op}

    def check(
        self,
        key: Key,
        condition: str = "attribute_exists(pk)",
        *,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        return_item: bool = False,
    ) -> Op:
        """A ``ConditionCheck``; with ``return_item``, a cancelled transaction's reason for it
        carries the item as stored when the condition failed (``Cancelled.items``)."""
        op: dict[str, Any] = {"TableName": self.name, "Key": serialize(key), "ConditionExpression": condition}
        if names:
            op["ExpressionAttributeNames"] = names
        if values:
            op["ExpressionAttributeValues"] = serialize(values)
        if return_item:
            op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"ConditionCheck": op}

    def transact(self, items: list[Op], refused: Callable[[list[str]], DomainError | None]) -> None:
        """Write ``items`` in one transaction. When DynamoDB cancels it (a condition failed, or a
        conflicting transaction), raises ``refused(codes)`` (the reasons' codes in the order of
        ``items``), or the ``ClientError`` itself when that is None."""
        self.transact_seeing(items, lambda cancelled: refused(cancelled.codes))

    def transact_seeing(self, items: list[Op], refused: Callable[[Cancelled], DomainError | None]) -> None:
        """``transact``, with ``refused`` given the reasons' codes and the items their failed
        conditions returned."""
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                error = refused(cancellation(exc))
                if error is not None:
                    raise error from exc
            raise

    # ---- reads -----------------------------------------------------------------------------

    def get(self, key: Key) -> Item | None:
        response = self.ddb.get_item(TableName=self.name, Key=serialize(key), ConsistentRead=True)
        return deserialize(response["Item"]) if "Item" in response else None

    def query_all(self, **kwargs: Any) -> list[Item]:
        """Every item of a Query, following its pages. ``ExpressionAttributeValues`` plain."""
        items: list[Item] = []
        kwargs["TableName"] = self.name
        kwargs["ExpressionAttributeValues"] = serialize(kwargs["ExpressionAttributeValues"])
        while True:
            response = self.ddb.query(**kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def query_once(self, **kwargs: Any) -> tuple[list[Item], bool]:
        """One Query call: its items, keys included, and whether it stopped before the end of the
        range (at its ``Limit`` or at 1 MB). ``ExpressionAttributeValues`` plain."""
        kwargs["TableName"] = self.name
        kwargs["ExpressionAttributeValues"] = serialize(kwargs["ExpressionAttributeValues"])
        response = self.ddb.query(**kwargs)
        return [deserialize(item) for item in response.get("Items", [])], "LastEvaluatedKey" in response

    def page(
        self, kwargs: dict[str, Any], pk_name: str, pk: str, limit: int, next_token: str | None
    ) -> tuple[list[Item], str | None]:
        """One page of a Query (public items) and the token of the next, if any. Raises
        ``InvalidRequest`` unless ``next_token`` is one this query handed out."""
        kwargs = {**kwargs, "TableName": self.name, "Limit": limit}
        kwargs["ExpressionAttributeValues"] = serialize(kwargs["ExpressionAttributeValues"])
        if next_token:
            kwargs["ExclusiveStartKey"] = decode_next_token(next_token, pk_name, pk)
        response = self.ddb.query(**kwargs)
        last = response.get("LastEvaluatedKey")
        items = [public(deserialize(item)) for item in response.get("Items", [])]
        return items, (encode_next_token(last) if last else None)


def range_query(
    index: str,
    pk_name: str,
    sk_name: str,
    pk: str,
    low: str | None,
    high: str | None,
    filters: dict[str, Any],
) -> dict[str, Any]:
    """A newest-first Query of one index partition between two sort-key prefixes, filtered on
    attributes equal to the truthy values of ``filters``."""
    values: dict[str, Any] = {":pk": pk}
    condition = f"{pk_name} = :pk"
    if low and high:
        condition += f" AND {sk_name} BETWEEN :low AND :high"
        values.update({":low": low, ":high": high + "\uffff"})
    elif low:
        condition += f" AND {sk_name} >= :low"
        values[":low"] = low
    elif high:
        condition += f" AND {sk_name} <= :high"
        values[":high"] = high + "\uffff"
    kwargs: dict[str, Any] = {
        "IndexName": index,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
    }
    active = {name: value for name, value in filters.items() if value}
    if active:
        kwargs["ExpressionAttributeNames"] = {f"#{name}": name for name in active}
        kwargs["FilterExpression"] = " AND ".join(f"#{name} = :{name}" for name in active)
        values.update({f":{name}": str(value) for name, value in active.items()})
    return kwargs


def encode_next_token(last_evaluated_key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in last_evaluated_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def invalid_next_token(field: str = "nextToken") -> InvalidRequest:
    return InvalidRequest(
        f"{field} is not valid for this query",
        errors=[{"field": field, "message": "not a token of this query"}],
    )


def decode_next_token(token: str, pk_name: str, pk: str, *, field: str = "nextToken") -> dict[str, Any]:
    """Raises ``InvalidRequest`` (naming ``field``) unless ``token`` is one this query handed out."""
    invalid = invalid_next_token(field)
    try:
        padded = token + "=" * (-len(token) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:  # a token of deep arrays
        raise invalid from exc
    allowed = {"pk", "sk", pk_name, pk_name.replace("pk", "sk")}
    if (
        not isinstance(plain, dict)
        or plain.get(pk_name) != pk
        or set(plain) != allowed
        or not all(isinstance(value, str) and len(value) <= 1024 for value in plain.values())
    ):
        raise invalid
    return {name: {"S": value} for name, value in plain.items()}
